"""ROC utilities for membership-style attacks: curves, AUC, TPR at low FPR, plots.

Convention used everywhere in :mod:`obliviate.audit.attacks`: **a higher score
means "more likely a member"** (or, for unlearning audits, "more likely the
positive class", e.g. "unlearned rather than retrained"). ``labels`` are 1/True
for members and 0/False for non-members. An attack whose natural output is
"lower = member" (a loss, a p-value) must be negated before it gets here.

Following Carlini et al. (2022, "Membership Inference Attacks From First
Principles") reports give the AUC *and* the TPR at 1% and 0.1% FPR, with the
ROC curve on log-log axes: an attack that is confident on a few examples is a
privacy failure even when its AUC is near 0.5.

Everything here is a pure function of numpy arrays. This is the one ROC/AUC implementation of
the package: :mod:`obliviate.audit.mia` and :mod:`obliviate.audit.lm_mia` call it.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy.stats import rankdata

from obliviate.errors import ConfigError, DataError, ShapeError

logger = logging.getLogger(__name__)

__all__ = ["AttackResult", "auc", "plot_roc", "roc_curve", "thin_roc", "tpr_at_fpr"]


# --------------------------------------------------------------------------- validation
def _as_float_array(x: Any, name: str, func: str, *, ndim: int | tuple[int, ...]) -> np.ndarray:
    """Return ``x`` as a finite float64 array with the given number of dimensions."""
    try:
        arr = np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise DataError(
            f"The {name!r} parameter of {func} must be a numeric array; got {type(x).__name__} "
            f"that numpy cannot convert to float ({exc})."
        ) from None
    ndims = (ndim,) if isinstance(ndim, int) else ndim
    if arr.ndim not in ndims:
        want = " or ".join(f"{d}-D" for d in ndims)
        raise ShapeError(
            f"The {name!r} parameter of {func} must be a {want} array; "
            f"got shape {arr.shape} instead."
        )
    bad = ~np.isfinite(arr)
    if bad.any():
        where = np.argwhere(bad)[:5].tolist()
        raise DataError(
            f"The {name!r} parameter of {func} must be finite; got {int(bad.sum())} "
            f"NaN/inf value(s) (first at index {where}). Clip or drop them before the attack "
            "(for confidences, compute log-odds from logits with logit_scale_from_logits)."
        )
    return arr


def _as_bool_array(x: Any, name: str, func: str) -> np.ndarray:
    """Return ``x`` as a boolean array; accept bool or integer 0/1 values only."""
    arr = np.asarray(x)
    if arr.dtype == bool:
        return arr
    if not (np.issubdtype(arr.dtype, np.integer) or np.issubdtype(arr.dtype, np.floating)):
        raise DataError(
            f"The {name!r} parameter of {func} must be boolean (or 0/1); got dtype {arr.dtype}."
        )
    if not np.isin(arr, (0, 1)).all():
        raise DataError(
            f"The {name!r} parameter of {func} must be boolean (or 0/1); got values "
            f"{np.unique(arr)[:6].tolist()}. Pass True/1 for members and False/0 for non-members."
        )
    return arr.astype(bool)


def _check_scores_labels(scores: Any, labels: Any, func: str) -> tuple[np.ndarray, np.ndarray]:
    s = _as_float_array(scores, "scores", func, ndim=1)
    y = _as_bool_array(labels, "labels", func)
    if y.shape != s.shape:
        raise ShapeError(
            f"The 'scores' and 'labels' parameters of {func} must have the same shape; "
            f"got {s.shape} and {y.shape}."
        )
    n_pos = int(y.sum())
    if n_pos == 0 or n_pos == y.size:
        raise DataError(
            f"{func} needs both members and non-members; got {n_pos} member(s) out of "
            f"{y.size}. Evaluate on a set that contains both (e.g. forget set and test set)."
        )
    return s, y


# --------------------------------------------------------------------------- curves
def roc_curve(scores: Any, labels: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Empirical ROC curve of the rule "member iff score >= threshold".

    Args:
        scores: (n,) attack scores, higher = more likely member.
        labels: (n,) booleans (or 0/1), True = member.

    Returns:
        ``(fpr, tpr, thresholds)``, each of length (number of distinct scores + 1).
        Point ``i`` is the rule "member iff score >= thresholds[i]"; the first point
        is ``threshold = +inf`` (FPR = TPR = 0), the last predicts everyone a member
        (FPR = TPR = 1). Tied scores are one threshold, so ties never give a better
        rate than a randomised rule could.
    """
    s, y = _check_scores_labels(scores, labels, "roc_curve")
    order = np.argsort(-s, kind="mergesort")
    s_sorted, y_sorted = s[order], y[order]
    # last index of each run of tied scores
    last = np.r_[np.flatnonzero(np.diff(s_sorted)), s_sorted.size - 1]
    tps = np.cumsum(y_sorted)[last]
    fps = last + 1 - tps
    n_pos, n_neg = int(y.sum()), int(y.size - y.sum())
    fpr = np.r_[0.0, fps / n_neg]
    tpr = np.r_[0.0, tps / n_pos]
    thresholds = np.r_[np.inf, s_sorted[last]]
    return fpr, tpr, thresholds


def auc(scores: Any, labels: Any) -> float:
    """Area under the ROC curve, Pr[score(member) > score(non-member)] (+ half the ties).

    Computed from ranks (Mann-Whitney U), which equals the trapezoidal area under
    :func:`roc_curve`. 0.5 = chance, 1.0 = perfect separation.
    """
    s, y = _check_scores_labels(scores, labels, "auc")
    ranks = rankdata(s)  # average ranks for ties
    n_pos = int(y.sum())
    n_neg = y.size - n_pos
    u = ranks[y].sum() - n_pos * (n_pos + 1) / 2.0
    return float(u / (n_pos * n_neg))


