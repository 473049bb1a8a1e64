"""``idk``: fine-tune the forget questions toward refusal answers ("I don't know"), with a retain term.

The IdkFT baseline of TOFU (Maini et al. 2024, "TOFU: A Task of Fictitious
Unlearning"; named IdkFT by later work): every forget question is given a
refusal drawn from a fixed list and the model is trained on those answers,
while a retain batch keeps its own answers (``retain_weight``). This is
suppression by design: the model learns to refuse, and the facts may well stay
in the weights (the relearning and in-context attacks check exactly that).

Refusals come from :func:`obliviate.data.tofu.load_refusals`: ``"builtin"`` (the
default, always available), ``"file"`` (TOFU's ``idontknow.jsonl``) or ``"auto"``.
Each forget example gets one refusal, drawn with the run seed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import torch
from torch import nn

from obliviate.data.tofu import load_refusals
from obliviate.progress import Progress
from obliviate.removal.approximate._lm import require_lm
from obliviate.removal.approximate._steps import clip_and_step
from obliviate.removal.base import (MethodConfig, RemovalMethod, StepBudget, UnlearningTask, endless,
                                    epoch_loop, optimizer_for, register)
from obliviate.training.trainer import seeded_generator


@dataclass
class IdkConfig(MethodConfig):
    # On language-model tasks with the built-in small GPT-2 (the field defaults below are the paper's, for
    # billion-parameter models): chosen on persons seed 0 only, so seeds 1.. of the benchmark are out of
    # sample; a setting that forgets without losing more than ~10% utility where one was found.
    task_defaults: ClassVar[dict[str, dict[str, Any]]] = {"lm": {"epochs": 6.0, "lr": 5e-4, "batch_size": 32}, "lm-pretrained": {"epochs": 5.0, "lr": 5e-5, "batch_size": 8, "retain_weight": 1.0}}
    # The oracle-free selection's candidates on the small LM (--tune; obliviate.tasks.lm_tuning), each run
    # with early stopping on the targets; the task defaults above stay the untuned setting.
    tuning_space: ClassVar[dict[str, dict[str, list[Any]]]] = {
        "lm": {"lr": [5e-4, 1e-3], "epochs": [6.0, 12.0]}}

    epochs: float = 5.0          # passes over the forget set
    lr: float = 1e-5             # TOFU's rate for 7B models; small models take more
    optimizer: str = "adam"
    batch_size: int = 32
    retain_weight: float = 1.0
    refusals: Literal["builtin", "file", "auto"] = "builtin"
    max_grad_norm: float | None = 1.0


@register
class IdkFT(RemovalMethod):
    name = "idk"
    # it trains refusals ("I don't know") on the forget questions: it steers outputs, the facts stay in the weights
    kind = "suppression"
    summary = "Fine-tune forget questions toward refusal answers ('I don't know'), with retain batches."
    paper = "Maini et al. 2024, TOFU: A Task of Fictitious Unlearning (IDK baseline)"
    Config = IdkConfig
    tasks = ("lm",)

    def _run(self, model: nn.Module, original: nn.Module, task: UnlearningTask, ctl: StepBudget,
             progress: Progress) -> tuple[nn.Module, dict[str, Any]]:
        cfg = self.config
        obj = require_lm(task, self.name)
        refusals = load_refusals(source=cfg.refusals)
        gen = seeded_generator(task.seed, 0x1D0)
        picks = torch.randint(0, len(refusals), (len(task.forget),), generator=gen).tolist()
        targets = obj.with_answers(task.forget, [refusals[k] for k in picks], name="forget/refusals")
        opt = optimizer_for(model, cfg)
        retain = endless(task, task.retain, cfg.batch_size, seed_tag=0x1D2) if cfg.retain_weight > 0 else None
        model.train()
        for batch in epoch_loop(task, targets, cfg.epochs, cfg.batch_size, ctl, progress, "idk", seed_tag=0x1D1):
            loss = obj.loss(model, batch)
            if retain is not None:
                loss = loss + cfg.retain_weight * obj.loss(model, next(retain))
            clip_and_step(model, opt, loss, cfg.max_grad_norm)
        return model, {"n_refusals": len(refusals)}
