"""Summation-form estimators: forget == refit, forget touches only the removed rows, typed errors."""

from __future__ import annotations

import numpy as np
import pytest
import sklearn.exceptions
from sklearn.linear_model import Ridge
from sklearn.naive_bayes import GaussianNB, MultinomialNB
from sklearn.utils.estimator_checks import parametrize_with_checks

from obliviate.errors import ConfigError, DataError, ForgetSetError, NotFittedError, ShapeError
from obliviate.removal.exact.summation import (
    SummationGaussianNB,
    SummationMultinomialNB,
    SummationRidge,
)

TOL = 1e-8


def _data(seed: int, n: int = 240, d: int = 6, k: int = 3, offset: float = 0.0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, k, n)
    X = rng.normal(size=(n, d)) * rng.uniform(0.5, 3.0, d) + y[:, None] * 0.7 + offset
    return X, y, rng


def _two_forgets(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    perm = rng.permutation(n)
    first, second = perm[:7], perm[7:60]
    keep = np.sort(perm[60:])
    return first, second, keep


def _close(a, b):
    np.testing.assert_allclose(a, b, rtol=0, atol=TOL)


# ---------------------------------------------------------------- forget == refit


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("offset", [0.0, 1e4])  # large offsets break naive sums of squares
def test_gaussian_nb_forget_matches_refit(seed, offset):
    X, y, rng = _data(seed, offset=offset)
    first, second, keep = _two_forgets(rng, len(y))
    est = SummationGaussianNB(var_smoothing=1e-3).fit(X, y).forget(first).forget(second)
    ref = GaussianNB(var_smoothing=1e-3).fit(X[keep], y[keep])
    own = SummationGaussianNB(var_smoothing=1e-3).fit(X[keep], y[keep])
    for other in (ref, own):
        _close(est.theta_, other.theta_)
        _close(est.var_, other.var_)
        _close(est.class_prior_, other.class_prior_)
        _close(est.epsilon_, other.epsilon_)
        _close(est.class_count_, other.class_count_)
        _close(est.predict_proba(X), other.predict_proba(X))
        np.testing.assert_array_equal(est.predict(X), other.predict(X))
    assert est.n_forgotten_ == 60
    assert sorted(est.forgotten_indices_) == sorted(np.concatenate([first, second]).tolist())


def test_gaussian_nb_var_smoothing_follows_whole_data():
    # The feature with the largest variance owes it to 5 outliers; forgetting them
    # must shrink epsilon_ exactly as a refit would.
    X, y, _ = _data(3)
    X[:5, 0] = 1e3
    est = SummationGaussianNB(var_smoothing=1e-2).fit(X, y)
    before = est.epsilon_
    est.forget(np.arange(5))
    ref = GaussianNB(var_smoothing=1e-2).fit(X[5:], y[5:])
    assert est.epsilon_ < before / 100
    _close(est.epsilon_, ref.epsilon_)
    _close(est.var_, ref.var_)


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("fit_prior", [True, False])
def test_multinomial_nb_forget_matches_refit(seed, fit_prior):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 4, 300)
    X = rng.poisson(1.0 + y[:, None] * np.linspace(0, 1, 9), size=(300, 9)).astype(float)
    X[::7] += rng.random((len(X[::7]), 9))  # non-integer counts too
    first, second, keep = _two_forgets(rng, 300)
    est = SummationMultinomialNB(alpha=0.5, fit_prior=fit_prior).fit(X, y).forget(first).forget(second)
    ref = MultinomialNB(alpha=0.5, fit_prior=fit_prior).fit(X[keep], y[keep])
    own = SummationMultinomialNB(alpha=0.5, fit_prior=fit_prior).fit(X[keep], y[keep])
    for other in (ref, own):
        _close(est.feature_count_, other.feature_count_)
        _close(est.class_count_, other.class_count_)
        _close(est.feature_log_prob_, other.feature_log_prob_)
        _close(est.class_log_prior_, other.class_log_prior_)
        _close(est.predict_proba(X), other.predict_proba(X))
        np.testing.assert_array_equal(est.predict(X), other.predict(X))


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("fit_intercept", [True, False])
@pytest.mark.parametrize("multi_output", [False, True])
def test_ridge_forget_matches_refit(seed, fit_intercept, multi_output):
    X, _, rng = _data(seed, offset=50.0, d=8)
    W = rng.normal(size=(8, 3 if multi_output else 1))
    y = X @ W + rng.normal(size=(len(X), W.shape[1])) + 4.0
    y = y if multi_output else y[:, 0]
    first, second, keep = _two_forgets(rng, len(X))
    est = SummationRidge(alpha=0.7, fit_intercept=fit_intercept).fit(X, y).forget(first).forget(second)
    ref = Ridge(alpha=0.7, fit_intercept=fit_intercept).fit(X[keep], y[keep])
    own = SummationRidge(alpha=0.7, fit_intercept=fit_intercept).fit(X[keep], y[keep])
    for other in (ref, own):
        assert np.shape(est.coef_) == np.shape(other.coef_)
        _close(est.coef_, other.coef_)
        _close(est.intercept_, other.intercept_)
        _close(est.predict(X), other.predict(X))


