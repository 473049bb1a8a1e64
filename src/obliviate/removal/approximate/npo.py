"""``npo``: Negative Preference Optimization on the forget answers, with a retain term.

Zhang et al. 2024, "Negative Preference Optimization: From Catastrophic Collapse to
Effective Unlearning". DPO with only a rejected answer: each forget answer ``y`` is
pushed below the original (reference) model's likelihood through

    L_NPO = -(2 / beta) * E[ log sigmoid(-beta * (log pi(y|x) - log pi_ref(y|x))) ]

which behaves like gradient ascent while ``pi`` is close to ``pi_ref`` and fades
out once the answer is unlikely, so it does not collapse the way GA does. As in
the paper's NPO+RT (and TOFU's NPO baseline), the answer-token NLL of a retain
batch is added with ``retain_weight`` (0 gives plain NPO). ``log pi`` is the sum
over answer tokens, as in the official code.
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
class NPOConfig(MethodConfig):
    # On language-model tasks with the built-in small GPT-2 (the field defaults below are the paper's, for
    # billion-parameter models): chosen on persons seed 0 only, so seeds 1.. of the benchmark are out of
    # sample; a setting that forgets without losing more than ~10% utility where one was found.
    task_defaults: ClassVar[dict[str, dict[str, Any]]] = {"lm": {"epochs": 10.0, "lr": 2e-4, "batch_size": 32, "retain_weight": 1.5}, "lm-pretrained": {"epochs": 5.0, "lr": 5e-5, "batch_size": 8, "beta": 0.1, "retain_weight": 1.0}}
    # The oracle-free selection's candidates on the small LM (--tune; obliviate.tasks.lm_tuning), each run
    # with early stopping on the targets; the task defaults above stay the untuned setting.
    tuning_space: ClassVar[dict[str, dict[str, list[Any]]]] = {
        "lm": {"lr": [2e-4, 5e-4], "retain_weight": [1.5, 3.0]}}

    epochs: float = 5.0          # passes over the forget set
    lr: float = 1e-5             # the paper's rate for 7B models; small models take more
    optimizer: str = "adam"
    batch_size: int = 32
    beta: float = 0.1            # inverse temperature (the paper's 0.1)
    retain_weight: float = 1.0   # NPO+RT; 0 = NPO alone
    max_grad_norm: float | None = 1.0

    def __post_init__(self) -> None:
        if not self.beta > 0:
            raise ConfigError(f"The 'beta' parameter of method 'npo' must be > 0; got {self.beta!r} instead.")


@register
class NPO(RemovalMethod):
    name = "npo"
    summary = "Push forget answers below the original model's likelihood (negative-only DPO), with a retain NLL term."
    paper = "Zhang et al. 2024, Negative Preference Optimization: From Catastrophic Collapse to Effective Unlearning"
    Config = NPOConfig
    tasks = ("lm",)

    def _run(self, model: nn.Module, original: nn.Module, task: UnlearningTask, ctl: StepBudget,
             progress: Progress) -> tuple[nn.Module, dict[str, Any]]:
        cfg = self.config
        obj = require_lm(task, self.name)
        original.eval()

        def npo_term(model: nn.Module, batch: Any) -> torch.Tensor:
            with torch.no_grad():
                ref, _ = obj.sequence_logprob(original, batch)
            cur, _ = obj.sequence_logprob(model, batch)
            return -(2.0 / cfg.beta) * F.logsigmoid(-cfg.beta * (cur - ref)).mean()

        anchor = (lambda m, b: cfg.retain_weight * obj.loss(m, b)) if cfg.retain_weight > 0 else None
        return forget_loop(model, task, cfg, ctl, progress, "npo", forget_term=npo_term, anchor=anchor,
                           seed_tags=(0x4E1, 0x4E2)), {}
