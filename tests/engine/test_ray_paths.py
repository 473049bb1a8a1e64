"""Every --executor ray path on the session's local 2-CPU Ray instance gives the serial executor's numbers.

The classifier bench (both job units), a tiny persons LM bench and a tiny strong audit each run
once serially and once on Ray, each run with its own model cache so both really train; records
must be equal except for timing fields. Sizes keep the module under a minute on 2 quiet cores.
"""

from __future__ import annotations

import json
import operator
import re

import pytest

from obliviate.errors import ConfigError

# what may differ between two runs of the same computation: clocks, and when a model was trained
TIMING = {"wall_s", "wall_ratio", "cpu_s", "attack_s", "eval_s", "tuning_s", "trained_at", "created", "total_s"}

DIGITS = {"dataset": "digits", "model": "mlp", "model_options": {"hidden": [32]}, "recipe": {"epochs": 4},
          "methods": ["finetune", "graddiff"], "seeds": 2, "threads": 1, "progress": False,
          "method_config": {"finetune": {"epochs": 2}, "graddiff": {"epochs": 2}}}


def _strip(value):
    if isinstance(value, dict):
        return {k: _strip(v) for k, v in value.items() if k not in TIMING}
    if isinstance(value, list):
        return [_strip(v) for v in value]
    return value


def _same(a, b) -> bool:
    return json.dumps(_strip(a), sort_keys=True, default=str) == json.dumps(_strip(b), sort_keys=True, default=str)


@pytest.fixture(scope="module")
def digits_runs(tmp_path_factory, ray_cluster):
    from obliviate.bench.runner import run_bench
    from obliviate.tasks import config_for

    root = tmp_path_factory.mktemp("ray-bench")
    runs = {}
    for name, executor, unit in (("serial", "serial", "auto"), ("seed", "ray", "seed"), ("method", "ray", "method")):
        cfg = config_for({**DIGITS, "executor": executor, "cache_dir": str(root / f"cache-{name}"),
                          "out": str(root / name)})
        runs[name] = run_bench(cfg, job_unit=unit)
    return runs


@pytest.mark.slow
@pytest.mark.parametrize("unit", ["seed", "method"])
def test_classifier_bench_on_ray_equals_serial(digits_runs, unit):
    serial, ray = digits_runs["serial"], digits_runs[unit]
    assert ray.meta["executor"]["backend"] == "ray" and ray.meta["executor"]["unit"] == unit
    order = [(r["seed"], r["method"]) for r in serial.records]
    assert order == [(s, m) for s in (0, 1) for m in ("original", "retrain", "finetune", "graddiff")]
    assert [(r["seed"], r["method"]) for r in ray.records] == order
    assert _same(ray.records, serial.records)
    assert serial.records[2]["ua"] != serial.records[0]["ua"] or serial.records[2]["tow"] != serial.records[0]["tow"]
    for seed in ("0", "1"):
        assert ray.meta["seeds"][seed]["n_forget"] == serial.meta["seeds"][seed]["n_forget"]
        assert ray.meta["seeds"][seed]["original_cached"] is False  # trained in a worker, not loaded
    jobs = ray.meta["executor"]["jobs"]
    assert len(jobs) == (2 if unit == "seed" else 2 + 4)
    if unit == "method":  # the setup job shipped the original and the reference; every method job used them
        assert ray.meta["executor"]["shipped_models"] == {"0": 2, "1": 2}
        assert all(j["shipped_hits"] >= 2 for j in jobs if "method" in j)


