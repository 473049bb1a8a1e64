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
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from obliviate.errors import ConfigError
from obliviate.progress import Progress
from obliviate.removal.approximate._lm import require_lm
from obliviate.removal.approximate._steps import forget_loop
from obliviate.removal.base import MethodConfig, RemovalMethod, StepBudget, UnlearningTask, register


@dataclass
class SimNPOConfig(MethodConfig):
    # On language-model tasks with the built-in small GPT-2 (the field defaults below are the paper's, for
    # billion-parameter models): chosen on persons seed 0 only, so seeds 1.. of the benchmark are out of
    # sample; a setting that forgets without losing more than ~10% utility where one was found.
    task_defaults: ClassVar[dict[str, dict[str, Any]]] = {"lm": {"epochs": 12.0, "lr": 5e-4, "batch_size": 32}, "lm-pretrained": {"epochs": 5.0, "lr": 5e-5, "batch_size": 8, "beta": 2.5, "gamma": 0.0, "retain_weight": 1.0}}
    # The oracle-free selection's candidates on the small LM (--tune; obliviate.tasks.lm_tuning), each run
    # with early stopping on the targets; the task defaults above stay the untuned setting.
    tuning_space: ClassVar[dict[str, dict[str, list[Any]]]] = {
        "lm": {"lr": [5e-4, 1e-3], "epochs": [12.0, 24.0]}}

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

        def simnpo_term(model: nn.Module, batch: Any) -> torch.Tensor:
            logp, n = obj.sequence_logprob(model, batch)
            return -(2.0 / cfg.beta) * F.logsigmoid(-cfg.beta * logp / n.clamp_min(1) - cfg.gamma).mean()

        anchor = (lambda m, b: cfg.retain_weight * obj.loss(m, b)) if cfg.retain_weight > 0 else None
        return forget_loop(model, task, cfg, ctl, progress, "simnpo", forget_term=simnpo_term, anchor=anchor,
                           seed_tags=(0x5E1, 0x5E2)), {}
