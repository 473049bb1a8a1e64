"""LiRA: the likelihood-ratio membership attack (Carlini et al. 2022).

"Membership Inference Attacks From First Principles" (IEEE S&P 2022). For each
example, the attacker trains shadow models with and without it, fits one
Gaussian to the "in" scores and one to the "out" scores of that example, and
scores the target model's output by the likelihood ratio. Per-example fits are
what make the attack strong at low FPR: an example that every model finds easy
is not flagged just because its confidence is high.

Scores are the *logit-scaled confidence* of the true class,
``phi(p) = log p - log(1 - p)``, which makes per-example score distributions
close to Gaussian (Carlini et al., Sec. IV-B). Use :func:`logit_scale_from_logits`
when you have logits: it is exact where ``p`` rounds to 1.

Inputs are arrays only (model I/O lives elsewhere):

* ``target_scores``: (n,) scores of the model under attack, or (k, n) for k
  target models at once;
* ``shadow_scores``: (m, n) scores of m shadow models on the same n examples;
* ``in_mask``: (m, n) booleans, ``in_mask[j, i]`` = shadow j trained on example i.

All attack outputs follow the package convention: higher = more likely member.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.special import log_ndtr, logsumexp

from obliviate.audit.attacks.base import (Attack, AttackConfig, AttackInput, GroupScores, Thresholds, far_from,
                                          register)
from obliviate.audit.attacks.roc import AttackResult, _as_bool_array, _as_float_array, thin_roc
from obliviate.errors import ConfigError, DataError, ShapeError

__all__ = [
    "LiRA",
    "LiRAConfig",
    "fit_gaussians",
    "lira_offline",
    "lira_online",
    "logit_scale",
    "logit_scale_from_logits",
]

#: Default floor on fitted standard deviations: a shadow set whose scores are all
#: equal would otherwise give an infinite likelihood ratio.
MIN_STD = 1e-6


# --------------------------------------------------------------------------- scaling
def logit_scale(p_true: Any, *, eps: float = float(np.finfo(np.float64).eps)) -> np.ndarray:
    """Logit-scaled confidence ``log p - log(1 - p)`` of true-class probabilities.

    ``p`` is clipped to ``[eps, 1 - eps]`` first (default: float64 machine epsilon,
    so outputs lie in about [-36, 36]). Probabilities this close to 0 or 1 have
    lost their information already; prefer :func:`logit_scale_from_logits`.
    """
    p = _as_float_array(p_true, "p_true", "logit_scale", ndim=(0, 1, 2, 3))
    if not 0.0 < eps < 0.5:
        raise ConfigError(f"The 'eps' parameter of logit_scale must be in (0, 0.5); got {eps!r} instead.")
    if (p < 0).any() or (p > 1).any():
        raise DataError(
            "The 'p_true' parameter of logit_scale must hold probabilities in [0, 1]; got values in "
            f"[{p.min():.4g}, {p.max():.4g}]. Pass softmax outputs, or use logit_scale_from_logits."
        )
    p = np.clip(p, eps, 1.0 - eps)
    return np.log(p) - np.log1p(-p)


def logit_scale_from_logits(logits: Any, labels: Any) -> np.ndarray:
    """Logit-scaled confidence from raw logits: ``z_y - logsumexp_{j != y} z_j``.

    This equals ``log p_y - log(1 - p_y)`` for ``p = softmax(z)`` exactly, without
    ever forming ``1 - p_y`` (which rounds to 0 for confident models).

    Args:
        logits: (..., C) logits, C >= 2.
        labels: (...) integer true classes in ``[0, C)``.

    Returns:
        (...) float64 array.
    """
    z = _as_float_array(logits, "logits", "logit_scale_from_logits", ndim=(1, 2, 3))
    y = np.asarray(labels)
    if not np.issubdtype(y.dtype, np.integer):
        raise DataError(
            f"The 'labels' parameter of logit_scale_from_logits must be integers; got dtype {y.dtype}."
        )
    if z.shape[-1] < 2 or y.shape != z.shape[:-1]:
        raise ShapeError(
            "logit_scale_from_logits needs logits of shape (..., C) with C >= 2 and labels of "
            f"shape (...); got logits {z.shape} and labels {y.shape}."
        )
    n_classes = z.shape[-1]
    if y.size and (y.min() < 0 or y.max() >= n_classes):
        raise DataError(
            f"The 'labels' parameter of logit_scale_from_logits must be in [0, {n_classes}); "
            f"got values in [{y.min()}, {y.max()}]."
        )
    true = np.take_along_axis(z, y[..., None], axis=-1)[..., 0]
    others = z.copy()
    np.put_along_axis(others, y[..., None], -np.inf, axis=-1)
    return true - logsumexp(others, axis=-1)


# --------------------------------------------------------------------------- fitting
def _check_shadows(shadow_scores: Any, in_mask: Any, func: str) -> tuple[np.ndarray, np.ndarray]:
    s = _as_float_array(shadow_scores, "shadow_scores", func, ndim=2)
    m = _as_bool_array(in_mask, "in_mask", func)
    if m.shape != s.shape:
        raise ShapeError(
            f"The 'in_mask' parameter of {func} must have the shape of 'shadow_scores' "
            f"(m_models, n_examples) = {s.shape}; got {m.shape} instead."
        )
    return s, m


def _check_target(target_scores: Any, n: int, func: str) -> np.ndarray:
    t = _as_float_array(target_scores, "target_scores", func, ndim=(1, 2))
    if t.shape[-1] != n:
        raise ShapeError(
            f"The 'target_scores' parameter of {func} must have shape (n,) or (k, n) with "
            f"n = {n} examples (the shadow scores' second axis); got {t.shape} instead."
        )
    return t


def fit_gaussians(
    scores: Any,
    mask: Any,
    *,
    fix_variance: bool = False,
    min_std: float = MIN_STD,
    side: str = "selected",
) -> tuple[np.ndarray, np.ndarray]:
    """Per-example Gaussian fit to the entries of ``scores`` selected by ``mask``.

    Args:
        scores: (m, n) scores of m models on n examples.
        mask: (m, n) booleans; column i uses rows ``mask[:, i]``.
        fix_variance: if False, one standard deviation per example (sample std,
            ``ddof=1``, needs >= 2 selected models per example). If True, one
            *global* std shared by all examples, pooled from within-example
            deviations ``sqrt(sum_i sum_j (s_ji - mu_i)^2 / (N - n_used))``; this
            is the paper's choice when shadows are few (it needs only 1 model per
            example, but >= 2 for at least one example). Between-example spread of
            the means does not inflate it.
        min_std: floor on the returned std(s).
        side: word used in error messages ("in", "out", ...).

    Returns:
        ``(mean, std)``, each of shape (n,).
    """
    s, m = _check_shadows(scores, mask, "fit_gaussians")
    if min_std <= 0:
        raise ConfigError(f"The 'min_std' parameter of fit_gaussians must be > 0; got {min_std!r} instead.")
    counts = m.sum(axis=0)
    need = 1 if fix_variance else 2
    short = np.flatnonzero(counts < need)
    if short.size:
        hint = (
            "Train more shadow models (each example should be in about half of them)"
            + ("" if fix_variance else ", or pass fix_variance=True to share one variance")
            + "."
        )
        raise DataError(
            f"{short.size} example(s) have fewer than {need} {side!r} model(s) "
            f"(first indices {short[:10].tolist()}; counts {counts[short[:10]].tolist()}). {hint}"
        )
    w = m.astype(np.float64)
    mean = (w * s).sum(axis=0) / counts
    sq = (w * (s - mean) ** 2).sum(axis=0)
    if fix_variance:
        dof = counts.sum() - counts.size
        if dof <= 0:
            raise DataError(
                f"Cannot estimate a global {side!r} variance: every example has exactly one "
                "selected model. Train at least one more shadow model."
            )
        std = np.full(counts.shape, np.sqrt(sq.sum() / dof))
    else:
        std = np.sqrt(sq / (counts - 1))
    return mean, np.maximum(std, min_std)


def _gauss_logpdf(x: np.ndarray, mean: np.ndarray, std: np.ndarray) -> np.ndarray:
    z = (x - mean) / std
    return -0.5 * z * z - np.log(std) - 0.5 * np.log(2.0 * np.pi)


# --------------------------------------------------------------------------- attacks
def lira_online(
    target_scores: Any,
    shadow_scores: Any,
    in_mask: Any,
    *,
    fix_variance: bool = False,
    min_std: float = MIN_STD,
) -> np.ndarray:
    """Online LiRA: per-example log likelihood ratio ``log N(t; in) - log N(t; out)``.

    Each example needs "in" and "out" shadow models (>= 2 of each, or >= 1 with
    ``fix_variance=True``). Returns an array of the shape of ``target_scores``;
    higher = more likely member; 0 = equally likely.
    """
    s, m = _check_shadows(shadow_scores, in_mask, "lira_online")
    t = _check_target(target_scores, s.shape[1], "lira_online")
    mu_in, sd_in = fit_gaussians(s, m, fix_variance=fix_variance, min_std=min_std, side="in")
    mu_out, sd_out = fit_gaussians(s, ~m, fix_variance=fix_variance, min_std=min_std, side="out")
    return _gauss_logpdf(t, mu_in, sd_in) - _gauss_logpdf(t, mu_out, sd_out)


def lira_offline(
    target_scores: Any,
    shadow_scores: Any,
    in_mask: Any,
    *,
    fix_variance: bool = False,
    min_std: float = MIN_STD,
) -> np.ndarray:
    """Offline LiRA: one-sided test of the target score against the "out" Gaussian.

    Only the shadows that did *not* train on an example are used, so the shadows
    can be trained before the target's data is known. The score is
    ``-log Pr[Z >= t]`` for ``Z ~ N(mu_out, sd_out^2)``: minus the log of the
    one-sided p-value that the target's confidence is this high by chance.
    It is monotone in ``(t - mu_out) / sd_out`` and keeps resolution in the far
    upper tail, where low-FPR decisions are made. Higher = more likely member.
    """
    s, m = _check_shadows(shadow_scores, in_mask, "lira_offline")
    t = _check_target(target_scores, s.shape[1], "lira_offline")
    mu_out, sd_out = fit_gaussians(s, ~m, fix_variance=fix_variance, min_std=min_std, side="out")
    z = (t - mu_out) / sd_out
    return -log_ndtr(-z)  # log survival function of the out Gaussian, negated


# --------------------------------------------------------------------------- the registered attack
@dataclass(frozen=True)
class LiRAConfig(AttackConfig):
    """LiRA as an attacker who does not know the unlearning method (Carlini et al. 2022)."""

    #: below this many fitting models per group, share one variance across examples
    #: (Carlini et al.: per-example variances need many shadow models)
    per_example_variance_from: int = 32


@register
class LiRA(Attack):
    """Per forget example, an "in" Gaussian fitted on ``trained`` models and an "out" one on ``retrained``
    models of one half of the replicas; positives are the held-out half of the method's models U,
    negatives the held-out half of R (then the halves swap). AUC and TPR at 1% / 0.1% FPR over every
    (model, example) pair, online and offline."""

    name = "lira"
    title = "LiRA"
    paper = "Carlini et al. 2022, Membership Inference Attacks From First Principles (IEEE S&P)"
    Config = LiRAConfig
    order = 20

    def run(self, inputs: AttackInput) -> dict[str, Any]:
        target, trained, retrained = _need_groups(inputs, self.name)
        fix_variance = retrained.n_models - retrained.n_models // 2 < self.config.per_example_variance_from
        n = retrained.n_models
        idx = np.arange(n)
        halves = (idx % 2 == 0, idx % 2 == 1)
        found: dict[str, tuple[list[np.ndarray], list[np.ndarray]]] = {"online": ([], []), "offline": ([], [])}
        for fit, held in (halves, halves[::-1]):
            shadows = np.concatenate([trained.forget[fit], retrained.forget[fit]])
            in_mask = np.zeros(shadows.shape, dtype=bool)
            in_mask[: int(fit.sum())] = True
            for name, attack in (("online", lira_online), ("offline", lira_offline)):
                found[name][0].append(attack(target.forget[held], shadows, in_mask, fix_variance=fix_variance).ravel())
                found[name][1].append(attack(retrained.forget[held], shadows, in_mask, fix_variance=fix_variance).ravel())
        out: dict[str, Any] = {"fix_variance": fix_variance}
        for name, (pos, neg) in found.items():
            p, q = np.concatenate(pos), np.concatenate(neg)
            scores, labels = np.r_[p, q], np.r_[np.ones(p.size, bool), np.zeros(q.size, bool)]
            res = AttackResult.from_scores(f"LiRA {name}", scores, labels)
            # the same attack with the sign flipped: an AUC far below 0.5 is as much evidence
            flipped = AttackResult.from_scores(f"LiRA {name} (negated)", -scores, labels)
            fpr, tpr = thin_roc(res.fpr, res.tpr)
            out[name] = {"auc": res.auc, "tpr_at_1pct": res.tpr_at_1pct, "tpr_at_0_1pct": res.tpr_at_0_1pct,
                         "n_members": res.n_members, "n_nonmembers": res.n_nonmembers, "fpr": fpr, "tpr": tpr,
                         "negated": {"tpr_at_1pct": flipped.tpr_at_1pct, "tpr_at_0_1pct": flipped.tpr_at_0_1pct}}
        return out

    def verdict(self, result: dict[str, Any], reference: dict[str, Any] | None, th: Thresholds) -> str | None:
        on = result["online"]
        tpr = max(on["tpr_at_1pct"], on.get("negated", {}).get("tpr_at_1pct", 0.0))
        if far_from(on["auc"], 0.5, th.lira_auc - 0.5) or tpr >= th.lira_tpr_1pct:
            side = ", below chance" if on["auc"] < 0.5 else ""
            return f"LiRA (AUC {on['auc']:.3f}{side}, TPR@1%FPR {tpr:.3f})"
        return None

    @staticmethod
    def threshold_text(th: Thresholds) -> str:
        return (f"LiRA *catches* it when its online AUC is >= {th.lira_auc:g} or <= {1 - th.lira_auc:g} "
                f"(as far from chance either way) or its TPR at 1% FPR, for the scores or their negation, is "
                f">= {th.lira_tpr_1pct:g}")


def _need_groups(inputs: AttackInput, name: str) -> tuple[GroupScores, GroupScores, GroupScores]:
    if inputs.target is None or inputs.trained is None or inputs.retrained is None:
        raise DataError(f"The {name!r} attack needs replica scores (target, trained and retrained groups); "
                        "run it with --replicas >= 4.")
    return inputs.target, inputs.trained, inputs.retrained