def test_ridge_many_single_row_forgets_do_not_drift():
    X, _, rng = _data(7, n=150, d=5, offset=10.0)
    y = X @ rng.normal(size=5) + rng.normal(size=150)
    est = SummationRidge().fit(X, y)
    order = rng.permutation(150)[:120]
    for i in order:
        est.forget([i])
    keep = np.setdiff1d(np.arange(150), order)
    ref = Ridge().fit(X[keep], y[keep])
    _close(est.coef_, ref.coef_)
    _close(est.intercept_, ref.intercept_)


def test_ridge_falls_back_to_a_fresh_solve_when_the_kept_inverse_drifts():
    X, _, rng = _data(8, n=120, d=5)
    y = X @ rng.normal(size=5)
    est = SummationRidge().fit(X, y)
    est._ainv *= 1.5  # simulate accumulated rounding: refinement alone cannot fix this
    est.forget([4])
    ref = Ridge().fit(np.delete(X, 4, axis=0), np.delete(y, 4))
    _close(est.coef_, ref.coef_)
    _close(est.intercept_, ref.intercept_)
    record = est.deletion_log_[-1]
    assert record.method == "refactorise" and record.refactorised
    assert "drifted" in record.reason


# ---------------------------------------------------------------- cost: only removed rows are read


class _RowGuard(np.ndarray):
    """Stored training data that counts rows read and refuses any whole-array computation."""

    def __getitem__(self, key):
        out = self.view(np.ndarray)[key]
        self.__dict__["rows_read"] = self.__dict__.get("rows_read", 0) + (out.shape[0] if out.ndim else 1)
        return out

    def __array_ufunc__(self, *args, **kwargs):
        raise AssertionError("forget computed over all stored rows (O(n))")

    def __array_function__(self, *args, **kwargs):
        raise AssertionError("forget computed over all stored rows (O(n))")


@pytest.mark.parametrize(
    "make",
    [
        lambda X, y: SummationGaussianNB().fit(X, y),
        lambda X, y: SummationMultinomialNB().fit(np.abs(X), y),
        lambda X, y: SummationRidge().fit(X, X[:, 0] + y),
    ],
    ids=["gaussian_nb", "multinomial_nb", "ridge"],
)
def test_forget_reads_only_the_removed_rows(make):
    X, y, _ = _data(4, n=500)
    est = make(X, y)
    stored_X, stored_y = est._fit_X.view(_RowGuard), est._fit_y.view(_RowGuard)
    est._fit_X, est._fit_y = stored_X, stored_y
    est.forget([3, 17, 250])
    assert stored_X.__dict__["rows_read"] == 3
    assert stored_y.__dict__["rows_read"] == 3
    # ... and the removed rows are no longer held by the estimator.
    assert not np.any(stored_X.view(np.ndarray)[[3, 17, 250]])


