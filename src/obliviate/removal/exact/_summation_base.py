"""Shared parts of the summation-form estimators: validation at the boundary, sufficient
statistics, the exactness guarantee, the per-deletion record and the forget bookkeeping.

Also used by ``certified.py`` and ``retrieval.py`` (through :mod:`.summation`, which re-exports it).
"""

from __future__ import annotations

import logging
import numbers
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.exceptions import NotFittedError as _SklearnNotFittedError
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import validate_data

from obliviate.errors import (
    ConfigError,
    DataError,
    ForgetSetError,
    NotFittedError,
    ShapeError,
)

logger = logging.getLogger(__name__)

__all__ = [
    "DeletionRecord",
    "EstimatorNotFittedError",
    "ExactRemovalGuarantee",
    "InputTypeError",
    "check_classifier_targets",
    "check_fit_data",
    "check_forget_indices",
    "check_predict_X",
    "is_real",
    "moments",
    "moments_downdate_error",
    "param_problem",
    "raise_problems",
    "remove_moments",
    "require_fitted",
]


class EstimatorNotFittedError(NotFittedError, _SklearnNotFittedError):
    """An estimator was used before ``fit``.

    Also a scikit-learn ``NotFittedError`` (so ``ValueError`` and
    ``AttributeError``), which scikit-learn tooling expects from an unfitted
    estimator.
    """


class InputTypeError(DataError, TypeError):
    """Input data has the wrong type (e.g. objects that are not numbers, sparse matrices).

    Also a ``TypeError``, as scikit-learn tooling expects for such input.
    """


# --------------------------------------------------------------------------
# Shared validation helpers (also used by certified.py and retrieval.py).
# --------------------------------------------------------------------------


def param_problem(owner: str, name: str, must: str, got: Any) -> str:
    """One problem line in scikit-learn's wording for a bad parameter."""
    return f"The {name!r} parameter of {owner} must be {must}; got {got!r} instead."


def raise_problems(owner: str, problems: list[str]) -> None:
    """Raise one :class:`ConfigError` listing every problem, if there are any."""
    if problems:
        raise ConfigError(f"Invalid parameters for {owner}; fix them and call fit again.", problems)


