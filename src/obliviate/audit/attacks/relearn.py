"""Relearning attack: how much forgotten accuracy comes back after a little fine-tuning.

Protocol (the model I/O part lives elsewhere; this module is the pure arithmetic):

1. Split the forget set into a *relearn* part A and a *held-back* part B.
2. Fine-tune the unlearned model for k steps on A only, with a fixed recipe and
   seed. Measure accuracy on B before (``acc_before``) and after (``acc_after``).
3. Do exactly the same to the *control*: the model retrained from scratch
   without the forget set, which never saw A or B (``acc_before_control``,
   ``acc_after_control``).

Fine-tuning on A raises accuracy on B even for the control, because A and B
share structure (class, author, concept): that part is generalisation, not
leftover memory. What the unlearned model regains *beyond* the control is
evidence that information about B was suppressed rather than removed
(cf. "UnUnlearning" / in-context and few-shot relearning results).

Definition implemented by :func:`relearn_recovery`:

* ``gain = acc_after - acc_before`` (unlearned model),
* ``control_gain = acc_after_control - acc_before_control``,
* ``excess_recovery = gain - control_gain``: the headline number; 0 is what
  exact unlearning gives in expectation, > 0 means recovery beyond what a
  never-exposed model achieves from the same k steps,
* ``after_gap = acc_after - acc_after_control``: the final accuracy advantage on
  B after relearning (also 0 for exact unlearning in expectation).

Differences rather than ratios: a ratio to ``control_gain`` blows up when the
control gains nothing, which is the common case for unstructured forget sets.
Run several seeds and compare the spread before reading a small excess.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from obliviate.audit.attacks.base import Attack, AttackConfig, AttackInput, Thresholds, far_from, register
from obliviate.errors import ConfigError, DataError

__all__ = ["Relearn", "RelearnConfig", "RelearnRecovery", "relearn_recovery"]


@dataclass(frozen=True)
class RelearnRecovery:
    """Accuracies are fractions in [0, 1]; see the module docstring for definitions."""

    gain: float
    control_gain: float
    excess_recovery: float
    after_gap: float

    def to_dict(self) -> dict[str, float]:
        return asdict(self)


def relearn_recovery(
    acc_before: float,
    acc_after: float,
    acc_before_control: float,
    acc_after_control: float,
) -> RelearnRecovery:
    """Accuracy recovered on the held-back forget part, relative to the retrained control.

    Args:
        acc_before: unlearned model's accuracy on the held-back part B before relearning.
        acc_after: the same after k fine-tuning steps on the relearn part A.
        acc_before_control: retrained (never-exposed) model's accuracy on B before.
        acc_after_control: the same after the identical k steps on A.

    All four are fractions in [0, 1].
    """
    values = {
        "acc_before": acc_before,
        "acc_after": acc_after,
        "acc_before_control": acc_before_control,
        "acc_after_control": acc_after_control,
    }
    problems = []
    for name, v in values.items():
        ok = isinstance(v, numbers.Real) and not isinstance(v, bool) and math.isfinite(v)
        if not ok or not 0.0 <= float(v) <= 1.0:
            hint = " (divide percentages by 100)" if ok and 1.0 < float(v) <= 100.0 else ""
            problems.append(
                f"The {name!r} parameter of relearn_recovery must be a fraction in [0, 1]; got {v!r} instead{hint}."
            )
    if problems:
        raise ConfigError("Invalid accuracies for relearn_recovery.", problems)
    gain = float(acc_after) - float(acc_before)
    control_gain = float(acc_after_control) - float(acc_before_control)
    return RelearnRecovery(
        gain=gain,
        control_gain=control_gain,
        excess_recovery=gain - control_gain,
        after_gap=float(acc_after) - float(acc_after_control),
    )


# --------------------------------------------------------------------------- the registered attack
@dataclass(frozen=True)
class RelearnConfig(AttackConfig):
    """The relearning attack's fine-tuning (its accuracies are measured by the orchestration)."""

    #: Adam steps on the relearn half A of the forget set
    steps: int = 20
    #: learning rate; None: the run's training learning rate
    lr: float | None = None
    #: models of each group (and of the control) that are fine-tuned
    models: int = 16


def _ci(values: np.ndarray) -> list[float]:
    from obliviate.audit.metrics import mean_ci

    mean, half = mean_ci(np.asarray(values, dtype=float))
    return [mean, half]


@register
class Relearn(Attack):
    """Each of the first ``models`` models of U and, as the never-exposed control, the model of R with the
    same index are fine-tuned for ``steps`` Adam steps on half A of the forget set; accuracy on the
    other half B before and after gives :func:`relearn_recovery`."""

    name = "relearn"
    title = "relearning"
    paper = ("Hu et al. 2024, Jogging the Memory of Unlearned Models Through Targeted Relearning Attacks; "
             "Lynch et al. 2024, Eight Methods to Evaluate Robust Unlearning in LLMs")
    Config = RelearnConfig
    order = 50
    needs = frozenset({"replicas", "relearn"})
    settings_fields = {"steps": "relearn_steps", "lr": "relearn_lr", "models": "relearn_models"}

    def run(self, inputs: AttackInput) -> dict[str, Any]:
        rel = inputs.relearn
        if rel is None:
            raise DataError("The 'relearn' attack needs relearning accuracies; run it with --replicas >= 4.")
        before, after, cb, ca = rel.before, rel.after, rel.control_before, rel.control_after
        summary = relearn_recovery(float(before.mean()), float(after.mean()), float(cb.mean()), float(ca.mean()))
        return {**summary.to_dict(),
                "after_gap_ci": _ci(after - ca),
                "excess_recovery_ci": _ci((after - before) - (ca - cb)),
                "acc_before": float(before.mean()), "acc_after": float(after.mean()),
                "control_before": float(cb.mean()), "control_after": float(ca.mean()),
                "models": int(before.size), "steps": rel.steps, "lr": rel.lr,
                "relearn_examples": rel.relearn_examples, "held_back_examples": rel.held_back_examples}

    def verdict(self, result: dict[str, Any], reference: dict[str, Any] | None, th: Thresholds) -> str | None:
        gap = result["after_gap"]
        if far_from(gap, 0.0, th.relearn_after_gap):
            return f"relearning ({gap:+.3f} accuracy over the control)"
        return None

    @staticmethod
    def threshold_text(th: Thresholds) -> str:
        return (f"relearning *catches* it when, after relearning, its accuracy on the held-back forget half "
                f"is >= {th.relearn_after_gap:g} above or below the retrained control's")
