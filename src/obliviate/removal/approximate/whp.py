"""``whp``: "Who's Harry Potter" - fine-tune toward generic answers from logit subtraction.

Eldan & Russinovich 2023, "Who's Harry Potter? Approximate Unlearning in LLMs".
1. Reinforce: fine-tune a copy of the original further on the forget set, so it
   is even more certain of the forget answers (``reinforce_epochs``).
2. Generic targets: at every answer position (teacher-forced on the true text),
   ``v_generic = v_base - alpha * relu(v_reinforced - v_base)``; the tokens whose
   logits the reinforcement raised are the ones specific to the forget set, so
   subtracting them leaves what a model that never saw it would predict.
   The target is ``argmax v_generic``.
3. Fine-tune the original on the forget questions toward those generic targets
   (inputs stay the true text, as in the paper), optionally with retain batches.

Not implemented: the paper's anchored-term dictionary (replacing idiosyncratic
names with generic ones via GPT-4), which needs an external model; logit
subtraction alone is the part that transfers to any forget set. The paper does
not use a retain term (``retain_weight=0``).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import nn

from obliviate.errors import ConfigError
from obliviate.progress import Progress
from obliviate.removal.approximate._lm import require_lm
from obliviate.removal.approximate._steps import clip_and_step
from obliviate.removal.base import (MethodConfig, RemovalMethod, StepBudget, UnlearningTask, endless,
                                    epoch_loop, optimizer_for, register)
from obliviate.training.recipe import make_optimizer


@dataclass
class WHPConfig(MethodConfig):
    # On language-model tasks with the built-in small GPT-2 (the field defaults below are the paper's, for
    # billion-parameter models): chosen on persons seed 0 only, so seeds 1.. of the benchmark are out of
    # sample; a setting that forgets without losing more than ~10% utility where one was found.
    task_defaults: ClassVar[dict[str, dict[str, Any]]] = {"lm": {"epochs": 8.0, "lr": 5e-4, "batch_size": 32, "alpha": 10.0, "retain_weight": 1.0}}
    # The oracle-free selection's candidates on the small LM (--tune; obliviate.tasks.lm_tuning), each run
    # with early stopping on the targets; the task defaults above stay the untuned setting.
    tuning_space: ClassVar[dict[str, dict[str, list[Any]]]] = {
        "lm": {"alpha": [10.0, 30.0], "epochs": [8.0, 16.0]}}

    reinforce_epochs: float = 3.0  # passes over the forget set to build the reinforced model
    reinforce_lr: float | None = None  # None = lr
    alpha: float = 5.0             # strength of the logit subtraction
    epochs: float = 2.0            # passes over the forget set toward the generic targets
    lr: float = 1e-5               # the paper's rate for 7B models; small models take more
    optimizer: str = "adam"
    batch_size: int = 32
    retain_weight: float = 0.0     # the paper uses none
    max_grad_norm: float | None = 1.0

    def __post_init__(self) -> None:
        if not self.alpha > 0:
            raise ConfigError(f"The 'alpha' parameter of method 'whp' must be > 0; got {self.alpha!r} instead.")


def generic_targets(obj: Any, base: nn.Module, reinforced: nn.Module, batch: dict[str, torch.Tensor],
                    alpha: float) -> torch.Tensor:
    """``argmax(v_base - alpha * relu(v_reinforced - v_base))`` at every answer position."""
    with torch.no_grad():
        v_base = obj.answer_logits(base, batch)
        v_rein = obj.answer_logits(reinforced, batch)
        return (v_base - alpha * torch.relu(v_rein - v_base)).argmax(dim=-1)


@register
class WhoIsHarryPotter(RemovalMethod):
    name = "whp"
    summary = "Fine-tune toward generic answers: base logits minus what a forget-reinforced model boosts."
    paper = "Eldan & Russinovich 2023, Who's Harry Potter? Approximate Unlearning in LLMs"
    Config = WHPConfig
    tasks = ("lm",)

    def _run(self, model: nn.Module, original: nn.Module, task: UnlearningTask, ctl: StepBudget,
             progress: Progress) -> tuple[nn.Module, dict[str, Any]]:
        cfg = self.config
        obj = require_lm(task, self.name)
        original.eval()
        # 1. the reinforced model (its steps count against the budget: they are the method's work)
        reinforced = copy.deepcopy(original).train()
        ropt = make_optimizer(reinforced.parameters(), cfg.optimizer, cfg.reinforce_lr or cfg.lr)
        for batch in epoch_loop(task, task.forget, cfg.reinforce_epochs, cfg.batch_size, ctl, progress,
                                "whp reinforce", seed_tag=0x3A1):
            clip_and_step(reinforced, ropt, obj.loss(reinforced, batch), cfg.max_grad_norm)
        reinforced.eval()
        # 2-3. generic targets per batch, then fine-tune toward them
        opt = optimizer_for(model, cfg)
        retain = endless(task, task.retain, cfg.batch_size, seed_tag=0x3A3) if cfg.retain_weight > 0 else None
        changed, total = 0, 0
        model.train()
        for batch in epoch_loop(task, task.forget, cfg.epochs, cfg.batch_size, ctl, progress, "whp",
                                seed_tag=0x3A2):
            targets = generic_targets(obj, original, reinforced, batch, cfg.alpha)
            true = batch["labels"][:, 1:][batch["labels"][:, 1:] != -100]
            changed += int((targets != true).sum())
            total += int(true.numel())
            loss = obj.loss(model, obj.with_targets(batch, targets))
            if retain is not None:
                loss = loss + cfg.retain_weight * obj.loss(model, next(retain))
            clip_and_step(model, opt, loss, cfg.max_grad_norm)
        return model, {"generic_token_share": changed / max(1, total)}