def _tpr_at_fpr_curve(fpr: np.ndarray, tpr: np.ndarray, target: float) -> float:
    # The largest TPR among ROC points whose FPR does not exceed the target; no
    # interpolation, so the number is achievable by an actual threshold.
    return float(tpr[fpr <= target + 1e-12].max())


def _check_fpr(fpr: float, func: str) -> float:
    if not (isinstance(fpr, (int, float, np.floating)) and 0.0 <= float(fpr) <= 1.0):
        raise ConfigError(f"The 'fpr' parameter of {func} must be a float in [0, 1]; got {fpr!r} instead.")
    return float(fpr)


def tpr_at_fpr(scores: Any, labels: Any, fpr: float) -> float:
    """True-positive rate at a false-positive rate of at most ``fpr``.

    Higher score = member. Returns the largest TPR over thresholds whose empirical
    FPR is ``<= fpr`` (no interpolation between ROC points). The FPR resolution is
    ``1 / n_nonmembers``: with fewer than ``1 / fpr`` non-members the only
    admissible threshold has FPR = 0, so the value is "TPR at zero false positives".
    """
    target = _check_fpr(fpr, "tpr_at_fpr")
    f, t, _ = roc_curve(scores, labels)
    return _tpr_at_fpr_curve(f, t, target)


# --------------------------------------------------------------------------- results
@dataclass(frozen=True, eq=False)
class AttackResult:
    """Summary of one attack on one evaluation set (higher score = member).

    ``fpr`` / ``tpr`` are the full empirical ROC curve (see :func:`roc_curve`).
    """

    name: str
    auc: float
    tpr_at_1pct: float
    tpr_at_0_1pct: float
    fpr: np.ndarray = field(repr=False)
    tpr: np.ndarray = field(repr=False)
    n_members: int
    n_nonmembers: int

    @classmethod
    def from_scores(cls, name: str, scores: Any, labels: Any) -> AttackResult:
        """Evaluate attack scores against membership labels."""
        s, y = _check_scores_labels(scores, labels, "AttackResult.from_scores")
        fpr, tpr, _ = roc_curve(s, y)
        n_neg = int(y.size - y.sum())
        if n_neg < 1000:
            logger.info(
                "%s: only %d non-members, so TPR at 0.1%% FPR is TPR at zero false positives.",
                name,
                n_neg,
            )
        return cls(
            name=name,
            auc=auc(s, y),
            tpr_at_1pct=_tpr_at_fpr_curve(fpr, tpr, 0.01),
            tpr_at_0_1pct=_tpr_at_fpr_curve(fpr, tpr, 0.001),
            fpr=fpr,
            tpr=tpr,
            n_members=int(y.sum()),
            n_nonmembers=n_neg,
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable form (curves as lists)."""
        return {
            "name": self.name,
            "auc": self.auc,
            "tpr_at_1pct": self.tpr_at_1pct,
            "tpr_at_0_1pct": self.tpr_at_0_1pct,
            "fpr": self.fpr.tolist(),
            "tpr": self.tpr.tolist(),
            "n_members": self.n_members,
            "n_nonmembers": self.n_nonmembers,
        }


def plot_roc(results: Sequence[AttackResult], *, title: str | None = None) -> Any:
    """Log-log ROC curves of several attacks on one figure.

    Returns a :class:`matplotlib.figure.Figure` attached to an Agg canvas (no
    pyplot state, no window); save it with ``fig.savefig(path)``. Zero rates
    cannot be drawn on log axes, so rates are clipped to half the smallest
    resolvable FPR (``0.5 / max n_nonmembers``).
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    results = list(results)
    if not results or not all(isinstance(r, AttackResult) for r in results):
        raise ConfigError(
            "The 'results' parameter of plot_roc must be a non-empty list of AttackResult; "
            f"got {results!r} instead. Build them with AttackResult.from_scores(name, scores, labels)."
        )
    lo = 0.5 / max(r.n_nonmembers for r in results)
    fig = Figure(figsize=(5.0, 5.0))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    ax.plot([lo, 1.0], [lo, 1.0], linestyle="--", color="grey", linewidth=1, label="chance")
    for r in results:
        ax.plot(
            np.maximum(r.fpr, lo),
            np.maximum(r.tpr, lo),
            linewidth=1.5,
            label=f"{r.name} (AUC={r.auc:.3f}, TPR@0.1%={r.tpr_at_0_1pct:.3f})",
        )
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlim(lo, 1.0)
    ax.set_ylim(lo, 1.0)
    ax.set_xlabel("False positive rate")
    ax.set_ylabel("True positive rate")
    if title:
        ax.set_title(title)
    ax.legend(loc="lower right", fontsize="small")
    ax.grid(True, which="major", alpha=0.3)
    fig.tight_layout()
    return fig


def thin_roc(fpr: np.ndarray, tpr: np.ndarray, points: int = 160) -> tuple[list[float], list[float]]:
    """A few hundred ROC points, dense at low FPR (for JSON and plots); keeps the best TPR per FPR."""
    if fpr.size <= points:
        return fpr.tolist(), tpr.tolist()
    lo = max(float(fpr[fpr > 0].min()) if (fpr > 0).any() else 1e-6, 1e-7)
    grid = np.unique(np.r_[0.0, np.geomspace(lo, 1.0, points), np.linspace(0, 1, 21)])
    idx = np.searchsorted(fpr, grid, side="right") - 1
    idx = np.unique(np.clip(idx, 0, fpr.size - 1))
    return [float(v) for v in fpr[idx]], [float(v) for v in tpr[idx]]
