"""The NeurIPS 2023 unlearning challenge score (forget quality F and final score).

Triantafillou et al. 2024, "Are we making progress in unlearning? Findings from
the first NeurIPS unlearning competition". Unlearning is scored as
(epsilon, delta)-closeness of the distribution of unlearned models to that of
retrained-from-scratch models, estimated *per forget example* from N unlearned
and N retrained models, with ``delta = 1e-5``.

What this module implements, exactly
------------------------------------
Inputs are logit-scaled confidences ``log p_y - log(1 - p_y)`` of each forget
example under each model (see :func:`obliviate.audit.attacks.lira.logit_scale_from_logits`):
``unlearned`` (N_u, n) and ``retrained`` (N_r, n).

Per example (:func:`example_epsilon`), with U = its N_u unlearned scores and R =
its N_r retrained scores:

1. *Peakiness guard* (as in the competition): let ``range(.) = max - min``. If
   both ranges are 0, epsilon is 0 when the two constants are equal and the cap
   otherwise. If ``min(range) / max(range) < 0.01``, one distribution is a spike
   inside the other, which threshold rules detect poorly from finite samples;
   epsilon is set to the cap.
2. *Decision rules*, each a test "unlearned vs retrained" with its FPR and FNR
   (the positive class is named below; the formula in 3 is symmetric under
   swapping the names, so only the rule matters):

   * ``"single"``: positive = the group with the larger median (ties:
     unlearned); predict positive iff ``score >= t``, for every ``t`` among the
     observed scores. The competition scanned a grid of 100 thresholds per
     score unit; rates only change at observed scores, so exact enumeration
     covers every grid rule (and rates a grid can step over).
   * ``"interval"``: positive = the group with the smaller range ``w`` (the
     peakier one; ties: unlearned); predict positive iff ``l <= score <= r``,
     for every real ``l <= r`` with ``|r - l - w| <= 2`` (score units). This is
     the competition's interval family (it scanned a grid of such intervals,
     100 per unit); we enumerate exactly the distinct sets of scores such
     intervals can select. Cost O(n (N_u + N_r)^2) time and memory per example.

3. *Epsilon of a rule*: ``max(log((1 - delta - FPR) / FNR), log((1 - delta - FNR) / FPR))``
   clipped below at 0 (a non-positive numerator contributes nothing). Zero
   rates, as the competition handled them: FPR = FNR = 0 (perfect separation)
   gives +inf; exactly one of them 0 is *discarded* (read as too few samples to
   estimate a rate, not as infinite evidence).
4. Example epsilon = max over the kept rules (0 if no rule is kept), clipped to
   ``[0, epsilon_cap]`` with ``epsilon_cap = 50``.

Forget quality (:func:`bucket_points`, :func:`forget_quality`): epsilons are put
in buckets of width 0.5, bucket k = 1, 2, ... holding ``[(k-1)/2, k/2)``, and an
example in bucket k earns ``H = 2 / 2^k`` points (1, 1/2, 1/4, ...). Only buckets
that end at or below ``max_epsilon = ceil(ln(N - 1))`` earn points (with
N = min(N_u, N_r); the competition had N_u = N_r): with N models no
finite-sample estimate can credibly exceed about ``ln(N - 1)``, so such examples
earn 0. ``F`` = mean of H over the forget examples, in [0, 1], 1 = best.

Finite samples bias epsilon *upwards*: the max over many rules of ratios of
small counts is large even when nothing differs. Measured here with both groups
drawn from the same N(0, 1) (N = 16, 64 or 256 models each, 200 examples), the
median example epsilon is about 1.6 and F about 0.17; only *identical* score
sets give epsilon 0 and F = 1. So F is far below 1 for an exact unlearner:
compare methods at the same N, next to a retrain-vs-retrain baseline.

Final score (:func:`final_score`): ``F * (RA / RA_retrain) * (TA / TA_retrain)``
with RA/TA the retain/test accuracies of the unlearned model (the competition
averaged them over the unlearned models).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from obliviate.audit.attacks.base import Attack, AttackConfig, AttackInput, Thresholds, register
from obliviate.audit.attacks.roc import _as_float_array
from obliviate.errors import ConfigError, DataError, ShapeError

__all__ = [
    "BUCKET_WIDTH",
    "Challenge",
    "ChallengeConfig",
    "DELTA",
    "EPSILON_CAP",
    "ChallengeResult",
    "bucket_points",
    "default_max_epsilon",
    "example_epsilon",
    "final_score",
    "forget_quality",
    "per_example_epsilons",
]

DELTA = 1e-5
EPSILON_CAP = 50.0
BUCKET_WIDTH = 0.5
PEAKY_RATIO = 0.01
INTERVAL_BUFFER = 2.0
_RULES = ("single", "interval")


# --------------------------------------------------------------------------- rates -> epsilon
def _rule_epsilons(fpr: np.ndarray, fnr: np.ndarray, delta: float) -> np.ndarray:
    """Epsilon of each rule; NaN for discarded rules, +inf for perfect separation."""
    with np.errstate(divide="ignore", invalid="ignore"):
        num_a = 1.0 - delta - fpr
        num_b = 1.0 - delta - fnr
        a = np.where(num_a > 0, np.log(np.where(num_a > 0, num_a, 1.0)) - np.log(fnr), -np.inf)
        b = np.where(num_b > 0, np.log(np.where(num_b > 0, num_b, 1.0)) - np.log(fpr), -np.inf)
    eps = np.maximum(np.maximum(a, b), 0.0)
    zero_fpr, zero_fnr = fpr == 0, fnr == 0
    eps = np.where(zero_fpr & zero_fnr, np.inf, eps)
    return np.where(zero_fpr ^ zero_fnr, np.nan, eps)


def _single_rates(pos: np.ndarray, neg: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    # rule: positive iff score >= t, t over all observed scores
    pos, neg = np.sort(pos), np.sort(neg)
    t = np.unique(np.concatenate([pos, neg]))
    tpr = (pos.size - np.searchsorted(pos, t, side="left")) / pos.size
    fpr = (neg.size - np.searchsorted(neg, t, side="left")) / neg.size
    return fpr, 1.0 - tpr


def _interval_rates(pos: np.ndarray, neg: np.ndarray, width: float) -> tuple[np.ndarray, np.ndarray]:
    # rule: positive iff l <= score <= r, over real l <= r with r - l within
    # INTERVAL_BUFFER of ``width``. Such a rule selects a run v[i..j] of the sorted
    # distinct scores v; the run is reachable iff its tightest interval is not too
    # wide (v[j] - v[i] <= width + b) and its loosest is not too narrow
    # (v[j+1] - v[i-1] > width - b).
    pos, neg = np.sort(pos), np.sort(neg)
    v = np.unique(np.concatenate([pos, neg]))
    ext = np.r_[-np.inf, v, np.inf]
    i, j = np.triu_indices(v.size)
    tight = v[j] - v[i]
    loose = ext[j + 2] - ext[i]
    keep = (tight <= width + INTERVAL_BUFFER) & (loose > width - INTERVAL_BUFFER)
    i, j = i[keep], j[keep]

    def inside(g: np.ndarray) -> np.ndarray:
        return (np.searchsorted(g, v[j], side="right") - np.searchsorted(g, v[i], side="left")) / g.size

    return inside(neg), 1.0 - inside(pos)


def _check_rules(rules: Sequence[str], func: str) -> tuple[str, ...]:
    rules = tuple(rules)
    if not rules or any(r not in _RULES for r in rules):
        raise ConfigError(
            f"The 'rules' parameter of {func} must be a non-empty subset of {_RULES}; got {rules!r} instead."
        )
    return rules


def _check_delta_cap(delta: float, epsilon_cap: float, func: str) -> None:
    problems = []
    if not 0.0 <= delta < 1.0:
        problems.append(f"The 'delta' parameter of {func} must be in [0, 1); got {delta!r} instead.")
    if not epsilon_cap > 0:
        problems.append(f"The 'epsilon_cap' parameter of {func} must be > 0; got {epsilon_cap!r} instead.")
    if problems:
        raise ConfigError(f"Invalid settings for {func}.", problems)


def _example_epsilon(
    u: np.ndarray, r: np.ndarray, delta: float, rules: tuple[str, ...], epsilon_cap: float
) -> float:
    range_u, range_r = np.ptp(u), np.ptp(r)
    big, small = max(range_u, range_r), min(range_u, range_r)
    if big == 0:
        return 0.0 if u[0] == r[0] else epsilon_cap
    if small / big < PEAKY_RATIO:
        return epsilon_cap
    found: list[np.ndarray] = []
    if "single" in rules:
        pos, neg = (r, u) if np.median(r) > np.median(u) else (u, r)
        found.append(_rule_epsilons(*_single_rates(pos, neg), delta))
    if "interval" in rules:
        pos, neg = (r, u) if range_r < range_u else (u, r)
        found.append(_rule_epsilons(*_interval_rates(pos, neg, small), delta))
    eps = np.concatenate(found)
    eps = eps[~np.isnan(eps)]
    if eps.size == 0:
        return 0.0
    return float(min(eps.max(), epsilon_cap))


def example_epsilon(
    unlearned: Any,
    retrained: Any,
    *,
    delta: float = DELTA,
    rules: Sequence[str] = _RULES,
    epsilon_cap: float = EPSILON_CAP,
) -> float:
    """Estimated epsilon of one forget example (see the module docstring, steps 1-4).

    Args:
        unlearned: (N_u,) logit-scaled confidences of the example under unlearned models.
        retrained: (N_r,) the same under retrained models.
    """
    u = _as_float_array(unlearned, "unlearned", "example_epsilon", ndim=1)
    r = _as_float_array(retrained, "retrained", "example_epsilon", ndim=1)
    rules = _check_rules(rules, "example_epsilon")
    _check_delta_cap(delta, epsilon_cap, "example_epsilon")
    if u.size < 1 or r.size < 1:
        raise DataError("example_epsilon needs at least one unlearned and one retrained score.")
    return _example_epsilon(u, r, delta, rules, epsilon_cap)


def per_example_epsilons(
    unlearned: Any,
    retrained: Any,
    *,
    delta: float = DELTA,
    rules: Sequence[str] = _RULES,
    epsilon_cap: float = EPSILON_CAP,
) -> np.ndarray:
    """Epsilon of every forget example: (N_u, n) and (N_r, n) scores -> (n,)."""
    func = "per_example_epsilons"
    u = _as_float_array(unlearned, "unlearned", func, ndim=2)
    r = _as_float_array(retrained, "retrained", func, ndim=2)
    rules = _check_rules(rules, func)
    _check_delta_cap(delta, epsilon_cap, func)
    if u.shape[1] != r.shape[1]:
        raise ShapeError(
            f"{func} needs scores of the same forget examples: unlearned (N_u, n) and retrained "
            f"(N_r, n) with equal n; got {u.shape} and {r.shape}."
        )
    return np.array([_example_epsilon(u[:, i], r[:, i], delta, rules, epsilon_cap) for i in range(u.shape[1])])


# --------------------------------------------------------------------------- buckets -> F
def default_max_epsilon(n_models: int) -> float:
    """``ceil(ln(n_models - 1))``: the largest epsilon bucket edge that earns points."""
    if not (isinstance(n_models, (int, np.integer)) and n_models >= 3):
        raise DataError(
            f"The challenge score needs at least 3 unlearned and 3 retrained models; got {n_models!r}. "
            "With N models only buckets ending at or below ceil(ln(N - 1)) earn points, which is 0 for N = 2. "
            "The competition used 512 of each."
        )
    return float(math.ceil(math.log(n_models - 1)))


def bucket_points(
    epsilons: Any, *, max_epsilon: float, bucket_width: float = BUCKET_WIDTH
) -> np.ndarray:
    """Points H of each epsilon: ``2 / 2^k`` in bucket k (k = 1 for ``[0, w)``, 2 for ``[w, 2w)``...).

    Epsilons at or beyond the last bucket ending at or below ``max_epsilon`` earn 0.
    """
    eps = _as_float_array(np.asarray(epsilons, dtype=np.float64), "epsilons", "bucket_points", ndim=(0, 1))
    problems = []
    if (eps < 0).any():
        problems.append("The 'epsilons' parameter of bucket_points must be >= 0.")
    if not bucket_width > 0:
        problems.append(f"The 'bucket_width' parameter of bucket_points must be > 0; got {bucket_width!r} instead.")
    if not max_epsilon >= 0:
        problems.append(f"The 'max_epsilon' parameter of bucket_points must be >= 0; got {max_epsilon!r} instead.")
    if problems:
        raise ConfigError("Invalid input to bucket_points.", problems)
    n_buckets = int(math.floor(max_epsilon / bucket_width + 1e-9))
    k = np.floor(eps / bucket_width)  # 0-based bucket index
    return np.where(k < n_buckets, 2.0 ** (-np.minimum(k, 1074)), 0.0)


@dataclass(frozen=True, eq=False)
class ChallengeResult:
    """Forget quality F of the NeurIPS 2023 challenge and its per-example parts."""

    forget_quality: float
    epsilons: np.ndarray = field(repr=False)
    points: np.ndarray = field(repr=False)
    max_epsilon: float
    n_unlearned: int
    n_retrained: int
    delta: float
    rules: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "forget_quality": self.forget_quality,
            "epsilons": self.epsilons.tolist(),
            "points": self.points.tolist(),
            "max_epsilon": self.max_epsilon,
            "n_unlearned": self.n_unlearned,
            "n_retrained": self.n_retrained,
            "delta": self.delta,
            "rules": list(self.rules),
        }


def forget_quality(
    unlearned: Any,
    retrained: Any,
    *,
    delta: float = DELTA,
    rules: Sequence[str] = _RULES,
    epsilon_cap: float = EPSILON_CAP,
    max_epsilon: float | None = None,
) -> ChallengeResult:
    """Forget quality F from (N_u, n) unlearned and (N_r, n) retrained scores.

    ``max_epsilon`` defaults to ``ceil(ln(min(N_u, N_r) - 1))``.
    """
    u = _as_float_array(unlearned, "unlearned", "forget_quality", ndim=2)
    r = _as_float_array(retrained, "retrained", "forget_quality", ndim=2)
    cap_edge = default_max_epsilon(min(u.shape[0], r.shape[0])) if max_epsilon is None else float(max_epsilon)
    eps = per_example_epsilons(u, r, delta=delta, rules=rules, epsilon_cap=epsilon_cap)
    pts = bucket_points(eps, max_epsilon=cap_edge)
    return ChallengeResult(
        forget_quality=float(pts.mean()),
        epsilons=eps,
        points=pts,
        max_epsilon=cap_edge,
        n_unlearned=u.shape[0],
        n_retrained=r.shape[0],
        delta=delta,
        rules=tuple(rules),
    )


def final_score(F: float, ra: float, ta: float, ra_retrain: float, ta_retrain: float) -> float:
    """Competition score ``F * (ra / ra_retrain) * (ta / ta_retrain)``.

    Accuracies may be fractions or percentages, as long as each pair uses the same unit.
    """
    values = {"F": F, "ra": ra, "ta": ta, "ra_retrain": ra_retrain, "ta_retrain": ta_retrain}
    problems = [
        f"The {k!r} parameter of final_score must be a finite number >= 0; got {v!r} instead."
        for k, v in values.items()
        if not (isinstance(v, (int, float, np.floating, np.integer)) and math.isfinite(v) and v >= 0)
    ]
    if not problems:
        if F > 1:
            problems.append(f"The 'F' parameter of final_score must be in [0, 1]; got {F!r} instead.")
        for k in ("ra_retrain", "ta_retrain"):
            if values[k] == 0:
                problems.append(f"The {k!r} parameter of final_score must be > 0 (it is a divisor); got 0.")
    if problems:
        raise ConfigError("Invalid inputs to final_score.", problems)
    return float(F) * (float(ra) / float(ra_retrain)) * (float(ta) / float(ta_retrain))


# --------------------------------------------------------------------------- the registered attack
@dataclass(frozen=True)
class ChallengeConfig(AttackConfig):
    """The NeurIPS 2023 unlearning challenge score (Triantafillou et al. 2024)."""

    #: delta of the (epsilon, delta) closeness, as in the competition
    delta: float = DELTA


@register
class Challenge(Attack):
    """Forget quality F from U vs R and the final score ``F x RA/RA_retrain x TA/TA_retrain`` with the
    mean retain/test accuracies of the U and R replicas.

    Two-sided by construction: each example's epsilon is the larger of the two log ratios of a
    rule's error rates, and the rules take either group as the positive class, so a method whose
    scores sit *below* retrain's is as distinguishable as one whose scores sit above."""

    name = "challenge"
    title = "the challenge score"
    paper = ("Triantafillou et al. 2024, Are we making progress in unlearning? Findings from the first "
             "NeurIPS unlearning competition")
    Config = ChallengeConfig
    order = 40

    def run(self, inputs: AttackInput) -> dict[str, Any]:
        if inputs.target is None or inputs.retrained is None:
            raise DataError("The 'challenge' attack needs replica scores; run it with --replicas >= 4.")
        g, ref = inputs.target, inputs.retrained
        fq = forget_quality(g.forget, ref.forget, delta=self.config.delta)
        ra, ta = float(g.retain_acc.mean()), float(g.test_acc.mean())
        ra_ref, ta_ref = float(ref.retain_acc.mean()), float(ref.test_acc.mean())
        eps = fq.epsilons
        return {"F": fq.forget_quality, "final_score": final_score(fq.forget_quality, ra, ta, ra_ref, ta_ref),
                "ra": ra, "ta": ta, "ra_retrain": ra_ref, "ta_retrain": ta_ref,
                "max_epsilon": fq.max_epsilon, "delta": fq.delta,
                "epsilon_median": float(np.median(eps)),
                "epsilons": [round(float(v), 4) for v in eps]}

    def verdict(self, result: dict[str, Any], reference: dict[str, Any] | None, th: Thresholds) -> str | None:
        if reference is None:
            return None
        f, f_ref = result["F"], reference["F"]
        if f < th.challenge_f_ratio * f_ref:
            return f"the challenge score (F {f:.3f} vs retrain's {f_ref:.3f})"
        return None

    @staticmethod
    def threshold_text(th: Thresholds) -> str:
        return (f"the challenge score *catches* it when F < {th.challenge_f_ratio:g} x retrain's F "
                "(F is two-sided: scores shifted either way lower it)")
