"""concept: a concept given by examples, probed in scope, near scope and out of scope."""

import pytest

from obliviate.errors import ConfigError
from obliviate.lab import EXPERIMENTS
from obliviate.lab._synthetic import concept_world, text_blocklist_hits


def _texts(world):
    return [t for ex in world.train for t in (ex.question, ex.answer, ex.paraphrased_answer)] + list(
        world.concept_examples)


def test_world_is_seeded_and_holds_no_real_names():
    a, b = concept_world(n_concept=4, n_near=4, n_out=8, seed=3), concept_world(n_concept=4, n_near=4, n_out=8, seed=3)
    c = concept_world(n_concept=4, n_near=4, n_out=8, seed=4)
    assert _texts(a) == _texts(b)
    assert _texts(a) != _texts(c)
    assert text_blocklist_hits(_texts(a)) == []
    assert text_blocklist_hits(["Harry went to Hogwarts"]) == ["harry", "hogwart"]  # the check itself can fail


def test_near_scope_shares_a_family_name_and_birthplace_with_the_concept():
    w = concept_world(n_concept=4, n_near=4, n_out=8, seed=0)
    concept_names = {n[0].split()[-1] for n in w.names.values()}
    births = {ex.answer for ex in w.rings["in_scope"] if ex.id.endswith("-born")}
    near_q = [ex for ex in w.rings["near_scope"] if ex.id.endswith("-born")]
    assert all(ex.question.split()[-2] in concept_names for ex in near_q)
    assert all(ex.answer in births for ex in near_q)
    out = [ex for ex in w.rings["out_of_scope"] if ex.id.endswith("-born")]
    assert not any(ex.answer in births for ex in out)
    assert set(w.concept_ids) == set(w.rings["in_scope"].ids) and len(w.train) == sum(map(len, w.rings.values()))


def test_quick_run_moves_the_rings_the_way_the_claim_says(quick):
    r = quick("concept")
    m = r.measured
    assert m["original"]["in_scope_exact"] >= 0.5, "the original learned the concept's facts"
    assert m["retrain"]["in_scope_change_pts"] < -25, "retraining without the concept lowers in-scope accuracy"
    assert abs(m["retrain"]["out_of_scope_change_pts"]) <= 20
    assert r.kind["retrain"] == "exact" and r.kind["graddiff"] == "approximate"
    assert r.kind["guard:exact"] == "suppression" and r.kind["original"] == "none"
    g = m["guard:exact"]
    assert g["in_scope_refused"] == 1.0, "every in-scope question names a concept character"
    assert g["out_of_scope_refused"] == 0.0
    assert f"{m['retrain']['in_scope_exact']:.2f}" in r.claim and f"{g['near_scope_exact']:.2f}" in r.claim
    assert [row["kind"] for row in r.rows] == [r.kind[row["model"]] for row in r.rows]


def test_bad_config_lists_every_problem():
    exp = EXPERIMENTS.get("concept")
    with pytest.raises(ConfigError) as info:
        exp.config({"n_near": 9, "methods": ["gradiff"], "guards": ["icl"]})
    text = str(info.value)
    assert "n_near" in text and "did you mean 'graddiff'" in text and "guard 'icl'" in text
