"""``simnpo``: reference-free, length-normalised NPO, with a retain term.

Fan et al. 2024, "Simplicity Prevails: Rethinking Negative Preference Optimization
for LLM Unlearning". NPO's reference model is dropped and the forget answer's
log-likelihood is averaged over its tokens, with a reward margin ``gamma``:

    L = -(2 / beta) * E[ log sigmoid(-(beta / |y|) * log pi(y|x) - gamma) ]
        + retain_weight * NLL(retain batch)

Defaults follow the paper's TOFU setting (beta = 2.5, gamma = 0).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch.nn.functional as F
from torch import nn

from obliviate.errors import ConfigError
from obliviate.progress import Progress
from obliviate.removal.approximate._lm import require_lm
from obliviate.removal.approximate._steps import clip_and_step
from obliviate.removal.base import (MethodConfig, RemovalMethod, StepBudget, UnlearningTask, endless,
                                    epoch_loop, optimizer_for, register)


@dataclass
class SimNPOConfig(MethodConfig):
    epochs: float = 5.0          # passes over the forget set
    lr: float = 1e-5             # the paper's rate for 7B models; small models take more
    optimizer: str = "adam"
    batch_size: int = 32
    beta: float = 2.5            # inverse temperature on the per-token log-likelihood
    gamma: float = 0.0           # reward margin
    retain_weight: float = 1.0
    max_grad_norm: float | None = 1.0

    def __post_init__(self) -> None:
        if not self.beta > 0:
            raise ConfigError(f"The 'beta' parameter of method 'simnpo' must be > 0; got {self.beta!r} instead.")


@register
class SimNPO(RemovalMethod):
    name = "simnpo"
    summary = "NPO without a reference model, on length-normalised answer likelihoods, with a retain NLL term."
    paper = "Fan et al. 2024, Simplicity Prevails: Rethinking Negative Preference Optimization for LLM Unlearning"
    Config = SimNPOConfig
    tasks = ("lm",)

    def _run(self, model: nn.Module, original: nn.Module, task: UnlearningTask, ctl: StepBudget,
             progress: Progress) -> tuple[nn.Module, dict[str, Any]]:
        cfg = self.config
        obj = require_lm(task, self.name)
        opt = optimizer_for(model, cfg)
        retain = endless(task, task.retain, cfg.batch_size, seed_tag=0x5E2) if cfg.retain_weight > 0 else None
        model.train()
        for batch in epoch_loop(task, task.forget, cfg.epochs, cfg.batch_size, ctl, progress, "simnpo",
                                seed_tag=0x5E1):
            logp, n = obj.sequence_logprob(model, batch)
            loss = -(2.0 / cfg.beta) * F.logsigmoid(-cfg.beta * logp / n.clamp_min(1) - cfg.gamma).mean()
            if retain is not None:
                loss = loss + cfg.retain_weight * obj.loss(model, next(retain))
            clip_and_step(model, opt, loss, cfg.max_grad_norm)
        return model, {}
