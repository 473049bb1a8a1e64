"""The decision table: the seed paper's cases, one row each, and plans built from it."""

from __future__ import annotations

import pytest

from obliviate.errors import ConfigError
from obliviate.policy import DECISION_TABLE, decide, make_plan, parse_request
from obliviate.policy.table import ANY, DecisionRow, table_markdown


def _req(why, kind, deployment="digits-sisa", **what):
    what = {"kind": kind, **({"ids": ["train-0"]} if not what else what)}
    return parse_request({"format": "obliviate-request-v1", "request_id": "r", "who": "data_subject",
                          "what": what, "why": why, "received": "2026-12-01", "deployment": deployment})


@pytest.mark.parametrize("access", ["outputs", "weights"])
def test_strictly_forbidden_observed_data_removal_necessary_maybe_sufficient(access):
    d = decide(_req("erasure", "data_subject", subjects=["s1"]), access)
    assert (d.row.removal_necessary, d.row.removal_sufficient) == ("yes", "maybe")
    assert d.row.suppression_sufficient == "no"  # guards alone never honour an erasure (M1)


@pytest.mark.parametrize("access", ["outputs", "weights"])
def test_deepfakes_from_latent_information_removal_not_sufficient_suppression_necessary(access):
    d = decide(_req("safety", "concept", examples=["a", "b", "c"]), access)
    assert d.row.removal_sufficient == "no" and d.row.suppression_necessary == "yes"
    assert "deepfakes" in d.row.case
    assert d.row.suppression_sufficient == ("no" if access == "weights" else "maybe")


def test_consent_over_training_use_suppression_not_necessary():
    d = decide(_req("consent_withdrawn", "examples"), "outputs")
    assert d.row.suppression_necessary == "no"
    assert (d.row.removal_necessary, d.row.removal_sufficient) == ("yes", "yes")


def test_the_most_specific_row_wins_and_the_others_are_named():
    d = decide(_req("erasure", "examples"), "outputs")
    assert d.row.specificity == 3 and d.row.access == "outputs"
    assert any(r.reason == ANY for r in d.considered)
    assert any("also matched" in line for line in d.explain())


def test_every_combination_has_a_row_and_an_uncovered_one_is_a_typed_error():
    for reason in ("erasure", "copyright", "safety", "correction", "consent_withdrawn"):
        for kind, what in (("examples", {"ids": ["x"]}), ("data_subject", {"subjects": ["s"]}),
                           ("concept", {"examples": ["a"]}), ("capability", {"examples": ["a"]})):
            for access in ("outputs", "weights"):
                decide(_req(reason, kind, **what), access)
    only = (DecisionRow("erasure", ("examples",), "outputs", "yes", "yes", "no", "no", "x"),)
    with pytest.raises(ConfigError, match="No row of the decision table"):
        decide(_req("safety", "examples"), "outputs", table=only)
    assert table_markdown().count("\n") == len(DECISION_TABLE) + 1


def test_plans_follow_what_the_deployment_supports():
    exact = make_plan(_req("erasure", "examples"))
    assert [s.kind for s in exact.steps] == ["exact"] and exact.honourable
    assert any(r.startswith("M3") for r in exact.steps[0].residual_risks)
    approx = make_plan(_req("erasure", "examples", deployment="digits-classifier"))
    assert [s.kind for s in approx.steps] == ["approximate"] and "U-LiRA" in approx.steps[0].guarantee
    guards = make_plan(_req("safety", "concept", deployment="persons-lm", examples=["a", "b", "c"]))
    assert [s.kind for s in guards.steps] == ["suppression"]
    assert any(r.startswith("M1") for r in guards.steps[0].residual_risks)


def test_requests_that_cannot_be_honoured_say_so_in_the_plan():
    fuzzy = make_plan(_req("safety", "capability", deployment="persons-lm", examples=["bad stuff"]))
    assert not fuzzy.honourable and any("too fuzzy to scope" in p for p in fuzzy.problems)
    assert fuzzy.steps == ()  # nothing is run on a scope nobody can state
    # suppression is necessary, but users hold the weights: no guard binds them
    released = make_plan(_req("safety", "concept", deployment="digits-classifier", examples=["a", "b", "c"]))
    assert not released.honourable and any("hold the weights" in p for p in released.problems)
