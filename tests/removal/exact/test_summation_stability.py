"""Ridge deletion: the per-deletion record and the numerical-stability check with its fallbacks."""

from __future__ import annotations

import logging

import numpy as np
import pytest
from sklearn.linear_model import Ridge

from obliviate.removal.exact import summation_ridge
from obliviate.removal.exact.summation import (
    DeletionRecord,
    SummationGaussianNB,
    SummationMultinomialNB,
    SummationRidge,
)

TOL = 1e-8


def _regression(seed: int = 0, n: int = 300, d: int = 8):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d)) + 2.0
    y = X @ rng.normal(size=d) + rng.normal(size=n)
    return X, y, rng


def _max_diff(est: SummationRidge, ref: Ridge) -> float:
    """What 'equal' means here: the largest absolute difference of coef_ and intercept_."""
    return float(max(np.max(np.abs(est.coef_ - ref.coef_)), np.max(np.abs(est.intercept_ - ref.intercept_))))


def _collinear_case():
    """Two features equal up to 1e-4 noise, except in row 0, which alone separates them.

    Removing row 0 leaves almost no curvature along (x1 - x0): the Woodbury
    capacitance falls to ~4e-6 while no diagonal entry of the scatter shrinks
    (so only the capacitance can see it), and the subtraction cancels about six
    digits of the statistics in that direction.
    """
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 5))
    X[:, 1] = X[:, 0] + 1e-4 * rng.normal(size=200)
    X[0, 1] += 1.0
    y = X[:, 0] + X[:, 2] + 0.1 * rng.normal(size=200)
    return X, y


# ---------------------------------------------------------------- the record


def test_single_deletion_is_a_woodbury_update_with_its_measures():
    X, y, _ = _regression()
    est = SummationRidge().fit(X, y).forget([5])
    (record,) = est.deletion_log_
    assert isinstance(record, DeletionRecord)
    assert record.method == "woodbury" and not record.refactorised and record.reason is None
    assert 0.9 < record.stability["min_capacitance"] <= 1.0  # one row of 300 barely moves A
    assert record.stability["relative_correction"] < summation_ridge.MAX_CORRECTION
    assert record.to_dict()["n_rows"] == 1
    assert _max_diff(est, Ridge().fit(np.delete(X, 5, axis=0), np.delete(y, 5))) <= TOL


@pytest.mark.parametrize("k", [2, 7])
def test_small_batches_are_rank_k_updates(k):
    X, y, rng = _regression(1, d=40)
    gone = rng.choice(len(X), k, replace=False)
    est = SummationRidge(alpha=0.5).fit(X, y).forget(gone)
    assert est.deletion_log_[-1].method == "woodbury"
    assert 0 < est.deletion_log_[-1].stability["min_capacitance"] <= 1.0
    keep = np.setdiff1d(np.arange(len(X)), gone)
    assert _max_diff(est, Ridge(alpha=0.5).fit(X[keep], y[keep])) <= TOL


def test_a_large_batch_refactorises_by_plan_without_a_warning(caplog):
    X, y, rng = _regression(2, d=8)
    gone = rng.choice(len(X), 5, replace=False)  # rank 6 > d / 4
    with caplog.at_level(logging.WARNING, logger=summation_ridge.__name__):
        est = SummationRidge().fit(X, y).forget(gone)
    record = est.deletion_log_[-1]
    assert record.method == "refactorise" and record.refactorised and record.reason.startswith("planned")
    assert not caplog.records
    keep = np.setdiff1d(np.arange(len(X)), gone)
    assert _max_diff(est, Ridge().fit(X[keep], y[keep])) <= TOL


def test_naive_bayes_records_subtractions():
    rng = np.random.default_rng(3)
    X, y = rng.random((60, 4)), rng.integers(0, 2, 60)
    for cls in (SummationGaussianNB, SummationMultinomialNB):
        est = cls().fit(X, y).forget([1, 2]).forget([3])
        assert [r.n_rows for r in est.deletion_log_] == [2, 1]
        assert all(r.method == "subtract" and not r.refactorised for r in est.deletion_log_)


# ---------------------------------------------------------------- the stability check


def test_ill_conditioned_downdate_recomputes_says_so_and_matches_sklearn(caplog):
    X, y = _collinear_case()
    with caplog.at_level(logging.WARNING, logger=summation_ridge.__name__):
        est = SummationRidge(alpha=1e-6).fit(X, y).forget([0])
    record = est.deletion_log_[-1]
    assert record.refactorised and record.method == "recompute"
    assert "capacitance" in record.reason and record.stability["min_capacitance"] < summation_ridge.MIN_CAPACITANCE
    # No feature loses much of its spread: an axis-wise test alone would have missed it.
    assert np.all(X[1:].var(axis=0) > 0.5 * X.var(axis=0))
    assert any("recomputing the statistics" in r.getMessage() for r in caplog.records)
    assert _max_diff(est, Ridge(alpha=1e-6).fit(X[1:], y[1:])) <= TOL
    # Later deletions go back to cheap updates on the fresh factorisation. (The remaining system
    # has cond ~1e8, so scikit-learn's own answer is only good to ~1e-6 from here on: no comparison.)
    est.forget([10])
    assert est.deletion_log_[-1].method == "woodbury"


def test_without_the_check_the_same_downdate_is_wrong(monkeypatch):
    # Shows that the case above is really ill-conditioned: the plain update misses by far more than 1e-8.
    monkeypatch.setattr(summation_ridge, "MIN_CAPACITANCE", -np.inf)
    monkeypatch.setattr(summation_ridge, "MAX_CORRECTION", np.inf)
    X, y = _collinear_case()
    est = SummationRidge(alpha=1e-6).fit(X, y).forget([0])
    assert est.deletion_log_[-1].method == "woodbury"
    assert _max_diff(est, Ridge(alpha=1e-6).fit(X[1:], y[1:])) > 100 * TOL


