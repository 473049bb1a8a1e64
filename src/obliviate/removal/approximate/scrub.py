"""``scrub``: SCRUB teacher-student unlearning with alternating max and min steps.

Kurmanji, Triantafillou, Hayes & Triantafillou 2023, "Towards Unbounded Machine
Unlearning" (NeurIPS). The student starts as a copy of the original model (the
frozen teacher) and optimises

    min_s  alpha * KL_T(teacher || s; D_r) + gamma * CE(s; D_r)  -  KL_T(teacher || s; D_f)

by alternating epochs: a *max* pass over the forget set (ascend the KL to the
teacher) followed by a *min* pass over the retain set (KL + cross-entropy); max
passes run only in the first ``max_epochs`` epochs, the remaining epochs are min
passes only. ``KL_T`` is the distillation KL at temperature ``T`` scaled by ``T^2``.

Defaults are the official code's large-scale CIFAR-10 setting: 3 epochs, 2 of them
with max steps, SGD lr 5e-4 with momentum 0.9 and weight decay 5e-4, alpha 0.001,
gamma 0.99, T = 4, forget batches of 512 and retain batches of 128. SCRUB+R (rewinding
to a checkpoint chosen with a validation set) is not included.

Why it changes almost nothing at these defaults on small forget sets (issue 17; BENCHMARKS.md,
"Why some methods do nothing"): the max passes use forget batches of 512, so a forget set of
500 examples gives *one* max step per max epoch (2 in all), against 3 full min passes over the
retain set that pull the student back to the teacher; at SGD lr 5e-4 the two ascent steps move
the forget predictions by less than the min steps restore. The paper's setting has forget sets
of thousands and tunes lr and the number of max epochs per forget set.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from obliviate.errors import ConfigError
from obliviate.progress import Progress
from obliviate.removal.approximate._steps import clip_and_step
from obliviate.removal.base import (MethodConfig, RemovalMethod, StepBudget, UnlearningTask, optimizer_for,
                                    register)
from obliviate.removal.objective import Objective
from obliviate.training.trainer import seeded_generator


@dataclass
class ScrubConfig(MethodConfig):
    # Oracle-free selection (``bench --tune``; obliviate.tasks.tuning): candidates chosen a priori around the
    # defaults, gentlest first; early stopping on the user-computable targets picks the stopping point.
    tuning_space: ClassVar[dict[str, dict[str, list[Any]]]] = {"classification": {"lr": [5e-4, 2e-3], "forget_batch_size": [512, 128], "epochs": [2], "max_epochs": [1]}}

    epochs: int = 3               # total epochs (sgda_epochs)
    max_epochs: int = 2           # the first epochs that include a max pass over the forget set (msteps)
    lr: float = 5e-4
    optimizer: str = "sgd"
    momentum: float = 0.9
    weight_decay: float = 5e-4
    alpha: float = 0.001          # weight of the retain KL in min steps
    gamma: float = 0.99           # weight of the retain cross-entropy in min steps
    temperature: float = 4.0      # distillation temperature T (kd_T)
    batch_size: int = 128         # retain (min-step) batch size
    forget_batch_size: int = 512  # forget (max-step) batch size
    max_grad_norm: float | None = None

    def __post_init__(self) -> None:
        problems = []
        if self.epochs < 1:
            problems.append(f"The 'epochs' parameter of scrub must be an int >= 1; got {self.epochs!r} instead.")
        if self.max_epochs < 0:
            problems.append(f"The 'max_epochs' parameter of scrub must be >= 0; got {self.max_epochs!r} instead.")
        if not self.temperature > 0:
            problems.append(f"The 'temperature' parameter of scrub must be > 0; got {self.temperature!r} instead.")
        if problems:
            raise ConfigError(" ".join(problems))


def distill_kl(objective: Objective, student: nn.Module, teacher: nn.Module, batch: Any,
               temperature: float) -> torch.Tensor:
    """``T^2 * KL(softmax(t/T) || softmax(s/T))``, averaged over examples (the teacher is not differentiated).

    Tempering works from log-probabilities alone (log-softmax is shift invariant),
    so any :class:`Objective` will do.
    """
    with torch.no_grad():
        t = F.log_softmax(objective.log_probs(teacher, batch) / temperature, dim=-1)
    s = F.log_softmax(objective.log_probs(student, batch) / temperature, dim=-1)
    kl = F.kl_div(s.reshape(-1, s.shape[-1]), t.reshape(-1, t.shape[-1]), log_target=True, reduction="batchmean")
    return kl * temperature**2


@register
class Scrub(RemovalMethod):
    name = "scrub"
    summary = "Teacher-student: push away from the original on forget data, stay close (KL + CE) on retain data."
    paper = "Kurmanji et al. 2023, Towards Unbounded Machine Unlearning (SCRUB)"
    Config = ScrubConfig

    def _run(self, model: nn.Module, original: nn.Module, task: UnlearningTask, ctl: StepBudget,
             progress: Progress) -> tuple[nn.Module, dict[str, Any]]:
        cfg = self.config
        obj = task.objective
        teacher = original.eval()
        opt = optimizer_for(model, cfg)
        gen_f, gen_r = seeded_generator(task.seed, 0x5C1), seeded_generator(task.seed, 0x5C2)
        n_f = math.ceil(obj.size(task.forget) / cfg.forget_batch_size)
        n_r = math.ceil(obj.size(task.retain) / cfg.batch_size)
        total = min(cfg.epochs, cfg.max_epochs) * n_f + cfg.epochs * n_r
        max_steps = min_steps = 0
        model.train()
        with progress.task("scrub", total=total) as bar:
            for epoch in range(cfg.epochs):
                passes = ([("max", task.forget, cfg.forget_batch_size, gen_f)] if epoch < cfg.max_epochs else [])
                passes.append(("min", task.retain, cfg.batch_size, gen_r))
                for kind, data, bs, gen in passes:
                    for batch in obj.batches(data, bs, gen):
                        if not ctl.ok():
                            return model, {"max_steps": max_steps, "min_steps": min_steps}
                        if kind == "max":
                            loss = -distill_kl(obj, model, teacher, batch, cfg.temperature)
                            max_steps += 1
                        else:
                            loss = (cfg.alpha * distill_kl(obj, model, teacher, batch, cfg.temperature)
                                    + cfg.gamma * obj.loss(model, batch))
                            min_steps += 1
                        clip_and_step(model, opt, loss, cfg.max_grad_norm)
                        ctl.step()
                        bar.advance(1)
        return model, {"max_steps": max_steps, "min_steps": min_steps}