@pytest.mark.parametrize("cls", [SummationGaussianNB, SummationMultinomialNB, SummationRidge])
def test_forget_never_touches_the_callers_arrays(cls):
    X, y, _ = _data(13)
    X = np.abs(X)
    X0, y0 = X.copy(), y.copy()
    cls().fit(X, y).forget(np.arange(20))
    np.testing.assert_array_equal(X, X0)
    np.testing.assert_array_equal(y, y0)


# ---------------------------------------------------------------- emptied classes


def test_emptying_a_class_raises_and_changes_nothing():
    X, y, _ = _data(5)
    est = SummationGaussianNB().fit(X, y)
    theta = est.theta_.copy()
    with pytest.raises(ForgetSetError, match=r"every training row of class\(es\) \[1\].*empty_class='drop'"):
        est.forget(np.flatnonzero(y == 1))
    np.testing.assert_array_equal(est.theta_, theta)
    assert est.n_forgotten_ == 0
    est.forget([int(np.flatnonzero(y == 1)[0])])  # still usable afterwards


@pytest.mark.parametrize("cls, ref_cls", [(SummationGaussianNB, GaussianNB), (SummationMultinomialNB, MultinomialNB)])
def test_empty_class_drop_matches_refit(cls, ref_cls):
    X, y, _ = _data(6)
    X = np.abs(X)
    gone = np.flatnonzero(y == 2)
    est = cls(empty_class="drop").fit(X, y).forget(gone[:3]).forget(gone[3:])
    keep = np.flatnonzero(y != 2)
    ref = ref_cls().fit(X[keep], y[keep])
    np.testing.assert_array_equal(est.classes_, [0, 1])
    _close(est.predict_proba(X), ref.predict_proba(X))


def test_fixed_priors_never_drop_a_class():
    X, y, _ = _data(8)
    est = SummationGaussianNB(priors=[0.2, 0.3, 0.5], empty_class="drop").fit(X, y)
    with pytest.raises(ForgetSetError, match="fixed priors"):
        est.forget(np.flatnonzero(y == 0))


# ---------------------------------------------------------------- bad input


ESTIMATORS = [SummationGaussianNB, SummationMultinomialNB, SummationRidge]


@pytest.mark.parametrize("cls", ESTIMATORS)
@pytest.mark.parametrize(
    "indices, match",
    [
        ([240], r"outside \[0, 240\)"),
        ([-1], "outside"),
        ([4, 4], "duplicate"),
        ([], "empty"),
        ([1.5], "integer"),
        (np.ones(240, dtype=bool), "boolean mask"),
        ([[1, 2]], "1-D"),
        (np.arange(240), "every remaining training row"),
    ],
)
def test_bad_forget_requests_raise(cls, indices, match):
    X, y, _ = _data(9)
    est = cls().fit(np.abs(X), y)
    with pytest.raises(ForgetSetError, match=match):
        est.forget(indices)
    assert est.n_forgotten_ == 0


@pytest.mark.parametrize("cls", ESTIMATORS)
def test_already_forgotten_and_last_rows(cls):
    X, y, _ = _data(10, n=40)
    est = cls(empty_class="drop").fit(np.abs(X), y) if cls is not SummationRidge else cls().fit(X, y)
    est.forget([0, 1])
    with pytest.raises(ForgetSetError, match=r"already forgotten: \[1\]"):
        est.forget([1, 2])
    with pytest.raises(ForgetSetError, match="every remaining"):
        est.forget(np.arange(2, 40))


@pytest.mark.parametrize("cls", ESTIMATORS)
def test_bad_data_raises_typed_errors(cls):
    X, y, _ = _data(11)
    X = np.abs(X)
    bad = X.copy()
    bad[3, 2] = np.nan
    with pytest.raises(DataError, match="NaN"):
        cls().fit(bad, y)
    with pytest.raises(ShapeError):
        cls().fit(X, y[:-1])
    with pytest.raises(DataError, match="y is None"):
        cls().fit(X, None)
    est = cls().fit(X, y)
    with pytest.raises(ShapeError, match="features"):
        est.predict(X[:, :3])
    with pytest.raises(DataError, match="NaN"):
        est.predict(bad)


