"""Oracle-free tuning of classifier methods (``bench --tune``): rows, time, independence from the reference."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn
from typer.testing import CliRunner

from obliviate.bench import BenchConfig, run_bench
from obliviate.cli.main import app
from obliviate.config import validate
from obliviate.errors import ConfigError
from obliviate.removal.approximate.graddiff import GradDiffConfig
from obliviate.removal.base import Budget, StepBudget
from obliviate.tasks import classifier_tuning
from obliviate.tasks.tuning import EarlyStop, Target, Targets, generic_space, space_for

runner = CliRunner()


def _cfg(**kw):
    base = {"methods": ["graddiff"], "tune": True, "progress": False, "threads": 1, "use_cache": False}
    return validate(BenchConfig, {**base, **kw})


@pytest.fixture(scope="module")
def mnist1d_run():
    """mnist1d (1,000 training examples, 20% forgotten): the original memorises, held-out accuracy ~0.5."""
    return run_bench(_cfg(dataset="mnist1d", train_subset=1000, forget="random:0.2", recipe={"epochs": 40},
                          tune_budget_s=3.0))


def _row(records, method, tuned):
    return next(r for r in records if r["method"] == method and r["tuned"] is tuned)


def test_tuned_rows_carry_the_fields_and_time(mnist1d_run):
    recs = mnist1d_run.records
    assert all("tuned" in r and "tuning_s" in r for r in recs)
    assert [(r["method"], r["tuned"]) for r in recs] == [("original", False), ("retrain", False),
                                                         ("graddiff", False), ("graddiff", True)]
    untuned, tuned = _row(recs, "graddiff", False), _row(recs, "graddiff", True)
    assert untuned["tuning_s"] == 0 and tuned["tuning_s"] > 0
    retrain_s = mnist1d_run.meta["seeds"]["0"]["retrain_s"]
    assert tuned["wall_ratio"] >= tuned["tuning_s"] / retrain_s - 1e-12
    sel = tuned["tuning"]
    assert sel["trials"] and sel["trials"][0]["overrides"] == {}  # the defaults are the first candidate
    assert {t["measure"] for t in sel["targets"]} == {"forget_gap", "mia_auc", "retain_acc", "val_acc"}
    meta = mnist1d_run.meta["seeds"]["0"]
    assert meta["n_val"] == 500 and meta["n_test_reported"] == 500


def test_tuned_graddiff_moves_forget_accuracy_toward_retrain(mnist1d_run):
    recs = mnist1d_run.records
    ref, untuned, tuned = (_row(recs, "retrain", False), _row(recs, "graddiff", False), _row(recs, "graddiff", True))
    # the retrained model is the test's oracle only: the selection never saw it
    assert abs(tuned["forget_acc"] - ref["forget_acc"]) < abs(untuned["forget_acc"] - ref["forget_acc"]) - 0.02
    assert tuned["retain_acc"] >= _row(recs, "original", False)["retain_acc"] - 0.02


def test_report_shows_defaults_and_tuned_side_by_side(mnist1d_run):
    from obliviate.bench.runner import summarise

    text = summarise(mnist1d_run)
    assert "| graddiff | approximate | defaults |" in text and "| graddiff | approximate | tuned |" in text
    assert "tuned without the retrained model" in text and "settings" in text


def test_selection_never_reads_the_reference(monkeypatch):
    """A reference with zeroed weights (uniform outputs) leaves every trial and the choice exactly as they were."""
    monkeypatch.setattr(classifier_tuning, "MONITOR_OVERHEAD", 1.0)  # check at every call: deterministic
    kw = dict(dataset="digits", recipe={"epochs": 8}, tune_budget_s=60.0, tune_max_trials=3,
              method_config={"graddiff": {"lr": 1e-6}})
    clean = run_bench(_cfg(**kw))
    from obliviate.removal.exact.retrain import Retrain

    real = Retrain.unlearn

    def poisoned(self, model, task, **k):
        out, rec = real(self, model, task, **k)
        with torch.no_grad():
            for p in out.parameters():
                p.zero_()
        return out, rec

    monkeypatch.setattr(Retrain, "unlearn", poisoned)
    dirty = run_bench(_cfg(**kw))
    a, b = _row(clean.records, "graddiff", True), _row(dirty.records, "graddiff", True)
    assert _row(dirty.records, "retrain", False)["forget_acc"] < 0.5  # the reference was poisoned...
    assert a["tow"] != b["tow"]
    strip = lambda sel: [(t["overrides"], t["measures"], t["steps"]) for t in sel["trials"]]  # noqa: E731
    assert strip(a["tuning"]) == strip(b["tuning"]) and a["tuning"]["chosen"] == b["tuning"]["chosen"]  # ...unseen
    assert all(np.isfinite(v) for t in b["tuning"]["trials"] for v in t["measures"].values())


def test_early_stopping_stops_when_targets_are_met():
    """On digits the original already meets the targets: the first check stops the defaults' trial."""
    res = run_bench(_cfg(dataset="digits", recipe={"epochs": 8}, tune_budget_s=30.0))
    tuned = _row(res.records, "graddiff", True)
    first = tuned["tuning"]["trials"][0]
    assert first["stopped_by"] == "targets met"  # on the monitor's subsamples; the full sets may disagree a little
    assert first["steps"] == classifier_tuning.MONITOR_EVERY < _row(res.records, "graddiff", False)["steps"]


