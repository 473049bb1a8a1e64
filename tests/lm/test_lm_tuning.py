"""The oracle-free selection of the LM tasks (``--tune``): tuning people, measures, targets, stopping, rows."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from obliviate.cli.main import app

N_PEOPLE, CORPUS_SEED = 6, 1  # the tiny_lm fixture's corpus (tests/lm/conftest.py)

runner = CliRunner()

TINY = {
    "corpus": {"n_people": 6, "forget_fraction": 0.17, "seed": 1, "n_perturbed": 3},
    "model": {"n_layer": 2, "n_embd": 64, "n_head": 2, "vocab_size": 500},
    "recipe": {"epochs": 12, "batch_size": 16, "lr": 5e-3},
    "eval": {"max_examples": 24, "n_boot": 20},
    "attacks": {"relearn": {"enabled": False}, "icl": {"enabled": False}},
    "tuning": {"max_examples": 24, "checks": 3},
    "parallel_training": False,
    "method_workers": 1,
    "method_config": {"graddiff": {"epochs": 2, "lr": 1e-3, "batch_size": 8}},
}


def _corpus(n_tuning: int):
    from obliviate.data.persons import make_persons_corpus

    return make_persons_corpus(N_PEOPLE, 1 / N_PEOPLE, seed=CORPUS_SEED, n_perturbed=3, n_tuning=n_tuning)


def test_tuning_people_leave_the_other_splits_alone():
    plain, more = _corpus(0), _corpus(2)
    assert len(plain.tuning) == 0 and len(more.tuning.subjects()) == 2
    for name, split in plain.splits().items():
        if name != "tuning":
            assert [e.to_dict() for e in split] == [e.to_dict() for e in more.splits()[name]], name
    others = set(more.train.subjects()) | set(more.holdout.subjects())
    assert not set(more.tuning.subjects()) & others
    names = {more.person(s).full_name for s in others}
    assert not {more.person(s).full_name for s in more.tuning.subjects()} & names
    assert all(len(ex.perturbed_answer) == 3 for ex in more.tuning)
    # each tuning person shares values with a retained person who is not a neighbour (as forget people do)
    from obliviate.data.persons import SHAREABLE_ATTRIBUTES

    donors = set(more.retain.subjects()) - set(more.neighbours.subjects())
    for t in more.tuning.subjects():
        tp = more.person(t)
        assert any(sum(getattr(tp, a) == getattr(more.person(d), a) for a in SHAREABLE_ATTRIBUTES) >= 2
                   for d in donors), t


def test_persons_data_keeps_tuning_splits_apart_from_the_evaluated_ones():
    from obliviate.tasks.lm_config import LMBenchConfig
    from obliviate.tasks.lm_data import persons_data

    plain = persons_data(LMBenchConfig(**{k: TINY[k] for k in ("corpus", "eval")}), 0)
    assert plain.tuning == {}
    data = persons_data(LMBenchConfig(**{k: TINY[k] for k in ("corpus", "eval", "tuning")}, tune=True), 0)
    t = data.tuning
    assert set(t) == {"forget", "holdout", "retain", "neighbours", "general"}
    trained = set(data.train.subjects())
    assert not set(t["holdout"].subjects()) & (trained | set(data.evals["holdout"].subjects()))
    assert not set(t["retain"].ids) & set(data.evals["retain"].ids)
    assert set(t["retain"].ids) <= set(data.retain.ids)
    assert t["forget"].ids == data.evals["forget"].ids
    # the evaluated splits are the same with and without the tuning people
    for name, ds in plain.evals.items():
        assert ds.ids == data.evals[name].ids, name
    assert data.meta["n_tuning_people"] == 1


@pytest.fixture(scope="module")
def tuning_setup(tiny_lm):
    from obliviate.tasks.lm_config import LMTuningSection
    from obliviate.tasks.lm_data import values_form
    from obliviate.tasks.lm_tuning import Measurer, original_levels

    corpus = _corpus(2)
    fmt = tiny_lm["fmt"]
    tuning = {"forget": values_form(corpus.forget), "holdout": values_form(corpus.tuning),
              "retain": values_form(corpus.retain), "neighbours": values_form(corpus.neighbours),
              "general": values_form(corpus.general)}
    measurer = Measurer(fmt, tuning, batch_size=32)
    levels = original_levels(tiny_lm["original"], measurer)
    return {"measurer": measurer, "levels": levels, "cfg": LMTuningSection(checks=4, keep_tolerance=0.1,
                                                                            neighbour_tolerance=0.1)}


def _task(tiny_lm):
    from obliviate.removal.base import UnlearningTask
    from obliviate.removal.lm_objective import CausalLMObjective

    return UnlearningTask(forget=tiny_lm["forget"], retain=tiny_lm["retain"],
                          objective=CausalLMObjective(tiny_lm["fmt"]), recipe=tiny_lm["recipe"], seed=0)


def test_levels_come_from_the_original(tiny_lm, tuning_setup):
    lv = tuning_setup["levels"]
    assert lv.retain_exact > 0.8  # the original answers its training questions
    assert lv.holdout_exact < 0.5 and lv.holdout_truth_ratios.size > 0
    assert lv.measures["mia_auc"] > 0.7  # the original tells its forget people from never-seen ones


def test_tuned_graddiff_moves_forget_toward_retain_model_and_keeps_retain(tiny_lm, tuning_setup, monkeypatch):
    import obliviate.tasks.lm_tuning as lt
    from obliviate.audit.lm_eval import split_signals

    seen: list[torch.nn.Module] = []
    real = lt.measure

    def spy(model, measurer, levels):
        seen.append(model)
        return real(model, measurer, levels)

    monkeypatch.setattr(lt, "measure", spy)
    retained = tiny_lm["retained"]
    base = {"epochs": 6, "batch_size": 8}
    monkeypatch.setattr(lt.METHODS.get("graddiff").Config, "tuning_space", {})  # one trial: the settings given
    run = lt.tune_method("graddiff", tiny_lm["original"], _task(tiny_lm), tuning_setup["measurer"],
                         tuning_setup["levels"], tuning_setup["cfg"], profile=None,
                         base={**base, "lr": 1e-3}, seed=0)
    assert seen and all(m is not retained for m in seen)
    ref = {k: v for k, v in retained.state_dict().items()}
    assert all(any(not torch.equal(v, ref[k]) for k, v in m.state_dict().items()) for m in seen)

    fmt = tiny_lm["fmt"]

    def forget_prob(model):
        sig = split_signals(model, fmt, tiny_lm["forget"])
        return float(np.mean([np.exp(lp.mean()) for lp in sig.answer]))

    p_orig, p_ret, p_tuned = forget_prob(tiny_lm["original"]), forget_prob(retained), forget_prob(run.model)
    assert abs(p_tuned - p_ret) < abs(p_orig - p_ret)
    m = run.selection.chosen.measures
    assert m["retain_exact"] >= tuning_setup["levels"].retain_exact - 0.1
    assert run.selection.tuning_s > 0 and run.record.steps == run.selection.chosen.steps


def test_forget_loss_ceiling_stops_the_ascent(tiny_lm):
    from obliviate.removal.base import METHODS

    task = _task(tiny_lm)
    obj = task.objective

    def forget_loss(model):
        return float(obj.loss(model, next(iter(obj.batches(tiny_lm["forget"], 64, torch.Generator().manual_seed(0),
                                                           shuffle=False)))))

    free, _ = METHODS.get("graddiff").for_task(None, epochs=3, lr=1e-3, batch_size=8).unlearn(tiny_lm["original"], task)
    capped, _ = METHODS.get("graddiff").for_task(None, epochs=3, lr=1e-3, batch_size=8,
                                                 forget_loss_ceiling=0.0).unlearn(tiny_lm["original"], task)
    before = forget_loss(tiny_lm["original"])
    assert forget_loss(free) > before + 0.1  # unbounded ascent raises the forget loss
    assert forget_loss(capped) < before + 0.02  # every example starts above a ceiling of 0: no ascent


def test_checkpoints_stop_on_targets_and_keep_the_best_state():
    from obliviate.progress import NullProgress
    from obliviate.tasks.lm_tuning import Checkpoints, _PlannedSteps
    from obliviate.tasks.tuning import Target, Targets

    targets = Targets((Target("x", goal=0.0, tolerance=0.1),))
    values = iter([0.9, 0.5, 0.05, 0.7])
    model = torch.nn.Linear(2, 1)
    w0 = model.weight.detach().clone()
    planned = _PlannedSteps(NullProgress())
    planned.total = 8
    mon = Checkpoints(lambda m: {"x": next(values)}, targets, checks=4, planned=planned)
    reasons = []
    for step in range(1, 9):
        with torch.no_grad():
            model.weight.add_(1.0)
        reasons.append(mon(model, step))
    assert reasons[:5] == [None, None, None, None, None] and reasons[5] == "targets met"
    assert mon.best[1] == 6 and mon.best[2] == {"x": 0.05}
    assert torch.allclose(mon.best[3]["weight"], w0 + 6.0)

    # no improvement over the first check never stops a run (a phase that leaves the weights alone)
    flat = Checkpoints(lambda m: {"x": 0.9}, targets, checks=8, planned=planned)
    out = []
    for step in range(1, 9):
        with torch.no_grad():
            model.weight.add_(1.0)
        out.append(flat(model, step))
    assert out == [None] * 8


def test_cli_persons_tune_writes_tuned_and_default_rows(tmp_path):
    cfg = tmp_path / "tiny.json"
    cfg.write_text(json.dumps({**TINY, "cache_dir": str(tmp_path / "cache")}))
    out = tmp_path / "run"
    res = runner.invoke(app, ["bench", "--task", "persons", "--config", str(cfg), "--methods", "graddiff",
                              "--seeds", "1", "--out", str(out), "--no-progress", "--tune"])
    assert res.exit_code == 0, res.output
    records = json.loads((out / "results.json").read_text())
    rows = {(r["method"], r.get("tuned")): r for r in records}
    assert set(rows) == {("original", None), ("retrain", None), ("graddiff", False), ("graddiff", True)}
    default, tuned = rows[("graddiff", False)], rows[("graddiff", True)]
    assert default["tuning_s"] == 0.0
    assert tuned["tuning_s"] > 0 and tuned["wall_s"] == tuned["tuning_s"]
    assert tuned["wall_ratio"] == pytest.approx(tuned["wall_s"] / rows[("retrain", None)]["wall_s"])
    assert tuned["tuning"]["trials"] and {t["measure"] for t in tuned["tuning"]["targets"]} >= {"ks_p", "mia_auc"}
    meta = json.loads((out / "meta.json").read_text())
    assert meta["seeds"]["0"]["tuning_levels"]["retain_exact"] >= 0


def test_cli_tune_rejects_tofu(tmp_path):
    res = runner.invoke(app, ["bench", "--task", "tofu", "--tune", "--out", str(tmp_path), "--no-progress"])
    assert res.exit_code == 2 and "--tune" in res.output and "Traceback" not in res.output