def test_refinement_alone_notices_but_cannot_repair_damaged_statistics(monkeypatch):
    # Second line of defence: with the capacitance test off, the refinement check sees the drift.
    monkeypatch.setattr(summation_ridge, "MIN_CAPACITANCE", -np.inf)
    X, y = _collinear_case()
    est = SummationRidge(alpha=1e-6).fit(X, y).forget([0])
    assert est.deletion_log_[-1].method == "refactorise" and "drifted" in est.deletion_log_[-1].reason


@pytest.mark.parametrize("fit_intercept", [True, False])
@pytest.mark.parametrize("gone, check", [([0], "capacitance"), ([0, 1], "shrank")], ids=["update", "planned"])
def test_removing_an_outlier_that_carries_a_feature_recomputes(fit_intercept, gone, check):
    # Feature 2 is zero except in row 0 (value 1e6): removing row 0 cancels every digit of its scatter.
    # One row goes through the Woodbury update (capacitance check); two rows at d = 6 are a planned
    # refactorisation (rank 2 or 3 > d / 4), where the diagonal check must catch it.
    rng = np.random.default_rng(4)
    X = rng.normal(size=(200, 6))
    X[:, 2] = 0.0
    X[0, 2] = 1e6
    y = X[:, [0, 1, 3]] @ [1.0, 2.0, 3.0] + rng.normal(size=200) + 1e-3 * X[:, 2]
    est = SummationRidge(fit_intercept=fit_intercept).fit(X, y).forget(gone)
    record = est.deletion_log_[-1]
    assert record.method == "recompute" and record.refactorised and check in record.reason
    keep = np.setdiff1d(np.arange(200), gone)
    assert _max_diff(est, Ridge(fit_intercept=fit_intercept).fit(X[keep], y[keep])) <= TOL
    est.forget([7])  # back to cheap updates, still equal to a refit
    assert est.deletion_log_[-1].method == "woodbury"
    keep = np.setdiff1d(keep, [7])
    assert _max_diff(est, Ridge(fit_intercept=fit_intercept).fit(X[keep], y[keep])) <= TOL


def test_the_outlier_case_is_wrong_without_the_check(monkeypatch):
    for name, off in [("MIN_CAPACITANCE", -np.inf), ("MAX_SCATTER_SHRINK", np.inf), ("MAX_CORRECTION", np.inf)]:
        monkeypatch.setattr(summation_ridge, name, off)
    rng = np.random.default_rng(4)
    X = rng.normal(size=(200, 6))
    X[:, 2] = 0.0
    X[0, 2] = 1e6
    y = X[:, [0, 1, 3]] @ [1.0, 2.0, 3.0] + rng.normal(size=200) + 1e-3 * X[:, 2]
    est = SummationRidge().fit(X, y).forget([0])
    assert _max_diff(est, Ridge().fit(X[1:], y[1:])) > TOL


# ---------------------------------------------------------------- Gaussian naive Bayes


def _offset_classes():
    """Means of 1e6 with unit spread: removing 198 of a class's 200 rows cancels leading digits."""
    rng = np.random.default_rng(5)
    y = np.repeat([0, 1], 200)
    X = 1e6 + rng.normal(size=(400, 3)) + y[:, None]
    return X, y, np.flatnonzero(y == 0)[:198]


def _nb_max_diff(est, ref) -> float:
    """Largest absolute difference of theta_ and var_ (what a Gaussian NB's predictions rest on)."""
    return float(max(np.max(np.abs(est.theta_ - ref.theta_)), np.max(np.abs(est.var_ - ref.var_))))


def test_gaussian_nb_recomputes_a_downdate_that_would_lose_accuracy(caplog):
    from sklearn.naive_bayes import GaussianNB

    X, y, gone = _offset_classes()
    with caplog.at_level(logging.WARNING):
        est = SummationGaussianNB().fit(X, y).forget(gone)
    record = est.deletion_log_[-1]
    assert record.method == "recompute" and record.refactorised and "class 0" in record.reason
    assert record.stability["error_amplification"] > 100
    assert any("recomputed from the stored remaining rows" in r.getMessage() for r in caplog.records)
    keep = np.setdiff1d(np.arange(len(y)), gone)
    assert _nb_max_diff(est, GaussianNB().fit(X[keep], y[keep])) <= TOL
    est.forget([300])  # an ordinary deletion: cheap subtraction again
    assert est.deletion_log_[-1].method == "subtract"


def test_gaussian_nb_offset_case_is_wrong_without_the_check(monkeypatch):
    from sklearn.naive_bayes import GaussianNB

    from obliviate.removal.exact import summation_nb

    monkeypatch.setattr(summation_nb, "MOMENTS_MAX_AMPLIFICATION", np.inf)
    X, y, gone = _offset_classes()
    est = SummationGaussianNB().fit(X, y).forget(gone)
    assert est.deletion_log_[-1].method == "subtract"
    keep = np.setdiff1d(np.arange(len(y)), gone)
    assert _nb_max_diff(est, GaussianNB().fit(X[keep], y[keep])) > TOL


@pytest.mark.parametrize("order", ["C", "F"])
def test_rank1_update_is_in_place_for_either_memory_order(order):
    rng = np.random.default_rng(6)
    B = rng.normal(size=(5, 5))
    A = np.array(B @ B.T, order=order)
    x = rng.normal(size=5)
    expected = A - 0.3 * np.outer(x, x)
    view = A
    summation_ridge._add_rank1(A, -0.3, x)
    assert view is A
    np.testing.assert_allclose(A, expected, rtol=0, atol=1e-12)