def test_early_stop_monitor_on_a_budget():
    model = nn.Linear(2, 2)
    calls = iter([{"x": 0.5}, {"x": 0.3}, {"x": 0.01}])
    targets = Targets((Target("x", 0.0, 0.05),))
    stop = EarlyStop(lambda m: next(calls), targets, overhead=1.0)
    ctl = StepBudget(Budget(monitor=stop, monitor_every=2), model)
    while ctl.ok():
        ctl.step()
    assert ctl.stopped_by == "targets met" and ctl.steps == 6 and stop.checks == 3
    with pytest.raises(ConfigError, match="overhead"):
        EarlyStop(lambda m: {}, targets, overhead=0)


def test_spaces():
    assert generic_space(GradDiffConfig()) == {"lr": pytest.approx([3e-4, 9e-4, 3e-3]), "epochs": [3.0, 6.0]}
    assert space_for(GradDiffConfig(), "classification") == GradDiffConfig.tuning_space["classification"]
    assert space_for(GradDiffConfig(), "nope") == generic_space(GradDiffConfig())


@pytest.mark.parametrize("bad", [{"tune_budget": 0}, {"tune_budget": -0.1}, {"tune_budget": 2},
                                 {"tune_budget_s": 0}, {"tune_val_fraction": 1.0}])
def test_bad_tuning_settings_raise(bad):
    with pytest.raises(ConfigError):
        _cfg(**bad)


def test_tune_with_your_weights_needs_seconds(tmp_path):
    from obliviate.bench.runner import make_task

    task = make_task(_cfg(dataset="digits", model_weights=str(tmp_path / "w.safetensors")))
    with pytest.raises(ConfigError, match="tune_budget_s"):
        task.preflight()


def test_cli_tune_reports_both_rows(tmp_path):
    out = tmp_path / "run"
    res = runner.invoke(app, ["bench", "--dataset", "digits", "--methods", "graddiff", "--tune", "--epochs", "8",
                              "--out", str(out), "--no-progress", "--threads", "1", "--no-cache"])
    assert res.exit_code == 0, res.output
    md = (out / "report.md").read_text()
    assert "| graddiff | approximate | defaults |" in md and "| graddiff | approximate | tuned |" in md
    html = (out / "report.html").read_text()
    assert "defaults" in html and "tuned" in html and "changed nothing" in html


def test_keep_weight_lets_a_noise_level_dip_lose_to_a_large_reach_gain():
    t = (Target("f", 0.0, 0.0), Target("r", 1.0, 0.0, "keep", "below"))
    dip, stuck = {"f": 0.0, "r": 0.999}, {"f": 0.5, "r": 1.0}
    assert Targets(t).score(dip) > Targets(t).score(stuck)  # lexicographic: any break loses
    assert Targets(t, keep_weight=10.0).score(dip) < Targets(t, keep_weight=10.0).score(stuck)
    with pytest.raises(ConfigError, match="keep_weight"):
        Targets(t, keep_weight=0.0)