def is_real(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _typed_data_error(exc: Exception, est: BaseEstimator) -> DataError:
    msg = str(exc)
    shape_words = ("features", "2D array", "1D array", "dimension", "inconsistent numbers of samples")
    cls: type[DataError]
    if isinstance(exc, TypeError):
        cls = InputTypeError
    elif any(w in msg for w in shape_words):
        cls = ShapeError
    else:
        cls = DataError
    hint = (
        f" ({type(est).__name__} needs a dense 2-D float array X of shape (n_samples, n_features) "
        "without NaN or infinity; impute or drop bad rows first.)"
    )
    return cls(msg + hint)


def check_fit_data(
    est: BaseEstimator, X: Any, y: Any, *, y_numeric: bool = False, multi_output: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """Validate training data once, at the boundary; returns float64 copies."""
    if y is None:
        raise DataError(
            f"{type(est).__name__} requires y to be passed, but the target y is None. "
            "Pass the labels (or targets) as the second argument of fit."
        )
    try:
        X, y = validate_data(
            est, X, y, reset=True, dtype=np.float64, copy=True, order="C",
            y_numeric=y_numeric, multi_output=multi_output,
        )
    except (TypeError, ValueError) as exc:
        raise _typed_data_error(exc, est) from exc
    # Private copies: forget() overwrites removed rows, never the caller's arrays.
    return X, np.array(y, copy=True)


def check_predict_X(est: BaseEstimator, X: Any) -> np.ndarray:
    """Validate inference data against what ``fit`` saw (typed errors)."""
    try:
        return validate_data(est, X, reset=False, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise _typed_data_error(exc, est) from exc


def check_classifier_targets(est: BaseEstimator, y: np.ndarray) -> None:
    try:
        check_classification_targets(y)
    except ValueError as exc:
        raise DataError(
            f"{exc} {type(est).__name__} is a classifier: pass discrete class labels "
            "(ints or strings), not continuous values."
        ) from exc


def require_fitted(est: BaseEstimator, attribute: str) -> None:
    if not hasattr(est, attribute):
        raise EstimatorNotFittedError(
            f"This {type(est).__name__} instance is not fitted yet. "
            "Call 'fit' with training data before using this method."
        )


def check_forget_indices(indices: Any, alive: np.ndarray, n_remaining: int, owner: str) -> np.ndarray:
    """Turn ``indices`` into sorted unique row positions of the fitted data, or raise.

    ``alive[i]`` is False for rows already forgotten; ``n_remaining`` is the
    number of True entries (passed in so that this check stays O(m), not O(n)). Every problem found
    (not integers, duplicates, out of range, already forgotten, the whole
    training set) is a :class:`ForgetSetError` naming the offending values.
    """
    if type(indices) in (list, tuple) and len(indices) == 1 and type(indices[0]) is int:
        # The common single-row request, valid: skip the array checks (they cost more than
        # the update itself); anything doubtful goes down the general path for its message.
        i = indices[0]
        if 0 <= i < alive.shape[0] and alive[i] and n_remaining > 1:
            return np.array([i], dtype=np.int64)
    arr = np.asarray(indices)
    if arr.dtype == bool:
        raise ForgetSetError(
            f"{owner}.forget takes integer row positions, not a boolean mask; "
            "pass np.flatnonzero(mask) instead."
        )
    if arr.ndim == 0:
        arr = arr.reshape(1)
    if arr.ndim != 1:
        raise ForgetSetError(f"{owner}.forget takes a 1-D list of row positions; got shape {arr.shape}.")
    if arr.size == 0:
        raise ForgetSetError(f"{owner}.forget got an empty list of rows; pass at least one row position.")
    if not np.issubdtype(arr.dtype, np.integer):
        raise ForgetSetError(
            f"{owner}.forget takes integer row positions of the array passed to fit; "
            f"got dtype {arr.dtype}. Convert with np.asarray(indices, dtype=int) if they are whole numbers."
        )
    arr = arr.astype(np.int64)
    n = alive.shape[0]
    bad = arr[(arr < 0) | (arr >= n)]
    if bad.size:
        raise ForgetSetError(
            f"{owner}.forget got row positions outside [0, {n}): {bad[:10].tolist()}. "
            "Positions refer to rows of the X passed to fit (negative positions are not allowed)."
        )
    if arr.size == 1:  # the common single-row request; np.unique costs more than the update itself
        uniq, counts = arr, np.ones(1, dtype=np.int64)
    else:
        uniq, counts = np.unique(arr, return_counts=True)
    if np.any(counts > 1):
        raise ForgetSetError(
            f"{owner}.forget got duplicate row positions: {uniq[counts > 1][:10].tolist()}; "
            "list each row once."
        )
    gone = uniq[~alive[uniq]]
    if gone.size:
        raise ForgetSetError(
            f"{owner}.forget got rows that were already forgotten: {gone[:10].tolist()}; "
            "drop them from the request (see forgotten_indices_)."
        )
    if uniq.size >= n_remaining:
        raise ForgetSetError(
            f"{owner}.forget would remove every remaining training row; nothing would be left "
            "to learn from. Discard the model instead."
        )
    return uniq


# --------------------------------------------------------------------------
# Sufficient statistics: count, mean, centred second moment.
# --------------------------------------------------------------------------


def moments(X: np.ndarray) -> tuple[int, np.ndarray, np.ndarray]:
    """Count, column means and centred sums of squares ``sum (x - mean)^2``."""
    n = X.shape[0]
    mean = X.mean(axis=0)
    m2 = ((X - mean) ** 2).sum(axis=0)
    return n, mean, m2


def remove_moments(
    n: int, mean: np.ndarray, m2: np.ndarray, Xb: np.ndarray
) -> tuple[int, np.ndarray, Any]:
    """Statistics of A from those of A+B and the rows of B; O(|B| d).

    Reverse of Chan et al.'s pairwise update
    ``M2 = M2_A + M2_B + n_A n_B / n * (mean_B - mean_A)^2``, which stays
    accurate when the mean is large compared to the spread (raw sums of
    squares lose every digit there).
    """
    if Xb.shape[0] == 1:  # a single row is its own mean, with no spread: skip the reductions
        nb, mean_b, m2_b = 1, Xb[0], 0.0
    else:
        nb, mean_b, m2_b = moments(Xb)
    na = n - nb
    if na <= 0:
        return 0, np.zeros_like(mean), np.zeros_like(m2)
    mean_a = (n * mean - nb * mean_b) / na
    delta = mean_b - mean_a
    m2_a = m2 - m2_b - delta**2 * (na * nb / n)
    return na, mean_a, np.maximum(m2_a, 0.0)  # clip rounding below zero


#: A moments downdate is refused (and the moments recomputed from the remaining rows) when its
#: rounding-error bound exceeds both this many times a refit's own and :data:`MOMENTS_ABS_FLOOR`.
MOMENTS_MAX_AMPLIFICATION = 100.0
#: ... a thousandth of the 1e-8 to which forgetting is tested equal to a refit.
MOMENTS_ABS_FLOOR = 1e-11
_EPS = float(np.finfo(np.float64).eps)
_TINY = float(np.finfo(np.float64).tiny)


def moments_downdate_error(
    n: int, mean: np.ndarray, m2: np.ndarray, Xb: np.ndarray, na: int, mean_a: np.ndarray, m2_a: np.ndarray
) -> tuple[float, float]:
    """Rounding-error bounds of :func:`remove_moments` for mean and variance, and a refit's.

    Returns ``(error, amplification)``: the largest first-order bound over features on the
    downdated mean and variance (``m2 / n``), and the largest ratio of a bound to a refit's own
    (``eps |mean_a|``, ``eps m2_a / na``). Removing most of the rows of data whose mean is large
    against its spread makes both large: the subtraction cancels the leading digits.
    """
    if na <= 0:
        return 0.0, 0.0
    nb = Xb.shape[0]
    mean_b = Xb.mean(axis=0) if nb > 1 else Xb[0]
    err_mean = _EPS * (n * np.abs(mean) + nb * np.abs(mean_b)) / na
    err_var = _EPS * (2.0 * m2) / na  # m2 >= m2_a + m2_b + w delta^2: every subtracted term is at most m2
    amp_mean = err_mean / np.maximum(_EPS * np.abs(mean_a), _TINY)
    amp_var = err_var / np.maximum(_EPS * m2_a / na, _TINY)
    error = max(float(err_mean.max(initial=0.0)), float(err_var.max(initial=0.0)))
    big_mean, big_var = err_mean > MOMENTS_ABS_FLOOR, err_var > MOMENTS_ABS_FLOOR
    amplification = max(
        float(amp_mean[big_mean].max(initial=0.0)), float(amp_var[big_var].max(initial=0.0))
    )
    return error, amplification


@dataclass(frozen=True)
class ExactRemovalGuarantee:
    """What :meth:`forget` of a summation-form estimator achieves."""

    method: str
    epsilon: float
    delta: float
    exact: bool
    n_forgotten: int
    statement: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _summation_guarantee(est: Any) -> ExactRemovalGuarantee:
    name = type(est).__name__
    return ExactRemovalGuarantee(
        method=name,
        epsilon=0.0,
        delta=0.0,
        exact=True,
        n_forgotten=int(est.n_forgotten_),
        statement=(
            f"Exact removal (epsilon=0, delta=0; Cao & Yang 2015): the parameters of this {name} "
            f"after forgetting {est.n_forgotten_} row(s) equal those of a refit on the remaining "
            "rows up to floating-point rounding (tested to 1e-8), and the removed rows are "
            "overwritten in the estimator's stored copy. It does NOT erase copies outside this "
            "object (pickles, logs, the caller's arrays), does not suppress outputs the model can "
            "still produce from the remaining data, and cannot by itself prove to a third party "
            "that the data was forgotten."
        ),
    )


@dataclass(frozen=True)
class DeletionRecord:
    """What one ``forget`` call did: one entry of an estimator's ``deletion_log_``.

    ``method`` is ``"subtract"`` (naive Bayes: statistics downdated),
    ``"woodbury"`` (ridge: rank-k update of the kept solve) or ``"refactorise"``
    (a fresh factorisation from the statistics). ``refactorised`` is True
    whenever the cheap path was not (fully) used, and ``reason`` then says why:
    a planned choice (a batch too large for a rank-k update to pay) or a failed
    stability check (logged as a warning). ``stability`` holds the measured
    quantities the check looked at.
    """

    n_rows: int
    method: str
    refactorised: bool = False
    reason: str | None = None
    stability: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class _ForgetBookkeeping:
    """Common ``forget`` bookkeeping: erase stored rows, count, remember positions."""

    _fit_X: np.ndarray
    _alive: np.ndarray

    def _init_bookkeeping(self, X: np.ndarray, y: np.ndarray) -> None:
        self._fit_X = X
        self._fit_y = y
        self._alive = np.ones(X.shape[0], dtype=bool)
        self._n_alive = X.shape[0]
        self.n_forgotten_ = 0
        self.forgotten_indices_: list[int] = []
        self.deletion_log_: list[DeletionRecord] = []

    def _commit_forget(self, idx: np.ndarray, record: DeletionRecord) -> None:
        # The object must no longer hold the removed rows or their labels.
        self._fit_X[idx] = 0.0
        self._fit_y[idx] = np.zeros(1, dtype=self._fit_y.dtype)[0]
        self._alive[idx] = False
        self._n_alive -= int(idx.size)
        self.n_forgotten_ += int(idx.size)
        self.forgotten_indices_.extend(idx.tolist())
        self.deletion_log_.append(record)

    def guarantee(self) -> ExactRemovalGuarantee:
        """Describe, in words and numbers, what ``forget`` has guaranteed so far."""
        require_fitted(self, "n_forgotten_")  # type: ignore[arg-type]
        return _summation_guarantee(self)