@pytest.mark.slow
def test_persons_bench_on_ray_equals_serial(tmp_path, ray_cluster):
    from obliviate.bench.runner import run_bench
    from obliviate.tasks.lm_config import LMBenchConfig

    pytest.importorskip("transformers")
    tiny = {"corpus": {"n_people": 6, "forget_fraction": 0.17, "seed": 1, "n_perturbed": 3},
            "model": {"n_layer": 1, "n_embd": 32, "n_head": 2, "vocab_size": 400},
            "recipe": {"epochs": 4, "batch_size": 16, "lr": 5e-3}, "threads": 1,
            "eval": {"max_examples": 12, "n_boot": 10},
            "attacks": {"relearn": {"steps": 2, "batch_size": 8}, "icl": {"max_questions": 4, "n_context": 2}},
            "parallel_training": False, "method_workers": 1, "methods": ["npo", "graddiff"], "progress": False,
            "method_config": {"npo": {"epochs": 1, "batch_size": 8}, "graddiff": {"epochs": 1, "batch_size": 8}}}
    runs = {ex: run_bench(LMBenchConfig(task="persons", executor=ex, cache_dir=str(tmp_path / ex), **tiny))
            for ex in ("serial", "ray")}
    assert runs["ray"].meta["executor"]["unit"] == "method"  # 1 seed on 2 CPUs: one job per method
    assert [r["method"] for r in runs["ray"].records] == ["original", "retrain", "npo", "graddiff"]
    assert _same(runs["ray"].records, runs["serial"].records)
    assert runs["ray"].records[2]["forget_prob"] != runs["ray"].records[0]["forget_prob"]  # npo did run


@pytest.mark.slow
def test_strong_audit_on_ray_equals_serial(digits_runs, tmp_path):
    from obliviate.bench.audit import AuditSettings, run_audit
    from obliviate.bench.runner import write_reports

    run_dir = tmp_path / "run"
    write_reports(digits_runs["serial"], run_dir)
    audits = {ex: run_audit(run_dir, AuditSettings(attacks=("population", "lira", "ulira"), replicas=4, chunk=2,
                                                   methods=("finetune",), executor=ex, threads=1,
                                                   cache_dir=str(tmp_path / f"cache-{ex}")))
              for ex in ("serial", "ray")}
    serial, ray = audits["serial"], audits["ray"]
    assert ray["settings"]["executor"] == "ray" and ray["timing"]["train_trained"]["chunks"] == 2
    assert ray["timing"]["train_trained"]["cached_chunks"] == 0  # trained on Ray, not read from a cache
    assert list(ray["methods"]) == ["original", "retrain", "finetune"]
    assert _same(ray["methods"], serial["methods"])
    assert ray["methods"]["original"]["ulira"]["mean_accuracy"] == serial["methods"]["original"]["ulira"]["mean_accuracy"]


def test_bad_executor_settings_are_config_errors(tmp_path):
    from obliviate.bench.runner import make_task
    from obliviate.engine.executor import RayExecutor
    from obliviate.tasks import config_for

    with pytest.raises(ConfigError, match=re.escape("unknown executor 'rayy'; did you mean 'ray'? "
                                                    "Options: process, ray, serial")):
        make_task(config_for({"executor": "rayy"})).preflight()
    with pytest.raises(ConfigError, match="is not a Ray address"):
        make_task(config_for({"executor": "ray", "ray_address": "not an address"})).preflight()
    with pytest.raises(ConfigError, match="needs executor 'ray'"):
        make_task(config_for({"executor": "process", "ray_address": "auto"})).preflight()
    pytest.importorskip("ray", reason="Ray is not installed; joining a cluster not tested")
    # nothing listens on port 1: a clear error at once, not Ray's minutes of retries
    with pytest.raises(ConfigError, match="Could not join the Ray cluster at '127.0.0.1:1'"):
        RayExecutor(address="127.0.0.1:1").map(operator.neg, [1])


def test_ray_executor_passes_shared_objects_once(ray_cluster):
    from obliviate.engine.executor import make_executor

    with make_executor("ray") as ex:
        assert ex.map(operator.sub, [1, 2, 3], shared=10) == [9, 8, 7]
        ref = ex.put(100)
        assert ex.map(operator.sub, [1, 2], shared=ref) == [99, 98]
    assert ray_cluster.is_initialized()
