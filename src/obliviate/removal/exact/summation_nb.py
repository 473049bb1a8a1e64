"""Naive Bayes in summation form (Cao & Yang 2015): forgetting subtracts per-class statistics.

See :mod:`obliviate.removal.exact.summation` for the overview and the memory cost.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
from scipy.special import logsumexp
from sklearn.base import BaseEstimator, ClassifierMixin

from obliviate.errors import ConfigError, DataError, ForgetSetError
from obliviate.removal.exact._summation_base import (
    DeletionRecord,
    _ForgetBookkeeping,
    check_classifier_targets,
    check_fit_data,
    check_forget_indices,
    check_predict_X,
    is_real,
    MOMENTS_MAX_AMPLIFICATION,
    moments,
    moments_downdate_error,
    param_problem,
    raise_problems,
    remove_moments,
    require_fitted,
)

logger = logging.getLogger(__name__)

__all__ = ["SummationGaussianNB", "SummationMultinomialNB"]

# --------------------------------------------------------------------------
# Gaussian naive Bayes
# --------------------------------------------------------------------------

_EMPTY_CLASS = ("raise", "drop")


class SummationGaussianNB(_ForgetBookkeeping, ClassifierMixin, BaseEstimator):
    """Gaussian naive Bayes that can forget training rows exactly.

    Matches ``sklearn.naive_bayes.GaussianNB`` (same ``theta_``, ``var_``,
    ``class_prior_``, ``epsilon_`` and probabilities) and adds
    :meth:`forget`.

    Parameters
    ----------
    priors : array-like of shape (n_classes,), default=None
        Fixed class priors; None estimates them from class counts.
    var_smoothing : float, default=1e-9
        Portion of the largest feature variance *of the whole (remaining)
        data* added to every variance, as in scikit-learn. Because it depends
        on all rows, the whole data's count/mean/centred sum of squares are
        kept as sufficient statistics too and downdated on ``forget``.
    empty_class : {"raise", "drop"}, default="raise"
        What ``forget`` does when it would remove every row of a class.
        ``"raise"``: refuse with :class:`ForgetSetError` and change nothing
        (the label set, and so the shape of ``predict_proba``, would change).
        ``"drop"``: remove the class from ``classes_`` - still exact, since a
        refit on the remaining rows would not know the class either.
        With fixed ``priors`` a class can never be dropped.

    Attributes
    ----------
    classes_, class_count_, class_prior_, theta_, var_, epsilon_,
    n_features_in_ : as in scikit-learn.
    n_forgotten_ : int
        Rows removed by ``forget`` so far.
    forgotten_indices_ : list of int
        Their positions in the X passed to ``fit``.

    Notes
    -----
    ``fit`` keeps a float64 copy of X (see the module docstring for the memory
    cost); ``forget`` costs O(m d) for m rows and never reads the other rows,
    except when the stability check fails: if the first-order rounding-error
    bound of a downdated mean or variance exceeds both
    ``MOMENTS_MAX_AMPLIFICATION`` (100) times a refit's own and
    ``MOMENTS_ABS_FLOOR`` (1e-11), those moments are recomputed from the stored
    remaining rows (O(n d)), with a warning and ``method="recompute"`` in
    ``deletion_log_``.
    """

    def __init__(self, *, priors: Any = None, var_smoothing: float = 1e-9, empty_class: str = "raise") -> None:
        self.priors = priors
        self.var_smoothing = var_smoothing
        self.empty_class = empty_class

    def _check_params(self) -> None:
        owner = type(self).__name__
        problems = []
        if not is_real(self.var_smoothing) or not self.var_smoothing >= 0:
            problems.append(param_problem(owner, "var_smoothing", "a float in the range [0, inf)", self.var_smoothing))
        if self.empty_class not in _EMPTY_CLASS:
            problems.append(param_problem(owner, "empty_class", f"one of {_EMPTY_CLASS}", self.empty_class))
        raise_problems(owner, problems)

    def fit(self, X: Any, y: Any) -> SummationGaussianNB:
        """Fit from ``X`` (n, d) and labels ``y`` (n,); returns self."""
        self._check_params()
        X, y = check_fit_data(self, X, y)
        check_classifier_targets(self, y)
        classes, codes = np.unique(y, return_inverse=True)
        if self.priors is not None:
            priors = np.asarray(self.priors, dtype=np.float64)
            if priors.shape != (classes.size,) or np.any(priors < 0) or not np.isclose(priors.sum(), 1.0):
                raise ConfigError(
                    f"The 'priors' parameter of {type(self).__name__} must be {classes.size} non-negative "
                    f"numbers summing to 1 (one per class in y); got {self.priors!r} instead."
                )
        self._init_bookkeeping(X, y)
        self.classes_ = classes
        self._n, self._mean, self._m2 = moments(X)
        k, d = classes.size, X.shape[1]
        self.class_count_ = np.zeros(k)
        self._class_mean = np.zeros((k, d))
        self._class_m2 = np.zeros((k, d))
        for c in range(k):
            cnt, self._class_mean[c], self._class_m2[c] = moments(X[codes == c])
            self.class_count_[c] = cnt
        self._refresh()
        return self

    def _refresh(self) -> None:
        self.epsilon_ = float(self.var_smoothing * np.max(self._m2 / self._n))
        self.theta_ = self._class_mean.copy()
        self.var_ = self._class_m2 / self.class_count_[:, None] + self.epsilon_
        if self.priors is not None:
            self.class_prior_ = np.asarray(self.priors, dtype=np.float64)
        else:
            self.class_prior_ = self.class_count_ / self.class_count_.sum()

    def forget(self, indices: Any) -> SummationGaussianNB:
        """Remove training rows (positions in the X given to ``fit``) exactly; O(m d)."""
        require_fitted(self, "classes_")
        owner = type(self).__name__
        idx = check_forget_indices(indices, self._alive, self._n_alive, owner)
        rows, labels = self._fit_X[idx], self._fit_y[idx]
        pos = np.searchsorted(self.classes_, labels)
        if pos.size == 1:  # np.unique costs more than the single-row update itself
            touched, n_removed = pos, np.ones(1, dtype=np.int64)
        else:
            touched, n_removed = np.unique(pos, return_counts=True)
        emptied = touched[self.class_count_[touched] == n_removed]
        if emptied.size and (self.empty_class == "raise" or self.priors is not None):
            why = "fixed priors are set" if self.priors is not None else "empty_class='raise'"
            raise ForgetSetError(
                f"{owner}.forget would remove every training row of class(es) "
                f"{self.classes_[emptied].tolist()}, and {why}. Nothing was changed. "
                "Use empty_class='drop' (and priors=None) to drop the class, or refit on the remaining rows."
            )
        # All checks passed: update state (the request is applied atomically).
        (self._n, self._mean, self._m2), worst, redone = self._downdate_checked(
            self._n, self._mean, self._m2, rows, idx, None
        )
        problems = [f"all rows: rounding error bound {worst:.3g} times a refit's"] if redone else []
        for c in touched:
            label = self.classes_[c]
            stats, amplification, redone = self._downdate_checked(
                int(self.class_count_[c]), self._class_mean[c], self._class_m2[c], rows[pos == c], idx, label
            )
            self.class_count_[c], self._class_mean[c], self._class_m2[c] = stats
            worst = max(worst, amplification)
            if redone:
                problems.append(f"class {label.item()!r}: rounding error bound {amplification:.3g} times a refit's")
        record = DeletionRecord(int(idx.size), "subtract", stability={"error_amplification": worst})
        if problems:
            reason = (
                "the downdate would lose accuracy (removing most rows of data whose mean is large against "
                "its spread cancels leading digits), so these moments were recomputed from the stored "
                "remaining rows: " + "; ".join(problems)
            )
            logger.warning("%s.forget: %s.", owner, reason)
            record = DeletionRecord(int(idx.size), "recompute", True, reason, {"error_amplification": worst})
        if emptied.size:
            kept = np.ones(self.classes_.size, dtype=bool)
            kept[emptied] = False
            logger.info("%s: dropping emptied class(es) %s", owner, self.classes_[emptied].tolist())
            self.classes_ = self.classes_[kept]
            self.class_count_ = self.class_count_[kept]
            self._class_mean = self._class_mean[kept]
            self._class_m2 = self._class_m2[kept]
        self._commit_forget(idx, record)
        self._refresh()
        return self

    def _downdate_checked(
        self, n: int, mean: np.ndarray, m2: np.ndarray, removed: np.ndarray, idx: np.ndarray, label: Any
    ) -> tuple[tuple[int, np.ndarray, Any], float, bool]:
        """Moments without ``removed``; returns (moments, error amplification, recomputed?).

        The downdate, unless its rounding bound fails the stability check; then the moments
        of the stored remaining rows (of class ``label``, or all of them for None), O(n d).
        """
        na, mean_a, m2_a = remove_moments(n, mean, m2, removed)
        _, amplification = moments_downdate_error(n, mean, m2, removed, na, mean_a, m2_a)
        if amplification <= MOMENTS_MAX_AMPLIFICATION:
            return (na, mean_a, m2_a), amplification, False
        keep = self._alive.copy()
        keep[idx] = False
        if label is not None:
            keep &= self._fit_y == label
        return moments(self._fit_X[keep]), amplification, True

    def _joint_log_likelihood(self, X: np.ndarray) -> np.ndarray:
        with np.errstate(divide="ignore"):
            log_prior = np.log(self.class_prior_)
        jll = np.empty((X.shape[0], self.classes_.size))
        for c in range(self.classes_.size):  # one class at a time: memory O(n d), not O(n k d)
            log_norm = -0.5 * np.sum(np.log(2.0 * np.pi * self.var_[c]))
            jll[:, c] = log_prior[c] + log_norm - 0.5 * np.sum((X - self.theta_[c]) ** 2 / self.var_[c], axis=1)
        return jll

    def predict_log_proba(self, X: Any) -> np.ndarray:
        require_fitted(self, "classes_")
        jll = self._joint_log_likelihood(check_predict_X(self, X))
        return jll - logsumexp(jll, axis=1, keepdims=True)

    def predict_proba(self, X: Any) -> np.ndarray:
        """Class probabilities, columns ordered as ``classes_``."""
        return np.exp(self.predict_log_proba(X))

    def predict(self, X: Any) -> np.ndarray:
        require_fitted(self, "classes_")
        jll = self._joint_log_likelihood(check_predict_X(self, X))
        return self.classes_[np.argmax(jll, axis=1)]


# --------------------------------------------------------------------------
# Multinomial naive Bayes
# --------------------------------------------------------------------------


class SummationMultinomialNB(_ForgetBookkeeping, ClassifierMixin, BaseEstimator):
    """Multinomial naive Bayes that can forget training rows exactly.

    Matches ``sklearn.naive_bayes.MultinomialNB`` (``feature_count_``,
    ``class_count_``, ``feature_log_prob_``, ``class_log_prior_``). X must be
    non-negative (counts or tf-idf). With integer counts the subtraction in
    :meth:`forget` is exact to the last bit.

    Parameters
    ----------
    alpha : float, default=1.0
        Additive (Laplace/Lidstone) smoothing, > 0.
    fit_prior : bool, default=True
        Learn class priors from counts; False uses a uniform prior.
    class_prior : array-like of shape (n_classes,), default=None
        Fixed priors (overrides ``fit_prior``).
    empty_class : {"raise", "drop"}, default="raise"
        As in :class:`SummationGaussianNB`.
    """

    def __init__(
        self,
        *,
        alpha: float = 1.0,
        fit_prior: bool = True,
        class_prior: Any = None,
        empty_class: str = "raise",
    ) -> None:
        self.alpha = alpha
        self.fit_prior = fit_prior
        self.class_prior = class_prior
        self.empty_class = empty_class

    def __sklearn_tags__(self):  # type: ignore[no-untyped-def]
        tags = super().__sklearn_tags__()
        tags.input_tags.positive_only = True
        tags.classifier_tags.poor_score = True  # as sklearn's MultinomialNB: weak on dense blobs
        return tags

    def _check_params(self) -> None:
        owner = type(self).__name__
        problems = []
        if not is_real(self.alpha) or not self.alpha > 0:
            problems.append(
                param_problem(owner, "alpha", "a float in the range (0, inf) (zero gives log(0) for unseen features)", self.alpha)
            )
        if not isinstance(self.fit_prior, (bool, np.bool_)):
            problems.append(param_problem(owner, "fit_prior", "a bool", self.fit_prior))
        if self.empty_class not in _EMPTY_CLASS:
            problems.append(param_problem(owner, "empty_class", f"one of {_EMPTY_CLASS}", self.empty_class))
        raise_problems(owner, problems)

    def fit(self, X: Any, y: Any) -> SummationMultinomialNB:
        """Fit from non-negative ``X`` (n, d) and labels ``y`` (n,); returns self."""
        self._check_params()
        X, y = check_fit_data(self, X, y)
        check_classifier_targets(self, y)
        if np.any(X < 0):
            raise DataError(
                f"Negative values in data passed to {type(self).__name__} (input X). "
                "Multinomial naive Bayes needs counts or other non-negative features; "
                "use SummationGaussianNB for real-valued features."
            )
        classes, codes = np.unique(y, return_inverse=True)
        if self.class_prior is not None:
            prior = np.asarray(self.class_prior, dtype=np.float64)
            if prior.shape != (classes.size,) or np.any(prior <= 0):
                raise ConfigError(
                    f"The 'class_prior' parameter of {type(self).__name__} must be {classes.size} positive "
                    f"numbers (one per class in y); got {self.class_prior!r} instead."
                )
        self._init_bookkeeping(X, y)
        self.classes_ = classes
        onehot = (codes[:, None] == np.arange(classes.size)[None, :]).astype(np.float64)
        self.feature_count_ = onehot.T @ X
        self.class_count_ = onehot.sum(axis=0)
        self._refresh()
        return self

    def _refresh(self) -> None:
        smoothed = self.feature_count_ + self.alpha
        self.feature_log_prob_ = np.log(smoothed) - np.log(smoothed.sum(axis=1, keepdims=True))
        k = self.classes_.size
        if self.class_prior is not None:
            self.class_log_prior_ = np.log(np.asarray(self.class_prior, dtype=np.float64))
        elif self.fit_prior:
            self.class_log_prior_ = np.log(self.class_count_) - np.log(self.class_count_.sum())
        else:
            self.class_log_prior_ = np.full(k, -np.log(k))

    def forget(self, indices: Any) -> SummationMultinomialNB:
        """Remove training rows (positions in the X given to ``fit``) exactly; O(m d)."""
        require_fitted(self, "classes_")
        owner = type(self).__name__
        idx = check_forget_indices(indices, self._alive, self._n_alive, owner)
        rows, labels = self._fit_X[idx], self._fit_y[idx]
        pos = np.searchsorted(self.classes_, labels)
        if pos.size == 1:  # np.unique costs more than the single-row update itself
            touched, n_removed = pos, np.ones(1, dtype=np.int64)
        else:
            touched, n_removed = np.unique(pos, return_counts=True)
        emptied = touched[self.class_count_[touched] == n_removed]
        if emptied.size and (self.empty_class == "raise" or self.class_prior is not None):
            why = "fixed class_prior is set" if self.class_prior is not None else "empty_class='raise'"
            raise ForgetSetError(
                f"{owner}.forget would remove every training row of class(es) "
                f"{self.classes_[emptied].tolist()}, and {why}. Nothing was changed. "
                "Use empty_class='drop' (and class_prior=None) to drop the class, or refit on the remaining rows."
            )
        for c, cnt in zip(touched, n_removed):
            self.feature_count_[c] -= rows[pos == c].sum(axis=0)
            self.class_count_[c] -= cnt
        np.maximum(self.feature_count_, 0.0, out=self.feature_count_)  # rounding of float data
        if emptied.size:
            keep = np.ones(self.classes_.size, dtype=bool)
            keep[emptied] = False
            logger.info("%s: dropping emptied class(es) %s", owner, self.classes_[emptied].tolist())
            self.classes_ = self.classes_[keep]
            self.class_count_ = self.class_count_[keep]
            self.feature_count_ = self.feature_count_[keep]
        self._commit_forget(idx, DeletionRecord(int(idx.size), "subtract"))
        self._refresh()
        return self

    def _joint_log_likelihood(self, X: np.ndarray) -> np.ndarray:
        return X @ self.feature_log_prob_.T + self.class_log_prior_

    def predict_log_proba(self, X: Any) -> np.ndarray:
        require_fitted(self, "classes_")
        jll = self._joint_log_likelihood(check_predict_X(self, X))
        return jll - logsumexp(jll, axis=1, keepdims=True)

    def predict_proba(self, X: Any) -> np.ndarray:
        """Class probabilities, columns ordered as ``classes_``."""
        return np.exp(self.predict_log_proba(X))

    def predict(self, X: Any) -> np.ndarray:
        require_fitted(self, "classes_")
        jll = self._joint_log_likelihood(check_predict_X(self, X))
        return self.classes_[np.argmax(jll, axis=1)]


