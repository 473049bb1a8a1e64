"""U-LiRA: per-example likelihood-ratio test of unlearned vs retrained models.

Hayes et al. 2024, "Inexact Unlearning Needs More Careful Evaluations to Avoid
a False Sense of Privacy". Membership attacks against the unlearned model alone
ask the wrong question; the right one is whether an attacker can tell a model
that was *trained on an example and then unlearned* from a model *retrained
without it*. For each forget example:

* "in" scores come from models trained WITH the example and then unlearned by
  the method under test (``unlearned_scores``);
* "out" scores come from models retrained WITHOUT it (``retrained_scores``).

Protocol implemented by :func:`ulira` (per example, the same model split for
all examples):

1. Split the models into a *fitting* part and held-out *target* models, half of
   the targets unlearned and half retrained in expectation (see ``protocol``).
2. On the fitting part, fit one Gaussian to the unlearned scores and one to the
   retrained scores of that example (per-example variance, or one global
   variance pooled over examples with ``fix_variance=True``).
3. For each held-out target model, compute the log likelihood ratio
   ``log N(t; unlearned) - log N(t; retrained)`` and guess "unlearned" when it
   is > 0 (equal priors; a tie counts as half right).
4. Per-example accuracy is the *balanced* accuracy over the held-out targets
   (mean of the hit rate on unlearned targets and on retrained targets), so
   0.5 is chance whatever the counts; the reported number is the mean over
   examples. **0.5 is ideal** (the attacker cannot tell unlearned from
   retrained); 1.0 means every forget example is exposed.

``protocol="split"`` (default): for each of ``n_repeats`` seeded repeats,
shuffle each group and hold out ``floor(N/2)`` models of it as targets; fit on
the rest. Unbiased under the null (identical distributions give 0.5 in
expectation). ``protocol="loo"``: leave one model out at a time (every model
is a target once; no randomness; uses more data for fitting). Under the null
LOO is slightly *pessimistic* (below 0.5: removing a model pulls its own
group's mean away from it), so do not read values below 0.5 as "better than
ideal".
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from obliviate.audit.attacks.base import Attack, AttackConfig, AttackInput, Thresholds, far_from, register
from obliviate.audit.attacks.lira import MIN_STD, _gauss_logpdf, fit_gaussians
from obliviate.audit.attacks.roc import _as_float_array
from obliviate.errors import ConfigError, DataError, ShapeError

__all__ = ["ULiRA", "ULiRAConfig", "ULiRAResult", "ulira", "ulira_llr"]

_PROTOCOLS = ("split", "loo")


@dataclass(frozen=True, eq=False)
class ULiRAResult:
    """Outcome of :func:`ulira`.

    ``per_example_accuracy`` is the balanced accuracy of the per-example test on
    held-out models (0.5 ideal); ``mean_accuracy`` its mean over examples.
    """

    per_example_accuracy: np.ndarray = field(repr=False)
    mean_accuracy: float
    protocol: str
    n_unlearned: int
    n_retrained: int
    n_repeats: int
    seed: int | None
    fix_variance: bool

    def to_dict(self) -> dict[str, Any]:
        return {
            "per_example_accuracy": self.per_example_accuracy.tolist(),
            "mean_accuracy": self.mean_accuracy,
            "protocol": self.protocol,
            "n_unlearned": self.n_unlearned,
            "n_retrained": self.n_retrained,
            "n_repeats": self.n_repeats,
            "seed": self.seed,
            "fix_variance": self.fix_variance,
        }


def _fit(scores: np.ndarray, fix_variance: bool, min_std: float, side: str) -> tuple[np.ndarray, np.ndarray]:
    return fit_gaussians(
        scores, np.ones(scores.shape, dtype=bool), fix_variance=fix_variance, min_std=min_std, side=side
    )


def ulira_llr(
    target_scores: Any,
    unlearned_fit: Any,
    retrained_fit: Any,
    *,
    fix_variance: bool = False,
    min_std: float = MIN_STD,
) -> np.ndarray:
    """Log likelihood ratio "unlearned vs retrained" for target scores.

    Args:
        target_scores: (n,) or (k, n) scores of the model(s) to classify.
        unlearned_fit: (N_u, n) scores of trained-then-unlearned models (fitting set).
        retrained_fit: (N_r, n) scores of retrained-without models (fitting set).

    Returns:
        The shape of ``target_scores``; > 0 means "looks unlearned".
    """
    u = _as_float_array(unlearned_fit, "unlearned_fit", "ulira_llr", ndim=2)
    r = _as_float_array(retrained_fit, "retrained_fit", "ulira_llr", ndim=2)
    t = _as_float_array(target_scores, "target_scores", "ulira_llr", ndim=(1, 2))
    if not (u.shape[1] == r.shape[1] == t.shape[-1]):
        raise ShapeError(
            "ulira_llr needs the same number of examples (last axis) everywhere; got "
            f"target {t.shape}, unlearned_fit {u.shape}, retrained_fit {r.shape}."
        )
    mu_u, sd_u = _fit(u, fix_variance, min_std, "unlearned")
    mu_r, sd_r = _fit(r, fix_variance, min_std, "retrained")
    return _gauss_logpdf(t, mu_u, sd_u) - _gauss_logpdf(t, mu_r, sd_r)


def _hits(llr: np.ndarray, truth_unlearned: bool) -> np.ndarray:
    # 1 for a correct guess, 0.5 for a tie, 0 for a wrong guess
    signed = llr if truth_unlearned else -llr
    return np.where(signed > 0, 1.0, np.where(signed == 0, 0.5, 0.0))


def ulira(
    unlearned_scores: Any,
    retrained_scores: Any,
    *,
    protocol: str = "split",
    seed: int = 0,
    n_repeats: int = 1,
    fix_variance: bool = False,
    min_std: float = MIN_STD,
) -> ULiRAResult:
    """Run U-LiRA with the fitting/evaluation split done here (see module docstring).

    Args:
        unlearned_scores: (N_u, n) logit-scaled confidences of N_u models that were
            trained on all n forget examples and then unlearned by the method.
        retrained_scores: (N_r, n) the same for N_r models retrained without them.
        protocol: "split" (seeded half split, repeated ``n_repeats`` times) or
            "loo" (leave one model out; ``seed``/``n_repeats`` unused).
        seed: seed of the model shuffles for "split".
        n_repeats: number of independent half splits averaged for "split".
        fix_variance: share one variance per group across examples (few models).
        min_std: floor on fitted standard deviations.
    """
    func = "ulira"
    u = _as_float_array(unlearned_scores, "unlearned_scores", func, ndim=2)
    r = _as_float_array(retrained_scores, "retrained_scores", func, ndim=2)
    problems = []
    if protocol not in _PROTOCOLS:
        problems.append(f"The 'protocol' parameter of ulira must be one of {_PROTOCOLS}; got {protocol!r} instead.")
    if not (isinstance(n_repeats, (int, np.integer)) and n_repeats >= 1):
        problems.append(f"The 'n_repeats' parameter of ulira must be an int >= 1; got {n_repeats!r} instead.")
    if not isinstance(seed, (int, np.integer)):
        problems.append(f"The 'seed' parameter of ulira must be an int; got {seed!r} instead.")
    if problems:
        raise ConfigError("Invalid U-LiRA settings.", problems)
    if u.shape[1] != r.shape[1]:
        raise ShapeError(
            "unlearned_scores and retrained_scores must score the same forget examples "
            f"(same second axis); got {u.shape} and {r.shape}."
        )
    # Every model scores every example, so each group needs >= 2 fitting models
    # (for any variance estimate, global or not) plus >= 1 held-out target.
    min_models = 3
    for name, arr in (("unlearned_scores", u), ("retrained_scores", r)):
        if arr.shape[0] < min_models:
            raise DataError(
                f"U-LiRA needs at least {min_models} models in {name!r} (2 to fit a Gaussian, "
                f"1 held out); got {arr.shape[0]}. Train more unlearned/retrained models; "
                "the paper's evaluations use tens to hundreds."
            )

    n_u, n_r = u.shape[0], r.shape[0]
    if protocol == "loo":
        hit_u = np.zeros(u.shape[1])
        for i in range(n_u):
            llr = ulira_llr(u[i], np.delete(u, i, axis=0), r, fix_variance=fix_variance, min_std=min_std)
            hit_u += _hits(llr, True)
        hit_r = np.zeros(r.shape[1])
        for i in range(n_r):
            llr = ulira_llr(r[i], u, np.delete(r, i, axis=0), fix_variance=fix_variance, min_std=min_std)
            hit_r += _hits(llr, False)
        acc = 0.5 * (hit_u / n_u + hit_r / n_r)
        used_seed: int | None = None
        reps = 1
    else:
        rng = np.random.default_rng(int(seed))
        acc = np.zeros(u.shape[1])
        for _ in range(n_repeats):
            pu, pr = rng.permutation(n_u), rng.permutation(n_r)
            tu, fu = pu[: n_u // 2], pu[n_u // 2 :]
            tr, fr = pr[: n_r // 2], pr[n_r // 2 :]
            fit = dict(fix_variance=fix_variance, min_std=min_std)
            llr_u = ulira_llr(u[tu], u[fu], r[fr], **fit)
            llr_r = ulira_llr(r[tr], u[fu], r[fr], **fit)
            acc += 0.5 * (_hits(llr_u, True).mean(axis=0) + _hits(llr_r, False).mean(axis=0))
        acc /= n_repeats
        used_seed = int(seed)
        reps = int(n_repeats)
    return ULiRAResult(
        per_example_accuracy=acc,
        mean_accuracy=float(acc.mean()),
        protocol=protocol,
        n_unlearned=n_u,
        n_retrained=n_r,
        n_repeats=reps,
        seed=used_seed,
        fix_variance=fix_variance,
    )


# --------------------------------------------------------------------------- the registered attack
@dataclass(frozen=True)
class ULiRAConfig(AttackConfig):
    """U-LiRA on the method's models U against retrained models R (Hayes et al. 2024)."""

    #: seeded half splits averaged ("split" protocol)
    repeats: int = 8
    #: below this many fitting models per group, share one variance across examples
    per_example_variance_from: int = 32


