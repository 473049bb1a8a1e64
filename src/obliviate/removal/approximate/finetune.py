"""``finetune``: continue training the original on the retain data only.

Relies on catastrophic forgetting (Golatkar et al. 2020, "Eternal Sunshine of
the Spotless Net" use it as the FT baseline; Jia et al. 2023 likewise). It is
the baseline every approximate method must beat.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from torch import nn

from obliviate.progress import Progress
from obliviate.removal.base import (MethodConfig, RemovalMethod, StepBudget, UnlearningTask, epoch_loop,
                                    optimizer_for, register)
from obliviate.removal.approximate._steps import clip_and_step


@dataclass
class FinetuneConfig(MethodConfig):
    epochs: float = 1.0          # passes over the retain set
    lr: float = 1e-3
    optimizer: str = "adam"
    batch_size: int = 128
    max_grad_norm: float | None = 5.0


@register
class Finetune(RemovalMethod):
    name = "finetune"
    summary = "Continue training on retain data only (catastrophic-forgetting baseline)."
    paper = "Golatkar et al. 2020, Eternal Sunshine of the Spotless Net (FT baseline)"
    Config = FinetuneConfig

    def _run(self, model: nn.Module, original: nn.Module, task: UnlearningTask, ctl: StepBudget,
             progress: Progress) -> tuple[nn.Module, dict[str, Any]]:
        cfg = self.config
        opt = optimizer_for(model, cfg)
        model.train()
        for batch in epoch_loop(task, task.retain, cfg.epochs, cfg.batch_size, ctl, progress,
                                "finetune", seed_tag=0xF7):
            clip_and_step(model, opt, task.objective.loss(model, batch), cfg.max_grad_norm)
        return model, {}
