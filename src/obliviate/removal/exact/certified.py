# Over 450 lines: the module docstring (the algorithm, its assumptions and costs, ~60 lines) stays beside the code it explains.
"""Certified removal for L2-regularised logistic regression.

Guo, Goldstein, Hannun & van der Maaten (2020), "Certified Data Removal from
Machine Learning Models" (ICML).

Training (the paper's Algorithm 1) minimises the loss-perturbed objective

    L_b(w; D) = sum_i log(1 + exp(-s_i w^T x_i)) + lam * n / 2 * ||w||^2 + b^T w,

with labels ``s_i`` in {-1, +1} and ``b ~ N(0, sigma^2 I)`` drawn from a
seeded ``numpy.random.Generator``. (Dividing by n gives the mean-loss form
``mean loss + lam/2 ||w||^2 + b^T w / n`` of the authors' code; same minimiser.)

Removing a set S of m rows is one Newton step on the remaining data D':

    Delta = m * lam * w + sum_{j in S} grad l(w^T x_j, s_j)
    H     = Hessian of L(.; D') at w    (sum form, includes lam * (n - m) * I)
    w-    = w + H^{-1} Delta.

Its gradient residual on D' is bounded by the paper's data-dependent bound
(Corollary 1) ``gamma * ||X'||_2 * ||H^{-1} Delta|| * ||X' H^{-1} Delta||``
with ``gamma = 1/4`` (Lipschitz constant of the logistic loss's second
derivative) and ``X'`` the remaining rows. Residual bounds add up over removals
(triangle inequality). By the paper's Theorem 3 with Gaussian noise, the
released weights are (epsilon, delta)-certified as long as the accumulated bound
stays within the budget ``sigma * epsilon / c`` with
``c = sqrt(2 log(1.5 / delta))``. When a removal would exceed it, the model is
retrained from scratch on the remaining rows with fresh noise and the
accumulator restarts (from the retrain's measured residual).

Multiclass is one-vs-rest: K binary models whose weights are released
together. The objective is separable over classes, so the joint residual is
``sqrt(sum_k r_k^2)``; we bound it by ``sqrt(sum_k beta_k^2)`` and check that
single number against the budget, which certifies the whole K-vector model
with one (epsilon, delta) (the authors' code sums the per-class bounds, a
looser bound on the same quantity).

What the paper assumes, and what this module does about it:

- ``||x_i|| <= 1`` for every row. ``row_norm="clip"`` (default) divides each
  row with norm > 1 by its own norm, at fit and predict time; this is a per-row
  transform, so it does not make one row depend on another. ``row_norm="error"``
  refuses such rows instead. Do not rescale by a constant computed from the data
  (e.g. the largest norm): it would itself depend on the rows you later remove.
- The loss is convex with a ``gamma``-Lipschitz second derivative and
  ``lam > 0`` (strong convexity); there is no intercept (append a constant
  feature if you need one; it counts toward the norm).
- Training returns the exact minimiser. We run L-BFGS then Newton polishing to
  a gradient norm of ``tol`` and add the measured training residual to the
  accumulator, so an inexact optimum is charged to the budget.
- The noise ``b`` is secret. The estimator object holds ``b``, the random
  generator and the (remaining) training rows: publish ``coef_`` only, never
  the pickled estimator. A fixed ``random_state`` makes runs reproducible but
  anyone who knows the seed knows ``b``; leave it None in production.

Cost: ``fit`` keeps the Hessians at the trained weights (one extra O(n d^2) per
class, and K d^2 floats of memory: 49 MB for 10 classes at d = 784). The first
removal after a fit or retrain downdates them by the removed rows, O(m d^2 + d^3)
per class; every later removal rebuilds them on the remaining rows,
O(n d^2 + d^3) per class, because the Newton step needs the Hessian at the
*current* weights and each step moves them. Versus a full L-BFGS retrain.
"""

from __future__ import annotations

import logging
import math
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
from scipy import linalg
from scipy.special import expit
from sklearn.base import BaseEstimator, ClassifierMixin

from obliviate.errors import DataError
from obliviate.removal.exact._logistic_math import (
    GAMMA_LOGISTIC,
    logistic_hessian,
    newton_removal_step,
    perturbed_logistic_grad,
    perturbed_logistic_objective,
    removal_budget,
    train_perturbed_logistic,
)
from obliviate.removal.exact.summation import (
    check_classifier_targets,
    check_fit_data,
    check_forget_indices,
    check_predict_X,
    is_real,
    param_problem,
    raise_problems,
    require_fitted,
)