@register
class ULiRA(Attack):
    """Per forget example, can a held-out model be told "unlearned" from "retrained"? Mean balanced
    accuracy over examples; 0.5 is ideal."""

    name = "ulira"
    title = "U-LiRA"
    paper = ("Hayes et al. 2024, Inexact Unlearning Needs More Careful Evaluations to Avoid a False Sense "
             "of Privacy")
    Config = ULiRAConfig
    order = 30
    settings_fields = {"repeats": "ulira_repeats"}

    def run(self, inputs: AttackInput) -> dict[str, Any]:
        if inputs.target is None or inputs.retrained is None:
            raise DataError("The 'ulira' attack needs replica scores; run it with --replicas >= 4.")
        u, r = inputs.target, inputs.retrained
        fix_variance = r.n_models - r.n_models // 2 < self.config.per_example_variance_from
        res = ulira(u.forget, r.forget, protocol="split", seed=inputs.seed, n_repeats=self.config.repeats,
                    fix_variance=fix_variance)
        acc = res.per_example_accuracy
        return {"mean_accuracy": res.mean_accuracy,
                "share_at_least_0_75": float((acc >= 0.75).mean()),
                "quantiles": {q: float(np.quantile(acc, float(q))) for q in ("0.1", "0.5", "0.9")},
                "per_example_accuracy": [round(float(v), 4) for v in acc],
                "n_unlearned": res.n_unlearned, "n_retrained": res.n_retrained,
                "n_repeats": res.n_repeats, "fix_variance": res.fix_variance}

    def verdict(self, result: dict[str, Any], reference: dict[str, Any] | None, th: Thresholds) -> str | None:
        acc = result["mean_accuracy"]
        if far_from(acc, 0.5, th.ulira_accuracy - 0.5):
            return f"U-LiRA (accuracy {acc:.3f}" + (", below chance)" if acc < 0.5 else ")")
        return None

    @staticmethod
    def threshold_text(th: Thresholds) -> str:
        return (f"U-LiRA *catches* it when the mean per-example accuracy is >= {th.ulira_accuracy:g} or "
                f"<= {1 - th.ulira_accuracy:g} (0.5 is ideal)")
