import numpy as np
import pytest

from obliviate.lab.m5_side_effects import neighbours_of


def test_neighbours_are_the_most_confused_classes_both_ways():
    labels = np.array([0, 0, 1, 1, 2, 2, 3, 3])
    probs = np.full((8, 4), 0.05)
    probs[np.arange(8), labels] = 0.85
    probs[0:2] = [0.6, 0.05, 0.05, 0.3]  # class 0 leaks to 3
    probs[4:6] = [0.2, 0.05, 0.7, 0.05]  # class 2 leaks to 0
    assert neighbours_of(probs, labels, c=0, k=2) == [3, 2]


@pytest.fixture(scope="module")
def result(quick):
    return quick("m5")


def test_rows_are_labelled_and_the_claim_quotes_them(result):
    kinds = {r["method"]: r["kind"] for r in result.rows}
    assert kinds == {"original": "none", "retrain": "exact", "finetune": "approximate"}
    m = result.measured
    assert m["retrain"]["forgotten_acc"] < 0.05  # retrain never saw the class
    for name in ("retrain", "finetune"):
        r = m[name]
        assert f"{r['neighbours_change_pts']:+.1f} on neighbours vs {r['others_change_pts']:+.1f}" in result.claim
        assert r["test_change_pts"] == pytest.approx(100 * (r["test_acc"] - m["original"]["test_acc"]), abs=1e-9)
    assert len(result.details["neighbours"]) == 2 and "8" not in result.details["neighbours"]
    ref = m["retrain"]["neighbours_change_pts"]
    assert f"exact retrain's own {ref:+.1f}" in result.claim
    assert f"finetune {m['finetune']['neighbours_change_pts'] - ref:+.1f}" in result.claim
    assert "forgot" not in result.claim and "removed" not in result.claim
