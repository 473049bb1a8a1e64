"""Pure array math of certified removal for logistic regression (Guo et al. 2020, sum form).

The loss-perturbed objective, its gradient and Hessian, training to the exact minimiser, the
Newton removal step with its data-dependent residual bound, and the (epsilon, delta) budget.
The estimator around them lives in :mod:`obliviate.removal.exact.certified`, which re-exports them.
"""

from __future__ import annotations

import logging
import math

import numpy as np
from scipy import linalg, optimize
from scipy.special import expit

logger = logging.getLogger(__name__)

__all__ = [
    "GAMMA_LOGISTIC",
    "logistic_hessian",
    "newton_removal_step",
    "perturbed_logistic_grad",
    "perturbed_logistic_objective",
    "removal_budget",
    "train_perturbed_logistic",
]

#: Lipschitz constant of the logistic loss's second derivative used by the paper.
GAMMA_LOGISTIC = 0.25
_LBFGS_GTOL = 1e-7  # mean-form; Newton polishing takes it from there to ``tol``


# --------------------------------------------------------------------------
# Pure math on arrays (sum form; s in {-1, +1}).
# --------------------------------------------------------------------------


def removal_budget(sigma: float, epsilon: float, delta: float) -> float:
    """Largest gradient residual norm that keeps (epsilon, delta)-certified removal.

    ``sigma * epsilon / c`` with ``c = sqrt(2 log(1.5 / delta))`` (Guo et al. 2020,
    Gaussian version of Theorem 3).
    """
    return sigma * epsilon / math.sqrt(2.0 * math.log(1.5 / delta))


def perturbed_logistic_objective(w: np.ndarray, X: np.ndarray, s: np.ndarray, lam: float, b: np.ndarray) -> float:
    """``sum log(1 + exp(-s x^T w)) + lam n/2 ||w||^2 + b^T w``."""
    z = s * (X @ w)
    return float(np.logaddexp(0.0, -z).sum() + 0.5 * lam * X.shape[0] * (w @ w) + b @ w)


def perturbed_logistic_grad(w: np.ndarray, X: np.ndarray, s: np.ndarray, lam: float, b: np.ndarray) -> np.ndarray:
    """Gradient of :func:`perturbed_logistic_objective`."""
    z = s * (X @ w)
    return X.T @ (-s * expit(-z)) + lam * X.shape[0] * w + b


def logistic_hessian(w: np.ndarray, X: np.ndarray, s: np.ndarray, lam: float) -> np.ndarray:
    """Hessian ``X^T diag(p(1-p)) X + lam n I`` of the sum-form objective (b is linear)."""
    p = expit(X @ w)
    B = X * np.sqrt(p * (1.0 - p))[:, None]
    H = B.T @ B  # numpy uses a symmetric rank-k update (syrk) for A.T @ A: half the flops
    H[np.diag_indices_from(H)] += lam * X.shape[0]
    return H


def train_perturbed_logistic(
    X: np.ndarray,
    s: np.ndarray,
    *,
    lam: float,
    b: np.ndarray,
    tol: float = 1e-8,
    max_iter: int = 1000,
    w0: np.ndarray | None = None,
) -> tuple[np.ndarray, float, int]:
    """Minimise the loss-perturbed objective; returns ``(w, ||grad||, n_iter)``.

    L-BFGS (scipy) on the mean-form objective, which is well scaled, to a
    moderate tolerance, then Newton steps on the sum form until the gradient
    norm is at most ``tol``. The certificate assumes the exact minimiser, and
    Newton converges quadratically near it, where L-BFGS crawls (or stops on a
    failed line search) - so L-BFGS gets close and Newton finishes.
    """
    n, d = X.shape
    w = np.zeros(d) if w0 is None else np.asarray(w0, dtype=np.float64).copy()

    def fun(v: np.ndarray) -> tuple[float, np.ndarray]:
        return (
            perturbed_logistic_objective(v, X, s, lam, b) / n,
            perturbed_logistic_grad(v, X, s, lam, b) / n,
        )

    res = optimize.minimize(
        fun, w, jac=True, method="L-BFGS-B",
        options={"maxiter": max_iter, "gtol": _LBFGS_GTOL, "ftol": 0.0},
    )
    w, n_iter = res.x, int(res.nit)
    g = perturbed_logistic_grad(w, X, s, lam, b)
    for _ in range(50):
        if np.linalg.norm(g) <= tol:
            break
        H = logistic_hessian(w, X, s, lam)
        w = w - linalg.solve(H, g, assume_a="pos")
        g = perturbed_logistic_grad(w, X, s, lam, b)
        n_iter += 1
    gnorm = float(np.linalg.norm(g))
    if gnorm > tol:
        logger.warning("training stopped at gradient norm %.3g > tol %.3g; it is charged to the budget", gnorm, tol)
    return w, gnorm, n_iter


def newton_removal_step(
    w: np.ndarray,
    X_keep: np.ndarray,
    s_keep: np.ndarray,
    X_gone: np.ndarray,
    s_gone: np.ndarray,
    *,
    lam: float,
    spectral_norm: float,
    gamma: float = GAMMA_LOGISTIC,
) -> tuple[np.ndarray, float]:
    """One Newton removal step; returns ``(w_new, residual_bound)``.

    ``Delta = m lam w + sum_gone grad l``, ``w_new = w + H^{-1} Delta`` with H
    the Hessian on the kept rows, and the data-dependent bound
    ``gamma ||X_keep||_2 ||H^{-1} Delta|| ||X_keep H^{-1} Delta||`` on
    ``||grad L(w_new; kept)||`` (Guo et al., Corollary 1). ``spectral_norm`` is
    ``||X_keep||_2``.
    """
    z = s_gone * (X_gone @ w)
    delta = X_gone.shape[0] * lam * w + X_gone.T @ (-s_gone * expit(-z))
    H = logistic_hessian(w, X_keep, s_keep, lam)
    step = linalg.solve(H, delta, assume_a="pos")
    bound = gamma * spectral_norm * float(np.linalg.norm(step)) * float(np.linalg.norm(X_keep @ step))
    return w + step, bound
