"""Certified removal (Guo et al. 2020): Newton step quality, the residual bound, budget-triggered retrains."""

from __future__ import annotations

import math

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.utils.estimator_checks import parametrize_with_checks
from threadpoolctl import threadpool_limits

from obliviate.errors import ConfigError, DataError, ForgetSetError, NotFittedError, ShapeError
from obliviate.removal.exact import certified
from obliviate.removal.exact.certified import (
    CertifiedLogisticRegression,
    newton_removal_step,
    perturbed_logistic_grad,
    removal_budget,
    train_perturbed_logistic,
)

LAM = 1e-2


@pytest.fixture(autouse=True)
def _single_blas_thread():
    # Small matrices: BLAS threads only add contention (badly so on shared CI machines).
    with threadpool_limits(limits=1):
        yield


def _data(seed: int, n: int = 400, d: int = 6, k: int = 2):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d))
    X /= 1.1 * np.linalg.norm(X, axis=1, keepdims=True)  # ||x|| < 1 as the paper assumes
    W = rng.normal(size=(d, k)) * 4
    y = np.argmax(X @ W + 0.3 * rng.normal(size=(n, k)), axis=1)
    return X, y, rng


def _retrained(est: CertifiedLogisticRegression, X, y, keep):
    """Exact optimum on the kept rows with the model's own noise b (test oracle)."""
    codes = np.searchsorted(est.classes_, y[keep])
    S = est._signed(codes)
    return np.stack(
        [train_perturbed_logistic(X[keep], S[:, k], lam=est.lam, b=est._noise[:, k], tol=1e-10)[0] for k in range(S.shape[1])]
    ), S


def test_budget_formula_matches_the_paper():
    assert removal_budget(2.0, 0.5, 1e-4) == pytest.approx(2.0 * 0.5 / math.sqrt(2 * math.log(1.5 / 1e-4)))


def test_training_without_noise_matches_sklearn_logistic_regression():
    X, y, _ = _data(0)
    s = np.where(y == 1, 1.0, -1.0)
    w, gnorm, _ = train_perturbed_logistic(X, s, lam=LAM, b=np.zeros(X.shape[1]), tol=1e-9)
    ref = LogisticRegression(C=1.0 / (LAM * len(X)), fit_intercept=False, tol=1e-12, max_iter=10_000).fit(X, y)
    np.testing.assert_allclose(w, ref.coef_[0], atol=1e-6)
    assert gnorm <= 1e-9


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("k", [2, 3])
def test_newton_step_lands_near_the_retrained_optimum_and_the_bound_holds(seed, k):
    X, y, rng = _data(seed, k=k)
    est = CertifiedLogisticRegression(lam=LAM, sigma=50.0, random_state=seed).fit(X, y)
    gone = np.sort(rng.choice(len(X), 8, replace=False))
    keep = np.setdiff1d(np.arange(len(X)), gone)
    W_before = est.coef_.copy()
    W_retrained, S = _retrained(est, X, y, keep)
    est.forget(gone)
    assert est.removal_log_[-1]["action"] == "newton" and est.n_retrains_ == 0
    ratio = np.linalg.norm(est.coef_ - W_retrained) / np.linalg.norm(W_before - W_retrained)
    assert ratio < 0.05
    # The data-dependent bound (Corollary 1) really bounds the gradient residual.
    residual = np.sqrt(sum(
        np.linalg.norm(perturbed_logistic_grad(est.coef_[j], X[keep], S[:, j], LAM, est._noise[:, j])) ** 2
        for j in range(S.shape[1])
    ))
    assert 0 < residual <= est.residual_bound_ <= est.residual_budget_


