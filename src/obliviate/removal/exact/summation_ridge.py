"""Ridge regression in summation form: exact deletion by Woodbury updates of the kept solve.

See :mod:`obliviate.removal.exact.summation` for the overview and the memory cost.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
from scipy import linalg
from scipy.linalg import blas
from sklearn.base import BaseEstimator, RegressorMixin

from obliviate.errors import DataError
from obliviate.removal.exact._summation_base import (
    DeletionRecord,
    _ForgetBookkeeping,
    check_fit_data,
    check_forget_indices,
    check_predict_X,
    is_real,
    param_problem,
    raise_problems,
    require_fitted,
)

logger = logging.getLogger(__name__)

__all__ = ["MAX_CORRECTION", "MAX_SCATTER_SHRINK", "MIN_CAPACITANCE", "SummationRidge"]

_TINY = np.finfo(np.float64).tiny

# Stability thresholds (module constants so that a test can switch a check off and show
# that it matters). A downdate leaves an absolute rounding error of about eps * (old size)
# in the statistics; when the removed rows carried nearly all of the spread in some direction,
# that error is large against what remains, digits a refit on the remaining rows would keep.

#: Smallest accepted eigenvalue of the Woodbury capacitance ``C = I - U^T A^{-1} U``. It lies
#: in (0, 1] while ``A - U U^T`` stays positive definite, and 1 / (its smallest eigenvalue) is
#: the factor by which the curvature shrinks in the worst removed direction: below 1e-5 the
#: downdate would lose five digits or more.
MIN_CAPACITANCE = 1e-5
#: Largest accepted shrinkage ``old / (new + alpha)`` of a diagonal entry of the scatter: the
#: same test along each feature's axis, for the batches that skip the Woodbury update (for the
#: others the capacitance bounds it: shrinkage <= 1 / capacitance eigenvalue, by Cauchy-Schwarz).
MAX_SCATTER_SHRINK = 1e5
#: Largest accepted iterative-refinement correction, relative to the coefficients: it
#: estimates the error of the kept inverse's answer, so a larger one means the inverse drifted.
#: An ill-conditioned system has larger corrections even from a fresh factorisation (about
#: cond(A) * eps), so the limit is raised to 100 times the correction measured right after
#: the last factorisation when that is larger.
MAX_CORRECTION = 1e-10


def _max_update_rank(d: int) -> int:
    """Largest rank updated by Woodbury; above it a fresh factorisation is cheaper (always rank 1)."""
    return max(1, d // 4)


def _add_rank1(A: np.ndarray, alpha: float, x: np.ndarray) -> None:
    """``A += alpha x x^T`` in place for a symmetric A: BLAS ``dger`` on the transposed view."""
    if A.flags.c_contiguous:  # then A.T is Fortran-ordered and dger writes into A itself
        blas.dger(alpha, x, x, a=A.T, overwrite_a=1)
    else:
        A += alpha * np.outer(x, x)


# --------------------------------------------------------------------------
# Ridge regression
# --------------------------------------------------------------------------


class SummationRidge(_ForgetBookkeeping, RegressorMixin, BaseEstimator):
    """Ridge regression that can forget training rows exactly.

    Minimises ``||y - X w - b||^2 + alpha ||w||^2`` like
    ``sklearn.linear_model.Ridge`` (the intercept is not penalised). The fit
    depends on the data only through the count, the means of X and y, the
    centred scatter ``Xc^T Xc`` (d x d) and cross-scatter ``Xc^T yc`` (d x t),
    so the centring needed for the intercept is done inside the sufficient
    statistics and downdated exactly on ``forget``.

    Removing m rows changes ``A = Xc^T Xc + alpha I`` by a rank-r downdate
    ``A - U U^T`` (r = m + 1 with an intercept, the extra column moving the
    mean; r = 1 for a single row). We keep ``A^{-1}`` (from a Cholesky
    factorisation, ``scipy.linalg.cho_factor``/``cho_solve``) and update it
    with the Woodbury identity, O(r d^2 + r^3), instead of refactorising,
    O(d^3): SciPy has no Cholesky up/downdate, and a Python-level rank-1
    downdate loop costs more than the whole Woodbury update at these sizes.

    Stability check, on every ``forget`` (see :class:`DeletionRecord`):

    1. *Would the downdate lose accuracy?* If the removed rows carried nearly
       all of the curvature in some direction (an outlier, a rare binary
       feature, a row that alone separates two collinear features), the
       subtraction cancels digits in the statistics themselves, and no
       refactorisation of them recovers those. Measured by the smallest
       eigenvalue of the capacitance ``C = I - U^T A^{-1} U`` (>=
       :data:`MIN_CAPACITANCE`; <= 0 means the system became indefinite) and by
       the shrinkage of the scatter's diagonal (<= :data:`MAX_SCATTER_SHRINK`).
       On failure the statistics are recomputed from the stored remaining rows
       (O(n d^2): the only case where ``forget`` reads them) and factorised
       afresh: ``method="recompute"``.
    2. *Has the kept inverse drifted?* The coefficients get one step of
       iterative refinement against the statistics (the source of truth); a
       correction larger than :data:`MAX_CORRECTION` times the coefficients
       means rank updates have accumulated rounding, and we refactorise from
       the statistics: ``method="refactorise"``.

    Either fallback is logged as a warning and recorded (``refactorised=True``
    and the reason) in ``deletion_log_``. Batches with r > max(1, d / 4) are
    refactorised by plan (a rank-r update no longer pays), without a warning.

    Parameters
    ----------
    alpha : float, default=1.0
        L2 penalty, >= 0 (0 needs a non-singular scatter matrix).
    fit_intercept : bool, default=True
        Fit an unpenalised intercept (centring through the statistics).

    Attributes
    ----------
    coef_, intercept_, n_features_in_ : as in scikit-learn.
    n_forgotten_, forgotten_indices_ : rows removed so far (positions in fit's X).
    deletion_log_ : list of DeletionRecord
        One per ``forget`` call.
    """

    def __init__(self, *, alpha: float = 1.0, fit_intercept: bool = True) -> None:
        self.alpha = alpha
        self.fit_intercept = fit_intercept

    def __sklearn_tags__(self):  # type: ignore[no-untyped-def]
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        return tags

    def _check_params(self) -> None:
        owner = type(self).__name__
        problems = []
        if not is_real(self.alpha) or not self.alpha >= 0:
            problems.append(param_problem(owner, "alpha", "a float in the range [0, inf)", self.alpha))
        if not isinstance(self.fit_intercept, (bool, np.bool_)):
            problems.append(param_problem(owner, "fit_intercept", "a bool", self.fit_intercept))
        raise_problems(owner, problems)

    def fit(self, X: Any, y: Any) -> SummationRidge:
        """Fit from ``X`` (n, d) and targets ``y`` (n,) or (n, t); returns self."""
        self._check_params()
        X, y = check_fit_data(self, X, y, y_numeric=True, multi_output=True)
        self._y_1d = y.ndim == 1
        Y = y.reshape(-1, 1) if self._y_1d else y
        self._init_bookkeeping(X, Y.copy())
        self._n = X.shape[0]
        if self.fit_intercept:
            self._x_mean, self._y_mean = X.mean(axis=0), Y.mean(axis=0)
            Xc, Yc = X - self._x_mean, Y - self._y_mean
        else:
            self._x_mean, self._y_mean = np.zeros(X.shape[1]), np.zeros(Y.shape[1])
            Xc, Yc = X, Y
        self._sxx = Xc.T @ Xc
        self._sxy = Xc.T @ Yc
        self._alpha = float(self.alpha)
        self._refactorise()
        return self

    # ---- solving -------------------------------------------------------------

    def _refactorise(self) -> None:
        """Fresh Cholesky factorisation from the statistics; resets the kept inverse."""
        A = self._sxx + self._alpha * np.eye(self._sxx.shape[0])
        try:
            factor = linalg.cho_factor(A, check_finite=False)
        except (linalg.LinAlgError, ValueError) as exc:
            raise DataError(
                f"{type(self).__name__}: the ridge system is singular ({exc}); "
                "use alpha > 0 or more rows than features."
            ) from exc
        self._ainv = np.ascontiguousarray(linalg.cho_solve(factor, np.eye(A.shape[0]), check_finite=False))
        # The answer is the plain Cholesky solve (what scikit-learn's solver computes); the
        # refinement step only measures this factorisation's correction level.
        self._fresh_correction = self._refined_coef()[1]
        self._set_coef(linalg.cho_solve(factor, self._sxy, check_finite=False))

    def _woodbury(self, U: np.ndarray) -> tuple[str | None, dict[str, float]]:
        """``A^{-1} <- (A - U U^T)^{-1}`` in place; returns (why it cannot, measures)."""
        if U.shape[1] == 1:  # the common single-row request: scalar capacitance, BLAS rank-1 update
            u = U[:, 0]
            v = self._ainv @ u
            cap = 1.0 - float(u @ v)
            stability = {"min_capacitance": cap}
            if not cap >= MIN_CAPACITANCE:
                return self._capacitance_problem(cap), stability
            _add_rank1(self._ainv, 1.0 / cap, v)
            return None, stability
        V = self._ainv @ U
        C = np.eye(U.shape[1]) - U.T @ V
        cap = float(np.linalg.eigvalsh(C)[0])
        stability = {"min_capacitance": cap}
        if not cap >= MIN_CAPACITANCE:
            return self._capacitance_problem(cap), stability
        self._ainv += V @ linalg.solve(C, V.T, assume_a="pos", check_finite=False)
        return None, stability

    @staticmethod
    def _capacitance_problem(cap: float) -> str:
        if not cap > 0:
            return (
                f"the downdate would make the system indefinite (capacitance eigenvalue {cap:.3g} <= 0): "
                "rounding has left the statistics unable to represent the remaining rows"
            )
        return (
            f"the downdate would lose about {int(-np.log10(cap))} digits (capacitance eigenvalue {cap:.3g} "
            f"< {MIN_CAPACITANCE:g}): the removed rows carried nearly all the curvature in some direction"
        )

    def _refined_coef(self) -> tuple[np.ndarray, float]:
        """Coefficients from the kept inverse plus one refinement step; returns (W, relative correction)."""
        W = self._ainv @ self._sxy
        R = self._sxy - self._sxx @ W
        R -= self._alpha * W
        correction = self._ainv @ R
        W += correction
        w_norm = float(np.linalg.norm(W))
        return W, float(np.linalg.norm(correction)) / (w_norm if w_norm > 0 else 1.0)

    def _downdate_solve(self, U: np.ndarray, idx: np.ndarray, stability: dict[str, float]) -> DeletionRecord:
        """Solve after ``A <- A - U U^T`` (statistics already downdated); O(r d^2 + r^3)."""
        (d, r), n_rows = U.shape, int(idx.size)
        if r > _max_update_rank(d):
            self._refactorise()
            reason = (
                f"planned: a rank-{r} update costs more than a fresh O(d^3) factorisation at d = {d} "
                f"(updates are used up to rank max(1, d // 4) = {_max_update_rank(d)})"
            )
            logger.debug("%s: %s", type(self).__name__, reason)
            return DeletionRecord(n_rows, "refactorise", refactorised=True, reason=reason, stability=stability)
        problem, measured = self._woodbury(U)
        stability.update(measured)
        if problem is not None:
            return self._recompute(idx, problem, stability)
        W, rel = self._refined_coef()
        stability["relative_correction"] = rel
        limit = max(MAX_CORRECTION, 100.0 * self._fresh_correction)
        if rel <= limit:
            self._set_coef(W)
            return DeletionRecord(n_rows, "woodbury", stability=stability)
        problem = (
            f"the kept inverse has drifted: iterative refinement corrected the coefficients by "
            f"{rel:.3g} of their norm (> {limit:.3g})"
        )
        logger.warning("%s.forget: refactorising from the statistics, because %s.", type(self).__name__, problem)
        self._refactorise()
        return DeletionRecord(n_rows, "refactorise", refactorised=True, reason=problem, stability=stability)

    def _recompute(self, idx: np.ndarray, problem: str, stability: dict[str, float]) -> DeletionRecord:
        """Statistics afresh from the stored remaining rows, then a fresh factorisation; O(n d^2)."""
        logger.warning(
            "%s.forget: recomputing the statistics from the stored remaining rows and refactorising, because %s.",
            type(self).__name__, problem,
        )
        keep = self._alive.copy()
        keep[idx] = False
        X, Y = self._fit_X[keep], self._fit_y[keep]
        if self.fit_intercept:
            self._x_mean, self._y_mean = X.mean(axis=0), Y.mean(axis=0)
            X, Y = X - self._x_mean, Y - self._y_mean
        self._sxx, self._sxy = X.T @ X, X.T @ Y
        self._refactorise()
        return DeletionRecord(int(idx.size), "recompute", refactorised=True, reason=problem, stability=stability)

    def _set_coef(self, W: np.ndarray) -> None:
        coef = W.T  # (t, d)
        intercept = self._y_mean - self._x_mean @ W if self.fit_intercept else np.zeros(W.shape[1])
        if self._y_1d:
            self.coef_, self.intercept_ = coef[0], float(intercept[0])
        else:
            self.coef_, self.intercept_ = coef, intercept

    # ---- forgetting ----------------------------------------------------------

    def _downdate_statistics(self, idx: np.ndarray) -> np.ndarray:
        """Remove rows ``idx`` from the statistics; returns U with ``A_new = A - U U^T``."""
        Xb, Yb = self._fit_X[idx], self._fit_y[idx]
        nb, n = idx.size, self._n
        na = n - nb
        self._n = na
        if not self.fit_intercept:
            self._sxx -= Xb.T @ Xb
            self._sxy -= Xb.T @ Yb
            return Xb.T
        # Reverse of the pairwise (co)variance merge: S = S_A + S_B + na nb / n * dx dy^T.
        if nb == 1:  # a single row is its own mean: its centred scatter is zero
            xb_mean, yb_mean = Xb[0], Yb[0]
        else:
            xb_mean, yb_mean = Xb.mean(axis=0), Yb.mean(axis=0)
        xa_mean = (n * self._x_mean - nb * xb_mean) / na
        ya_mean = (n * self._y_mean - nb * yb_mean) / na
        dx, dy = xb_mean - xa_mean, yb_mean - ya_mean
        w = na * nb / n
        _add_rank1(self._sxx, -w, dx)
        self._sxy -= w * np.outer(dx, dy)
        self._x_mean, self._y_mean = xa_mean, ya_mean
        u = np.sqrt(w) * dx
        if nb == 1:
            return u[:, None]
        Xbc, Ybc = Xb - xb_mean, Yb - yb_mean
        self._sxx -= Xbc.T @ Xbc
        self._sxy -= Xbc.T @ Ybc
        return np.column_stack([Xbc.T, u])

    def forget(self, indices: Any) -> SummationRidge:
        """Remove training rows (positions in the X given to ``fit``) exactly.

        Costs O(m d^2 + m^3) (Woodbury update, see the class docstring), or one
        O(d^3) factorisation when the rank exceeds max(1, d / 4); never O(n) (except the
        stability fallback, see the class docstring). Appends a
        :class:`DeletionRecord` to ``deletion_log_``.
        """
        require_fitted(self, "coef_")
        idx = check_forget_indices(indices, self._alive, self._n_alive, type(self).__name__)
        d = self._sxx.shape[0]
        rank = idx.size + (1 if self.fit_intercept and idx.size > 1 else 0)
        # Rank-r updates check the capacitance, which bounds every diagonal's shrinkage too
        # (shrink_j <= 1 / capacitance); a planned refactorisation checks the diagonal instead.
        diag_before = self._sxx.diagonal().copy() if rank > _max_update_rank(d) else None
        U = self._downdate_statistics(idx)
        try:
            if diag_before is None:
                record = self._downdate_solve(U, idx, {})
            else:
                shrink = float(np.max(diag_before / np.maximum(self._sxx.diagonal() + self._alpha, _TINY)))
                stability = {"scatter_shrink": shrink}
                if shrink > MAX_SCATTER_SHRINK:
                    problem = (
                        f"the downdate would lose accuracy: a diagonal entry of the scatter shrank {shrink:.3g}-fold "
                        f"(> {MAX_SCATTER_SHRINK:g}), so the removed rows carried nearly all of a feature's spread"
                    )
                    record = self._recompute(idx, problem, stability)
                else:
                    record = self._downdate_solve(U, idx, stability)
        except DataError as exc:
            # The rows are gone but no coefficients fit the rest: never leave the old ones in place.
            self._commit_forget(idx, DeletionRecord(int(idx.size), "refactorise", refactorised=True, reason=str(exc)))
            del self.coef_, self.intercept_
            raise DataError(
                f"{exc} The rows were forgotten and the old coefficients discarded; "
                "refit with alpha > 0 before predicting."
            ) from exc
        self._commit_forget(idx, record)
        return self

    def predict(self, X: Any) -> np.ndarray:
        require_fitted(self, "coef_")
        X = check_predict_X(self, X)
        return X @ np.asarray(self.coef_).T + self.intercept_