@pytest.mark.parametrize("cls", ESTIMATORS)
def test_unfitted_raises_not_fitted(cls):
    est = cls()
    for call in (lambda: est.predict(np.ones((2, 3))), lambda: est.forget([0])):
        with pytest.raises(NotFittedError, match="not fitted"):
            call()
        with pytest.raises(sklearn.exceptions.NotFittedError):
            call()


def test_bad_parameters_list_every_problem():
    with pytest.raises(ConfigError) as info:
        SummationGaussianNB(var_smoothing=-1, empty_class="keep").fit(np.ones((4, 2)), [0, 1, 0, 1])
    assert len(info.value.problems) == 2
    assert "'var_smoothing' parameter of SummationGaussianNB must be" in str(info.value)
    with pytest.raises(ConfigError, match="alpha"):
        SummationMultinomialNB(alpha=0).fit(np.ones((4, 2)), [0, 1, 0, 1])
    with pytest.raises(ConfigError, match="alpha"):
        SummationRidge(alpha=-1).fit(np.ones((4, 2)), [0, 1, 0, 1])
    with pytest.raises(ConfigError, match="priors"):
        SummationGaussianNB(priors=[0.5, 0.6]).fit(np.ones((4, 2)), [0, 1, 0, 1])


def test_multinomial_rejects_negative_counts():
    with pytest.raises(DataError, match="Negative values"):
        SummationMultinomialNB().fit(-np.ones((4, 2)), [0, 1, 0, 1])


def test_ridge_singular_system_is_a_typed_error():
    X = np.ones((5, 3))
    with pytest.raises(DataError, match="singular"):
        SummationRidge(alpha=0.0).fit(X, np.arange(5.0))


def test_ridge_forget_that_leaves_a_singular_system_discards_the_old_model():
    rng = np.random.default_rng(0)
    X = np.vstack([rng.normal(size=(3, 3)), np.ones((3, 3))])
    est = SummationRidge(alpha=0.0).fit(X, np.arange(6.0))
    with pytest.raises(DataError, match="old coefficients discarded"):
        est.forget([0, 1, 2])
    with pytest.raises(NotFittedError):
        est.predict(X)


def test_guarantee_states_exactness_and_limits():
    X, y, _ = _data(12)
    g = SummationGaussianNB().fit(X, y).forget([1, 2]).guarantee()
    assert g.exact and g.epsilon == 0 and g.delta == 0 and g.n_forgotten == 2
    assert "epsilon=0, delta=0" in g.statement and "does NOT" in g.statement


# ---------------------------------------------------------------- scikit-learn conformance


@parametrize_with_checks([SummationGaussianNB(), SummationMultinomialNB(), SummationRidge()])
def test_sklearn_conformance(estimator, check):
    check(estimator)


@pytest.mark.parametrize("cls, ref_cls", [(SummationGaussianNB, GaussianNB), (SummationMultinomialNB, MultinomialNB)])
def test_naive_bayes_many_single_row_forgets_match_refit(cls, ref_cls):
    X, y, rng = _data(14, offset=3.0)
    X = np.abs(X)
    est = cls().fit(X, y)
    order = rng.permutation(len(y))[:150]
    for i in order:
        est.forget([int(i)])  # the single-row fast paths
    keep = np.setdiff1d(np.arange(len(y)), order)
    ref = ref_cls().fit(X[keep], y[keep])
    _close(est.predict_proba(X), ref.predict_proba(X))
    _close(est.class_count_, ref.class_count_)
    if cls is SummationGaussianNB:
        _close(est.theta_, ref.theta_)
        _close(est.var_, ref.var_)
    else:
        _close(est.feature_log_prob_, ref.feature_log_prob_)
