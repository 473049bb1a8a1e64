"""hazard: synthetic hazardous knowledge, behaviour and capability under RMU, a guard and retraining; relearning."""

import pytest

from obliviate.errors import ConfigError
from obliviate.lab import EXPERIMENTS
from obliviate.lab._synthetic import hazard_world, text_blocklist_hits


def _world(seed=0):
    return hazard_world(n_hazard=6, n_benign=8, n_unrelated=4, seed=seed)


def _texts(w):
    data = [*w.train, *w.capability, *w.unrelated]
    return [t for ex in data for t in (ex.question, ex.answer)] + list(w.descriptions)


def test_world_is_seeded_made_up_and_keeps_its_splits_apart():
    a, b, c = _world(), _world(), _world(1)
    assert _texts(a) == _texts(b) and _texts(a) != _texts(c)
    assert text_blocklist_hits(_texts(a)) == []
    trained = {ex.question for ex in a.train}
    assert not trained & {ex.question for ex in a.capability}, "the capability probe is never trained"
    assert not trained & {ex.question for ex in a.unrelated}, "the relearning facts are unseen"
    assert not {ex.answer for ex in a.hazard} & {ex.answer for ex in a.unrelated}
    assert {ex.id for ex in a.hazard}.isdisjoint(ex.id for ex in a.benign)


def test_mc_items_hold_the_truth_and_same_slot_distractors():
    w = _world()
    answers = {ex.id: ex.answer for ex in w.hazard}
    for it in w.mc_hazard:
        assert len(it.options) == 4 and len(set(it.options)) == 4
        assert it.options[it.answer] == answers[it.id]
        slot = it.id.rsplit("-", 1)[1]
        same_slot = {a for i, a in answers.items() if i.endswith("-" + slot)}
        assert set(it.options) <= same_slot


def test_quick_run_separates_knowledge_behaviour_and_relearning(quick):
    r = quick("hazard")
    m = r.measured
    chance = m["chance"]
    assert chance == 0.25
    assert m["original"]["mc_hazard"] >= chance + 0.4, "MC scoring of the trained model beats chance"
    assert m["retrain"]["mc_hazard"] <= m["original"]["mc_hazard"] - 0.3, "retraining without the set lowers MC"
    assert m["retrain"]["open_hazard_exact"] <= 0.1
    g = m["guard:exact"]
    assert g["mc_hazard"] == m["original"]["mc_hazard"], "a guard leaves the weights, and so the likelihoods, alone"
    assert g["open_hazard_exact"] == 0.0 and g["hazard_refused"] == 1.0
    assert g["benign_refused"] <= 0.1
    for name in ("original", "retrain", "rmu"):
        assert 0.0 <= m[name]["mc_hazard_after_relearn"] <= 1.0
        assert m[name]["relearn_mc_gain"] == pytest.approx(m[name]["mc_hazard_after_relearn"] - m[name]["mc_hazard"])
    assert m["rmu"]["relearn_mc_excess"] == pytest.approx(m["rmu"]["relearn_mc_gain"] - m["retrain"]["relearn_mc_gain"])
    assert m["mc_sd_at_chance"] == pytest.approx((0.25 * 0.75 / r.details["sizes"]["mc items"]) ** 0.5)
    assert r.kind == {"original": "none", "retrain": "exact", "rmu": "approximate", "guard:exact": "suppression"}
    assert f"{m['rmu']['mc_hazard']:.2f}" in r.claim and f"{m['retrain']['mc_hazard_after_relearn']:.2f}" in r.claim


def test_bad_config_lists_every_problem():
    exp = EXPERIMENTS.get("hazard")
    with pytest.raises(ConfigError) as info:
        exp.config({"n_hazard": 2, "methods": ["retrain", "rmv"], "relearn_steps": 0})
    text = str(info.value)
    assert "n_hazard" in text and "relearn_steps" in text and "did you mean 'rmu'" in text and "'retrain'" in text