def test_sequential_removals_accumulate_the_bound():
    X, y, rng = _data(2, k=3)
    est = CertifiedLogisticRegression(lam=LAM, sigma=50.0, random_state=0).fit(X, y)
    gone: list[int] = []
    bounds = [est.residual_bound_]
    for batch in np.array_split(rng.choice(len(X), 12, replace=False), 3):
        est.forget(batch)
        gone += batch.tolist()
        bounds.append(est.residual_bound_)
    assert all(b2 > b1 for b1, b2 in zip(bounds, bounds[1:]))
    keep = np.setdiff1d(np.arange(len(X)), gone)
    W_retrained, S = _retrained(est, X, y, keep)
    residual = np.sqrt(sum(
        np.linalg.norm(perturbed_logistic_grad(est.coef_[j], X[keep], S[:, j], LAM, est._noise[:, j])) ** 2
        for j in range(S.shape[1])
    ))
    assert residual <= est.residual_bound_
    assert est.n_forgotten_ == 12 and sorted(est.forgotten_indices_) == sorted(gone)


@pytest.mark.parametrize("k", [2, 3])
def test_first_removal_downdates_the_kept_hessian_and_equals_a_rebuilt_step(k):
    X, y, rng = _data(10, k=k)
    est = CertifiedLogisticRegression(lam=LAM, sigma=50.0, random_state=0).fit(X, y)
    gone = np.sort(rng.choice(len(X), 5, replace=False))
    keep = np.setdiff1d(np.arange(len(X)), gone)
    codes = np.searchsorted(est.classes_, y)
    S = est._signed(codes)
    W0 = est.coef_.copy()
    spectral = np.linalg.norm(X[keep], 2)
    expected = [newton_removal_step(W0[j], X[keep], S[keep, j], X[gone], S[gone, j], lam=LAM, spectral_norm=spectral)
                for j in range(W0.shape[0])]
    est.forget(gone)
    entry = est.removal_log_[-1]
    assert entry["hessian"] == "downdated" and not entry["refactorised"]
    np.testing.assert_allclose(est.coef_, np.stack([w for w, _ in expected]), rtol=0, atol=1e-10)
    step_bound = np.sqrt(sum(b**2 for _, b in expected))
    assert entry["step_bound"] == pytest.approx(step_bound, rel=1e-8)
    # The step moved the weights: the next removal must rebuild the Hessians, and says so.
    est.forget([int(keep[0])])
    assert est.removal_log_[-1]["hessian"] == "rebuilt" and "weights moved" in est.removal_log_[-1]["reason"]


def test_a_hessian_downdate_that_fails_the_check_rebuilds_and_warns(monkeypatch, caplog):
    X, y, _ = _data(11)
    est = CertifiedLogisticRegression(lam=LAM, sigma=50.0, random_state=0).fit(X, y)
    reference = CertifiedLogisticRegression(lam=LAM, sigma=50.0, random_state=0).fit(X, y).forget([3, 4])
    monkeypatch.setattr(certified, "MAX_HESSIAN_SHRINK", 1.0)  # every downdate shrinks the diagonal a little
    with caplog.at_level("WARNING", logger=certified.__name__):
        est.forget([3, 4])
    entry = est.removal_log_[-1]
    assert entry["hessian"] == "rebuilt" and entry["refactorised"] and "lose accuracy" in entry["reason"]
    assert any("rebuilding the Hessians" in r.getMessage() for r in caplog.records)
    np.testing.assert_allclose(est.coef_, reference.coef_, rtol=0, atol=1e-10)


def test_tiny_budget_triggers_a_retrain_with_fresh_noise():
    X, y, _ = _data(3)
    est = CertifiedLogisticRegression(lam=LAM, sigma=1e-5, random_state=0).fit(X, y)
    noise_before = est._noise.copy()
    est.forget([0, 1, 2])
    assert est.n_retrains_ == 1 and est.removal_log_[-1]["action"] == "retrain"
    assert not np.allclose(est._noise, noise_before)
    assert est.residual_bound_ <= est.residual_budget_  # accumulator restarted
    keep = np.arange(3, len(X))
    W_retrained, _ = _retrained(est, X, y, keep)
    np.testing.assert_allclose(est.coef_, W_retrained, atol=1e-7)
    g = est.guarantee()
    assert g.holds and g.n_retrains == 1 and g.n_newton_removals == 0
    est.forget([3])  # the retrain kept fresh Hessians at its weights
    assert est.removal_log_[-1]["hessian"] == "downdated"