logger = logging.getLogger(__name__)

__all__ = [
    "GAMMA_LOGISTIC",
    "MAX_HESSIAN_SHRINK",
    "CertifiedLogisticRegression",
    "CertifiedRemovalGuarantee",
    "logistic_hessian",
    "newton_removal_step",
    "perturbed_logistic_grad",
    "perturbed_logistic_objective",
    "removal_budget",
    "train_perturbed_logistic",
]

_ROW_NORM = ("clip", "error")
_TINY = np.finfo(np.float64).tiny

#: Largest accepted shrinkage of a diagonal entry of a kept Hessian by a removal's downdate;
#: beyond it the subtraction would cancel five digits or more, and the Hessian is rebuilt.
MAX_HESSIAN_SHRINK = 1e5


# --------------------------------------------------------------------------
# The estimator
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class CertifiedRemovalGuarantee:
    """What :class:`CertifiedLogisticRegression` guarantees right now."""

    epsilon: float
    delta: float
    sigma: float
    residual_bound: float
    residual_budget: float
    holds: bool
    n_forgotten: int
    n_newton_removals: int
    n_retrains: int
    exact: bool = False
    statement: str = ""
    assumptions: tuple[str, ...] = field(default_factory=tuple)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class CertifiedLogisticRegression(ClassifierMixin, BaseEstimator):
    """L2-regularised logistic regression with (epsilon, delta)-certified removal.

    Guo et al. (2020); see the module docstring for the algorithm, the
    assumptions (``||x|| <= 1``, secret noise) and the cost.

    Parameters
    ----------
    lam : float, default=1e-3
        L2 strength (the paper's lambda) of the mean-form objective, > 0.
    epsilon, delta : float, default=1.0, 1e-4
        Target certified-removal parameters (epsilon > 0, 0 < delta < 1).
    sigma : float, default=1.0
        Standard deviation of the objective-perturbation noise ``b``. Larger
        sigma allows more Newton removals before a retrain but perturbs the
        model more (its effect on w shrinks like sigma / (lam n)).
    row_norm : {"clip", "error"}, default="clip"
        How to enforce ``||x|| <= 1``: divide rows with larger norm by their
        own norm, or raise :class:`DataError`.
    tol : float, default=1e-8
        Target gradient norm of training (sum form); the achieved residual is
        charged to the budget.
    max_iter : int, default=1000
        L-BFGS iteration limit.
    random_state : int, numpy Generator or None, default=None
        Seed of the noise. Secret in production (see module docstring).

    Attributes
    ----------
    classes_ : ndarray
        Labels; fixed at fit (forgetting every row of a class keeps the class).
    coef_ : ndarray of shape (1, d) for two classes, else (n_classes, d)
    residual_bound_ : float
        Accumulated bound on the gradient residual of the released weights.
    residual_budget_ : float
        ``sigma * epsilon / sqrt(2 log(1.5/delta))``.
    n_iter_ : ndarray of shape (n_models,)
        Optimiser iterations (L-BFGS plus Newton polishing) of the last (re)training.
    n_forgotten_, forgotten_indices_ : removed rows (positions in fit's X).
    n_retrains_ : int
        Retrains triggered by the budget.
    removal_log_ : list of dict
        One entry per ``forget`` call: rows, bound, action ("newton"/"retrain"),
        how the Hessians were obtained ("downdated"/"rebuilt"), and
        ``refactorised`` with the ``reason`` when they were rebuilt.
    """

    def __init__(
        self,
        *,
        lam: float = 1e-3,
        epsilon: float = 1.0,
        delta: float = 1e-4,
        sigma: float = 1.0,
        row_norm: str = "clip",
        tol: float = 1e-8,
        max_iter: int = 1000,
        random_state: Any = None,
    ) -> None:
        self.lam = lam
        self.epsilon = epsilon
        self.delta = delta
        self.sigma = sigma
        self.row_norm = row_norm
        self.tol = tol
        self.max_iter = max_iter
        self.random_state = random_state

    def _check_params(self) -> None:
        owner = type(self).__name__
        problems = []
        for name in ("lam", "epsilon", "sigma", "tol"):
            value = getattr(self, name)
            if not is_real(value) or not value > 0:
                problems.append(param_problem(owner, name, "a float in the range (0, inf)", value))
        if not is_real(self.delta) or not 0 < self.delta < 1:
            problems.append(param_problem(owner, "delta", "a float in the range (0, 1)", self.delta))
        if self.row_norm not in _ROW_NORM:
            problems.append(param_problem(owner, "row_norm", f"one of {_ROW_NORM}", self.row_norm))
        if not isinstance(self.max_iter, (int, np.integer)) or isinstance(self.max_iter, bool) or self.max_iter < 1:
            problems.append(param_problem(owner, "max_iter", "an int in the range [1, inf)", self.max_iter))
        rs = self.random_state
        if not (rs is None or isinstance(rs, np.random.Generator) or (isinstance(rs, (int, np.integer)) and not isinstance(rs, bool) and rs >= 0)):
            problems.append(param_problem(owner, "random_state", "None, a non-negative int or a numpy Generator", rs))
        raise_problems(owner, problems)

    # ---- data preparation -------------------------------------------------

    def _rows(self, X: np.ndarray, *, training: bool) -> np.ndarray:
        norms = np.linalg.norm(X, axis=1)
        too_long = norms > 1.0 + 1e-12
        if not np.any(too_long):
            return X
        if self.row_norm == "error":
            if not training:
                return X  # the guarantee concerns training rows only
            raise DataError(
                f"{type(self).__name__} (row_norm='error') needs every training row to have L2 norm <= 1 "
                f"(Guo et al. assume ||x|| <= 1); {int(too_long.sum())} rows exceed it (largest {norms.max():.4g}). "
                "Divide each row by its own norm, or set row_norm='clip'. Do not divide by a constant computed "
                "from the data: it would depend on the rows you later remove."
            )
        scale = np.where(too_long, norms, 1.0)
        return X / scale[:, None]

    def _signed(self, codes: np.ndarray) -> np.ndarray:
        k = self.classes_.size
        if k == 2:
            return np.where(codes == 1, 1.0, -1.0)[:, None]
        return np.where(codes[:, None] == np.arange(k)[None, :], 1.0, -1.0)

    def _draw_noise(self) -> np.ndarray:
        return self._rng.normal(0.0, self.sigma, size=(self.n_features_in_, self._S.shape[1]))

    def _train(self, X: np.ndarray, S: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        W = np.zeros((S.shape[1], X.shape[1]))
        res = np.zeros(S.shape[1])
        self.n_iter_ = np.zeros(S.shape[1], dtype=np.int64)
        for k in range(S.shape[1]):
            W[k], res[k], self.n_iter_[k] = train_perturbed_logistic(
                X, S[:, k], lam=self.lam, b=b[:, k], tol=self.tol, max_iter=self.max_iter
            )
        return W, res

    # ---- public API -------------------------------------------------------

    def fit(self, X: Any, y: Any) -> CertifiedLogisticRegression:
        """Train with loss perturbation (the paper's Algorithm 1); returns self."""
        self._check_params()
        X, y = check_fit_data(self, X, y)
        check_classifier_targets(self, y)
        classes, codes = np.unique(y, return_inverse=True)
        if classes.size < 2:
            raise DataError(
                f"{type(self).__name__} needs at least two classes in y; got only one class: {classes.tolist()}."
            )
        self.classes_ = classes
        X = self._rows(X, training=True)
        self._S = self._signed(codes)
        self._rng = np.random.default_rng(self.random_state)
        self._noise = self._draw_noise()
        self.coef_, residual = self._train(X, self._S, self._noise)
        self.intercept_ = np.zeros(self.coef_.shape[0])
        self._residual = residual
        self._fit_X = X  # a private copy (check_fit_data copies)
        self._gram = X.T @ X  # for ||X'||_2, downdated on removal
        self._alive = np.ones(X.shape[0], dtype=bool)
        self._n_alive = X.shape[0]
        self.residual_budget_ = removal_budget(self.sigma, self.epsilon, self.delta)
        self.residual_bound_ = float(np.linalg.norm(residual))
        self.n_forgotten_ = 0
        self.forgotten_indices_: list[int] = []
        self.n_retrains_ = 0
        self.removal_log_: list[dict[str, Any]] = []
        self._keep_hessians(X, self._S)
        return self

    def _keep_hessians(self, X: np.ndarray, S: np.ndarray) -> None:
        """Hessians at the current weights on the current rows: the next removal downdates them."""
        self._hessians: np.ndarray | None = np.stack(
            [logistic_hessian(self.coef_[k], X, S[:, k], self.lam) for k in range(self.coef_.shape[0])]
        )

    def _removal_hessians(
        self, X_gone: np.ndarray, S_gone: np.ndarray, keep: np.ndarray
    ) -> tuple[np.ndarray, dict[str, Any]]:
        """Hessians on the kept rows at the current weights, and how they were obtained.

        Downdated from the kept ones (O(m d^2)) when those are at the current
        weights; rebuilt from the kept rows (O(n d^2)) when the weights moved
        since (any Newton step moves them), or when the downdate fails the
        stability check (a diagonal entry shrinking more than
        :data:`MAX_HESSIAN_SHRINK`-fold would have lost digits to cancellation).
        """
        if self._hessians is None:
            note = {"hessian": "rebuilt", "refactorised": True,
                    "reason": "the weights moved since the kept Hessians were computed"}
        else:
            m = X_gone.shape[0]
            H = self._hessians.copy()
            for k in range(H.shape[0]):
                p = expit(X_gone @ self.coef_[k])
                B = X_gone * np.sqrt(p * (1.0 - p))[:, None]
                H[k] -= B.T @ B
                H[k][np.diag_indices_from(H[k])] -= self.lam * m
            shrink = float(np.max(
                np.diagonal(self._hessians, axis1=1, axis2=2) / np.maximum(np.diagonal(H, axis1=1, axis2=2), _TINY)
            ))
            if shrink <= MAX_HESSIAN_SHRINK:
                return H, {"hessian": "downdated", "refactorised": False, "reason": None, "hessian_shrink": shrink}
            note = {"hessian": "rebuilt", "refactorised": True, "hessian_shrink": shrink,
                    "reason": f"the Hessian downdate would lose accuracy (a diagonal entry shrank {shrink:.3g}-fold, "
                    f"> {MAX_HESSIAN_SHRINK:g})"}
            logger.warning("%s.forget: rebuilding the Hessians from the kept rows, because %s.",
                           type(self).__name__, note["reason"])
        X_keep, S_keep = self._fit_X[keep], self._S[keep]
        H = np.stack([logistic_hessian(self.coef_[k], X_keep, S_keep[:, k], self.lam) for k in range(self.coef_.shape[0])])
        return H, note

    def forget(self, indices: Any) -> CertifiedLogisticRegression:
        """Remove rows (positions in fit's X) by one Newton step, or retrain if over budget.

        The Newton step needs the Hessian on the kept rows at the current
        weights: the first removal after ``fit`` (or after a retrain) downdates
        the Hessians kept from then, O(m d^2 + d^3) per class; later removals
        rebuild them from the kept rows, O(n d^2), because each step moves the
        weights. Batch rows into one call to get the cheap path for all of them.
        """
        require_fitted(self, "coef_")
        idx = check_forget_indices(indices, self._alive, self._n_alive, type(self).__name__)
        keep = self._alive.copy()
        keep[idx] = False
        X_gone, S_gone = self._fit_X[idx], self._S[idx]
        gram = self._gram - X_gone.T @ X_gone
        spectral = math.sqrt(max(float(linalg.eigvalsh(gram, subset_by_index=[gram.shape[0] - 1, gram.shape[0] - 1])[0]), 0.0))
        H, note = self._removal_hessians(X_gone, S_gone, keep)
        W_new = np.empty_like(self.coef_)
        bounds = np.empty(self.coef_.shape[0])
        for k in range(self.coef_.shape[0]):
            w = self.coef_[k]
            z = S_gone[:, k] * (X_gone @ w)
            delta = X_gone.shape[0] * self.lam * w + X_gone.T @ (-S_gone[:, k] * expit(-z))
            step = linalg.solve(H[k], delta, assume_a="pos")
            # ||X_keep step|| from the downdated Gram matrix: O(d^2) instead of O(n d).
            x_step = math.sqrt(max(float(step @ gram @ step), 0.0))
            W_new[k] = w + step
            bounds[k] = GAMMA_LOGISTIC * spectral * float(np.linalg.norm(step)) * x_step
        accumulated = self._residual + bounds
        self._gram = gram
        self._fit_X[idx] = 0.0  # the object no longer holds the removed rows
        self._S[idx] = 0.0
        self._alive = keep
        self._n_alive -= int(idx.size)
        if float(np.linalg.norm(accumulated)) <= self.residual_budget_:
            action = "newton"
            self.coef_, self._residual = W_new, accumulated
            self._hessians = None  # the weights moved: the kept Hessians no longer apply
        else:
            # Over budget: the Newton step would void the certificate. Retrain on
            # the remaining rows with fresh noise; the accumulator restarts.
            action = "retrain"
            logger.info("certified removal budget exceeded (%.3g > %.3g); retraining", np.linalg.norm(accumulated), self.residual_budget_)
            self._noise = self._draw_noise()
            X_keep, S_keep = self._fit_X[keep], self._S[keep]
            self.coef_, self._residual = self._train(X_keep, S_keep, self._noise)
            self._keep_hessians(X_keep, S_keep)
            self.n_retrains_ += 1
        self.n_forgotten_ += int(idx.size)
        self.forgotten_indices_.extend(idx.tolist())
        self.residual_bound_ = float(np.linalg.norm(self._residual))
        self.removal_log_.append(
            {"n_rows": int(idx.size), "step_bound": float(np.linalg.norm(bounds)),
             "residual_bound": self.residual_bound_, "action": action, **note}
        )
        return self

    def decision_function(self, X: Any) -> np.ndarray:
        require_fitted(self, "coef_")
        X = self._rows(check_predict_X(self, X), training=False)
        scores = X @ self.coef_.T
        return scores[:, 0] if scores.shape[1] == 1 else scores

    def predict_proba(self, X: Any) -> np.ndarray:
        """Sigmoid scores; one-vs-rest scores are normalised to sum to one (as sklearn's OvR)."""
        scores = self.decision_function(X)
        if scores.ndim == 1:
            p = expit(scores)
            return np.column_stack([1.0 - p, p])
        p = expit(scores)
        return p / p.sum(axis=1, keepdims=True)

    def predict(self, X: Any) -> np.ndarray:
        scores = self.decision_function(X)
        if scores.ndim == 1:
            return self.classes_[(scores > 0).astype(int)]
        return self.classes_[np.argmax(scores, axis=1)]

    def guarantee(self) -> CertifiedRemovalGuarantee:
        """The current certificate, in words and numbers."""
        require_fitted(self, "coef_")
        holds = self.residual_bound_ <= self.residual_budget_
        n_newton = sum(1 for e in self.removal_log_ if e["action"] == "newton")
        used = self.residual_bound_ / self.residual_budget_
        head = (
            f"(epsilon={self.epsilon:g}, delta={self.delta:g})-certified removal (Guo et al. 2020): "
            f"the released weights are (epsilon, delta)-indistinguishable from weights trained without "
            f"the {self.n_forgotten_} removed row(s), over the randomness of the loss-perturbation noise "
            f"(sigma={self.sigma:g})."
            if holds
            else f"NOT certified: the gradient-residual bound exceeds the budget for "
            f"(epsilon={self.epsilon:g}, delta={self.delta:g}); retrain (fit) before releasing."
        )
        statement = (
            f"{head} Gradient-residual bound {self.residual_bound_:.3g} of budget "
            f"{self.residual_budget_:.3g} ({100 * used:.1f}% used); {n_newton} Newton removal(s), "
            f"{self.n_retrains_} retrain(s). It does NOT bound what the input features reveal (a feature "
            "extractor trained on the removed rows still carries them), does not hide that a removal "
            "happened or how many rows were removed, gives nothing if the noise b or its seed leaks, "
            "and does not suppress outputs the model can still produce from the remaining data."
        )
        return CertifiedRemovalGuarantee(
            epsilon=float(self.epsilon),
            delta=float(self.delta),
            sigma=float(self.sigma),
            residual_bound=self.residual_bound_,
            residual_budget=self.residual_budget_,
            holds=bool(holds),
            n_forgotten=self.n_forgotten_,
            n_newton_removals=n_newton,
            n_retrains=self.n_retrains_,
            statement=statement,
            assumptions=(
                "every training row has L2 norm <= 1 (rows are clipped per row if row_norm='clip')",
                "logistic loss, gamma = 1/4, lam > 0, no intercept",
                "training reaches the minimiser; the measured training residual is charged to the budget",
                "the noise b and the random seed stay secret; publish coef_ only, not the estimator object",
            ),
        )
