"""``retrain``: the exact gold standard, training from scratch on the retain data.

Bourtoule et al. 2021 and every unlearning paper measure against this: a model
trained with the original recipe and seed on the training set minus the forget
set. Its output distribution *is* the target of every other method.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from torch import nn

from obliviate.errors import ConfigError
from obliviate.progress import Progress
from obliviate.removal.base import MethodConfig, RemovalMethod, StepBudget, UnlearningTask, register


@dataclass
class RetrainConfig(MethodConfig):
    """No knobs: the recipe is the original model's, by definition of the gold standard."""


@register
class Retrain(RemovalMethod):
    name = "retrain"
    kind = "exact"
    summary = "Exact: train from scratch on the retain data with the original recipe (the gold standard)."
    paper = "Bourtoule et al. 2021, Machine Unlearning (the retraining baseline)"
    Config = RetrainConfig

    def _run(self, model: nn.Module, original: nn.Module, task: UnlearningTask, ctl: StepBudget,
             progress: Progress) -> tuple[nn.Module, dict[str, Any]]:
        if task.fit_from_scratch is None:
            raise ConfigError(
                "retrain needs task.fit_from_scratch (how to build and train a fresh model). "
                "obliviate.forget() and the bench set it; pass one when building an UnlearningTask by hand."
            )
        fresh, wall_s, info = _call_fit(task)
        # Retraining is one unit of work: count its steps from the recipe.
        ctl.steps = info.get("steps", 0)
        return fresh, {"wall_s_override": wall_s, **{k: v for k, v in info.items() if k != "steps"}}


def _call_fit(task: UnlearningTask) -> tuple[nn.Module, float, dict[str, Any]]:
    out = task.fit_from_scratch(task.retain)  # type: ignore[misc]
    if len(out) == 3:
        return out  # type: ignore[return-value]
    model, wall_s = out
    return model, wall_s, {}