def test_large_budget_does_not_retrain():
    X, y, _ = _data(4)
    est = CertifiedLogisticRegression(lam=LAM, sigma=1e3, random_state=0).fit(X, y)
    for i in range(5):
        est.forget([i])
    assert est.n_retrains_ == 0 and len(est.removal_log_) == 5


def test_guarantee_names_epsilon_delta_and_the_budget():
    X, y, _ = _data(5)
    est = CertifiedLogisticRegression(epsilon=0.5, delta=1e-5, sigma=20.0, random_state=0).fit(X, y).forget([7])
    g = est.guarantee()
    assert (g.epsilon, g.delta) == (0.5, 1e-5) and not g.exact and g.holds
    assert "epsilon=0.5, delta=1e-05" in g.statement
    assert "certified removal" in g.statement and "does NOT bound what the input features reveal" in g.statement
    assert g.residual_budget == pytest.approx(removal_budget(20.0, 0.5, 1e-5))
    assert any("norm <= 1" in a for a in g.assumptions)
    assert g.to_dict()["n_forgotten"] == 1


def test_same_seed_same_model_and_noise_has_the_requested_scale():
    X, y, _ = _data(6, d=40, k=4)
    a = CertifiedLogisticRegression(sigma=3.0, random_state=11).fit(X, y)
    b = CertifiedLogisticRegression(sigma=3.0, random_state=11).fit(X, y)
    c = CertifiedLogisticRegression(sigma=3.0, random_state=12).fit(X, y)
    np.testing.assert_array_equal(a.coef_, b.coef_)
    assert not np.allclose(a.coef_, c.coef_)
    assert a._noise.shape == (40, 4)
    assert a._noise.std() == pytest.approx(3.0, rel=0.15)


def test_rows_longer_than_one_are_clipped_or_refused():
    X, y, _ = _data(7)
    X_long = X * 5.0
    clipped = CertifiedLogisticRegression(random_state=0).fit(X_long, y)
    unit = X / np.linalg.norm(X, axis=1, keepdims=True)
    same = CertifiedLogisticRegression(random_state=0).fit(unit, y)
    np.testing.assert_allclose(clipped.coef_, same.coef_, atol=1e-10)
    np.testing.assert_array_equal(clipped.predict(X_long), same.predict(unit))
    with pytest.raises(DataError, match=r"norm <= 1"):
        CertifiedLogisticRegression(row_norm="error").fit(X_long, y)


def test_bad_requests_and_inputs_raise_typed_errors():
    X, y, _ = _data(8, n=60)
    est = CertifiedLogisticRegression(sigma=50.0, random_state=0).fit(X, y)
    est.forget([1])
    with pytest.raises(ForgetSetError, match="already forgotten"):
        est.forget([1])
    with pytest.raises(ForgetSetError, match="every remaining"):
        est.forget(np.setdiff1d(np.arange(60), [1]))
    with pytest.raises(ForgetSetError, match="outside"):
        est.forget([60])
    with pytest.raises(ShapeError, match="features"):
        est.predict(X[:, :2])
    bad = X.copy()
    bad[0, 0] = np.nan
    with pytest.raises(DataError, match="NaN"):
        CertifiedLogisticRegression().fit(bad, y)
    with pytest.raises(DataError, match="one class"):
        CertifiedLogisticRegression().fit(X, np.zeros(60))
    with pytest.raises(NotFittedError):
        CertifiedLogisticRegression().forget([0])
    with pytest.raises(NotFittedError):
        CertifiedLogisticRegression().guarantee()


def test_bad_parameters_are_all_reported():
    X, y, _ = _data(9, n=30)
    with pytest.raises(ConfigError) as info:
        CertifiedLogisticRegression(lam=0, epsilon=-1, delta=1.5, sigma=0, row_norm="scale", max_iter=0).fit(X, y)
    assert len(info.value.problems) == 6
    assert "The 'delta' parameter of CertifiedLogisticRegression must be a float in the range (0, 1)" in str(info.value)


@parametrize_with_checks([CertifiedLogisticRegression(random_state=0)])
def test_sklearn_conformance(estimator, check):
    check(estimator)
