"""Verdicts look both ways (issue 15), and the SVC attack says when it cannot be trusted."""

from __future__ import annotations

import numpy as np
import pytest

from obliviate.audit.attacks import ATTACKS, GroupScores, Thresholds
from obliviate.audit.attacks.population import svc_spread
from obliviate.audit.verdicts import caveat_notes, flag_sentences, method_verdict

TH = Thresholds()


def _lira(auc: float) -> dict:
    side = {"auc": auc, "tpr_at_1pct": 0.01, "tpr_at_0_1pct": 0.0, "negated": {"tpr_at_1pct": 0.01}}
    return {"online": side, "offline": side}


@pytest.mark.parametrize("auc,caught", [(0.135, True), (0.865, True), (0.44, True), (0.56, True),
                                        (0.5, False), (0.46, False), (0.54, False)])
def test_lira_auc_far_from_chance_either_way_is_caught(auc, caught):
    assert (ATTACKS.get("lira")().verdict(_lira(auc), None, TH) is not None) is caught


def test_lira_tpr_of_the_negated_scores_counts():
    res = _lira(0.5)
    res["online"]["negated"]["tpr_at_1pct"] = 0.2  # a few examples confidently *below* the retrained ones
    assert "LiRA" in ATTACKS.get("lira")().verdict(res, None, TH)


@pytest.mark.parametrize("gap,caught", [(-0.3, True), (0.3, True), (-0.05, True), (0.02, False), (-0.02, False)])
def test_relearn_gap_far_below_the_control_is_caught(gap, caught):
    res = {"after_gap": gap}
    assert (ATTACKS.get("relearn")().verdict(res, None, TH) is not None) is caught


@pytest.mark.parametrize("acc,caught", [(0.3, True), (0.7, True), (0.52, False), (0.47, False)])
def test_ulira_both_ways(acc, caught):
    assert (ATTACKS.get("ulira")().verdict({"mean_accuracy": acc}, None, TH) is not None) is caught


@pytest.mark.parametrize("auc,passes", [(0.52, True), (0.47, True), (0.6, False), (0.3, False)])
def test_weak_attack_passes_only_near_retrain_either_way(auc, passes):
    pop = ATTACKS.get("population")()
    assert pop.passes({"mia_auc": auc}, {"mia_auc": 0.5}, TH) is passes
    assert pop.passes({"mia_auc": None}, {"mia_auc": 0.5}, TH) is None


def test_flagged_when_weak_passes_and_a_below_chance_strong_attack_catches():
    attacks = {n: ATTACKS.get(n)() for n in ("population", "lira")}
    ref = {"population": {"mia_auc": 0.5}, "lira": _lira(0.5)}
    res = {"population": {"mia_auc": 0.51}, "lira": _lira(0.135)}
    v = method_verdict(attacks, res, ref, TH)
    assert v["weak_passes"] is True and v["caught_by"] == ["lira"] and v["flagged"] is True
    assert "below chance" in v["caught_text"][0]
    sentences = flag_sentences({"m": {**res, "verdict": v}}, ["m"], ["lira"])
    assert sentences[0].startswith("m: the weak attack passes it")


def _scores(rng: np.random.Generator, n_models: int, retain_shift: float) -> GroupScores:
    acc = np.full(n_models, 0.9)
    return GroupScores(forget=rng.normal(size=(n_models, 80)), test=rng.normal(size=(n_models, 300)),
                       forget_acc=acc, retain_acc=acc, test_acc=acc,
                       retain=retain_shift + rng.normal(size=(n_models, 300)))


def test_svc_spread_flags_models_that_barely_overfit():
    rng = np.random.default_rng(0)
    barely = svc_spread(_scores(rng, 6, 0.0), seed=0)  # retain looks like test: nothing to learn
    assert barely["trusted"] is False and "barely overfit" in barely["why"]
    assert len(barely["per_replica"]) == 6 and barely["min"] <= barely["mean"] <= barely["max"]
    clear = svc_spread(_scores(rng, 6, 4.0), seed=0)   # members far more confident: a stable boundary
    assert clear["trusted"] is True and clear["why"] == "" and clear["std"] < 0.1
    pop = ATTACKS.get("population")()
    caveat = pop.caveat({"svc_replicas": barely})
    assert caveat and "cannot be trusted" in caveat and pop.caveat({"svc_replicas": clear}) is None
    v = {"verdict": {"caveats": {"population": caveat}}}
    assert caveat_notes({"m": v}, ["m"]) == [f"m: {caveat}."]
