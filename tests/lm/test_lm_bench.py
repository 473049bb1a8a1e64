"""``obliviate bench --task persons|tofu``: the CLI through its runner, results, reports, validation."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from obliviate.cli.main import app

runner = CliRunner()

TINY = {
    "corpus": {"n_people": 6, "forget_fraction": 0.17, "seed": 1, "n_perturbed": 3},
    "model": {"n_layer": 2, "n_embd": 64, "n_head": 2, "vocab_size": 500},
    "recipe": {"epochs": 12, "batch_size": 16, "lr": 5e-3},  # plumbing only: training is tested elsewhere
    "eval": {"max_examples": 24, "n_boot": 20},
    "attacks": {"relearn": {"steps": 3, "batch_size": 8}, "icl": {"max_questions": 8, "n_context": 2}},
    "parallel_training": False,
    "method_workers": 1,
    "method_config": {"npo": {"epochs": 2, "lr": 5e-4, "batch_size": 8},
                      "graddiff": {"epochs": 2, "lr": 1e-3, "batch_size": 8}},
}
REQUIRED = {"method", "seed", "forget_quality", "model_utility", "forget_rouge", "retain_rouge", "privleak",
            "relearn_recovery", "icl_recovery", "wall_s", "wall_ratio"}


@pytest.fixture(scope="module")
def persons_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("lm-bench")
    cfg = tmp / "tiny.json"
    cfg.write_text(json.dumps({**TINY, "cache_dir": str(tmp / "cache")}))
    out = tmp / "run"
    res = runner.invoke(app, ["bench", "--task", "persons", "--config", str(cfg), "--methods", "npo,graddiff",
                              "--seeds", "1", "--out", str(out), "--no-progress"])
    return res, out, cfg


def test_cli_persons_writes_results_config_and_reports(persons_run):
    res, out, _ = persons_run
    assert res.exit_code == 0, res.output
    records = json.loads((out / "results.json").read_text())
    assert [r["method"] for r in records] == ["original", "retrain", "npo", "graddiff"]
    for r in records:
        assert REQUIRED <= set(r), REQUIRED - set(r)
    ref = records[1]
    assert ref["forget_quality"] == pytest.approx(1.0) and ref["wall_ratio"] == pytest.approx(1.0)
    assert ref["privleak"] == 0.0 and ref["relearn_recovery"] == 0.0
    assert records[0]["wall_s"] == 0.0 and records[0]["kind"] == "baseline" and records[2]["steps"] > 0
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["task"] == "persons" and cfg["methods"] == ["npo", "graddiff"] and cfg["model"]["n_embd"] == 64
    md = (out / "report.md").read_text()
    assert "Forget quality" in md and "| retrain |" in md
    html = (out / "report.html").read_text()
    assert html.count("data:image/png;base64,") >= 3 and "Forget quality against model utility" in html
    meta = json.loads((out / "meta.json").read_text())
    assert 0 <= meta["seeds"]["0"]["original_train_exact"] <= 1 and meta["seeds"]["0"]["n_forget"] == 18
    assert "Report:" in res.output


def test_same_config_gives_same_numbers(persons_run):
    from obliviate.tasks.lm_config import LMBenchConfig
    from obliviate.bench.runner import run_bench as run_lm_bench
    from obliviate.config import validate

    res, out, cfg_path = persons_run
    assert res.exit_code == 0, res.output
    cfg = validate(LMBenchConfig, {**json.loads(cfg_path.read_text()), "methods": ["npo", "graddiff"],
                                   "progress": False})
    again = run_lm_bench(cfg).records
    first = json.loads((out / "results.json").read_text())
    timing = {"wall_s", "wall_ratio", "eval_s", "attack_s", "cpu_s"}
    for a, b in zip(first, again, strict=True):
        for k, v in a.items():
            if k not in timing and isinstance(v, float):
                assert b[k] == pytest.approx(v, rel=1e-9, abs=1e-12), (a["method"], k)


@pytest.mark.parametrize("args,message", [
    (["--methods", "npoo"], "did you mean 'npo'"),
    (["--methods", "amun"], "supports classifiers only"),
    (["--split", "forget10"], "use it with --task tofu"),
    (["--set", "npo.bta=0.2"], "did you mean 'beta'"),
])
def test_cli_persons_rejects_bad_settings(args, message, tmp_path):
    res = runner.invoke(app, ["bench", "--task", "persons", "--out", str(tmp_path), "--no-progress", *args])
    assert res.exit_code == 2 and "Traceback" not in res.output
    assert message in res.output


def test_tofu_split_is_validated(tmp_path):
    res = runner.invoke(app, ["bench", "--task", "tofu", "--split", "forget07", "--out", str(tmp_path)])
    assert res.exit_code == 2 and "forget01, forget05, forget10" in res.output


def test_tofu_task_data(shared_data):
    from obliviate.tasks.lm_config import LMBenchConfig
    from obliviate.tasks.lm_data import tofu_data

    data = tofu_data(LMBenchConfig(task="tofu", split="forget01", data_dir=str(shared_data / "tofu"),
                                   eval={"max_examples": 50}), 0)
    assert len(data.train) == 4000 and len(data.forget) == 40 and len(data.retain) == 3960
    assert set(data.forget.ids) <= set(data.train.ids) and not set(data.forget.ids) & set(data.retain.ids)
    assert all(ex.perturbed_answer for ex in data.forget)
    assert set(data.utility) == {"retain", "real_authors", "world_facts"}
    assert len(data.evals["retain"]) == 50 and len(data.evals["holdout"]) == 40


def test_parallel_training_matches_sequential(tiny_lm):
    """The two-process training path gives the same weights as training here."""
    import torch

    from obliviate.tasks.lm_models import _train_worker
    from obliviate.models.lm import build_gpt2
    from obliviate.training.lm import LMRecipe, train_lm

    fmt, spec, data = tiny_lm["fmt"], tiny_lm["spec"], tiny_lm["forget"]
    recipe = LMRecipe(epochs=2, batch_size=8)
    here = build_gpt2(spec, len(fmt.tokenizer), seed=5, eos_token_id=fmt.eos_id)
    train_lm(here, fmt, data, recipe, seed=5)
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(max_workers=1, mp_context=mp.get_context("spawn")) as pool:
        state, _ = pool.submit(_train_worker, (spec, fmt.tokenizer, fmt.max_length, data, recipe, 5)).result()
    assert all(torch.equal(v, state[k]) for k, v in here.state_dict().items())


def test_model_path_with_lora_and_chat_template(tiny_lm, tmp_path):
    """A local model directory as the base (fine-tuned to original and retain-only), unlearning through LoRA."""
    pytest.importorskip("peft")
    base = tmp_path / "base"
    tiny_lm["original"].save_pretrained(base)
    tok = tiny_lm["fmt"].tokenizer
    tok.chat_template = ("{% for m in messages %}<{{ m['role'] }}>{{ m['content'] }}\n{% endfor %}"
                         "{% if add_generation_prompt %}<assistant>{% endif %}")
    tok.save_pretrained(base)
    tok.chat_template = None
    cfg = tmp_path / "run.json"
    cfg.write_text(json.dumps({
        "corpus": TINY["corpus"], "eval": TINY["eval"], "attacks": TINY["attacks"], "chat_template": True,
        "lora": {"r": 4, "alpha": 8}, "method_config": {"graddiff": {"epochs": 1, "lr": 1e-3, "batch_size": 8}},
        "cache_dir": str(tmp_path / "cache")}))
    out = tmp_path / "run"
    res = runner.invoke(app, ["bench", "--task", "persons", "--config", str(cfg), "--model-path", str(base),
                              "--methods", "graddiff", "--epochs", "1", "--out", str(out), "--no-progress"])
    assert res.exit_code == 0, res.output
    records = json.loads((out / "results.json").read_text())
    assert [r["method"] for r in records] == ["original", "retrain", "graddiff"]
    assert records[2]["steps"] > 0 and REQUIRED <= set(records[2])
    meta = json.loads((out / "meta.json").read_text())
    assert meta["seeds"]["0"]["model"]["kind"] == "local" and meta["seeds"]["0"]["format"]["chat_template"]
    bad = runner.invoke(app, ["bench", "--task", "persons", "--model-path", str(tmp_path / "nowhere"),
                              "--out", str(out), "--no-progress", "--overwrite"])
    assert bad.exit_code == 2 and "not a directory" in bad.output


@pytest.mark.slow
def test_methods_in_worker_processes_match_this_process(tmp_path):
    """Two worker processes give the same records as running the methods one after another here."""
    from obliviate.tasks.lm_config import LMBenchConfig
    from obliviate.bench.runner import run_bench as run_lm_bench

    timing = {"wall_s", "wall_ratio", "attack_s", "eval_s", "cpu_s"}
    runs = {}
    for workers in (1, 2):
        cfg = LMBenchConfig(**{**TINY, "cache_dir": str(tmp_path / "cache"), "methods": ["npo", "graddiff", "idk"],
                               "method_workers": workers, "progress": False})
        result = run_lm_bench(cfg)
        assert result.meta["seeds"]["0"]["method_workers"] == workers
        runs[workers] = [{k: v for k, v in r.items() if k not in timing} for r in result.records]
    assert [r["method"] for r in runs[2]] == ["original", "retrain", "npo", "graddiff", "idk"]
    assert json.dumps(runs[1], sort_keys=True, default=str) == json.dumps(runs[2], sort_keys=True, default=str)
    assert runs[2][2]["forget_prob"] != runs[2][0]["forget_prob"]  # the methods did run


def test_persons_takes_a_forget_request(tmp_path):
    """--forget on a language-model run: chosen people, a share of people, and the errors."""
    from obliviate.data.request import ForgetRequest
    from obliviate.tasks.lm_config import LMBenchConfig
    from obliviate.tasks.lm_data import persons_data

    cfg = LMBenchConfig(**TINY)
    default = persons_data(cfg, 0, ForgetRequest.parse("random:0.17"))
    assert default.meta["forget_chosen"] is False and default.meta["n_forget_people"] == 1
    people = sorted(s for s in default.retain.subjects() if s.startswith("person-"))[:2]
    chosen = persons_data(cfg, 0, ForgetRequest(subjects=people))
    assert set(chosen.forget.subjects()) == set(people)
    assert not set(chosen.forget.ids) & set(chosen.retain.ids)
    assert not set(people) & set(chosen.evals["neighbours"].subjects())
    assert len(chosen.forget) == sum(1 for ex in chosen.train if ex.subject in people)
    wider = persons_data(cfg, 0, ForgetRequest.parse("random:0.5"))
    assert wider.meta["n_forget_people"] == 3

    out = tmp_path / "run"
    cfg_file = tmp_path / "tiny.json"
    cfg_file.write_text(json.dumps({**TINY, "cache_dir": str(tmp_path / "cache"), "attacks": {
        "relearn": {"enabled": False}, "icl": {"enabled": False}}}))
    res = runner.invoke(app, ["bench", "--task", "persons", "--config", str(cfg_file), "--methods", "graddiff",
                              "--forget", f"subjects:{people[0]}", "--out", str(out), "--no-progress"])
    assert res.exit_code == 0, res.output
    meta = json.loads((out / "meta.json").read_text())
    assert meta["forget"]["subjects"] == [people[0]] and meta["seeds"]["0"]["n_forget_people"] == 1
    for args, message in ((["--forget", "class:3"], "no classes"), (["--forget", "subjects:nobody"], "'nobody'"),
                          (["--forget", "memorized:0.1"], "random:FRACTION"), (["--threads", "0"], "threads")):
        bad = runner.invoke(app, ["bench", "--task", "persons", "--config", str(cfg_file), "--out", str(out),
                                  "--no-progress", "--overwrite", *args])
        assert bad.exit_code == 2 and message in bad.output, (args, bad.output)
        assert "Traceback" not in bad.output
