"""``random_label``: train the forget examples toward random wrong labels.

Graves et al. 2021, "Amnesiac Machine Learning"; the SalUn paper's RL
baseline (Fan et al. 2024) also trains on retain data in the same steps,
which is the default here (``retain_weight=1``; set 0 for pure Amnesiac).

Defaults were chosen on a documented sweep (Fashion-MNIST MLP, random 10%, seed 0;
see BENCHMARKS.md); a cosine schedule lets retain accuracy recover by the end.

Why it changes almost nothing at these defaults (issue 17; BENCHMARKS.md, "Why some methods do
nothing"): one pass over a small forget set is a handful of Adam steps (4 for 500 examples at
batch 128) at lr 1e-5, a few 1e-5 per weight. Larger learning rates teach the random labels to
the whole input region around the forget examples, which on random forgetting is the test
distribution too (the sweep's lr 1e-4 took test accuracy from 0.90 to 0.71).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Literal

from torch import nn

from obliviate.progress import Progress
from obliviate.removal.approximate._steps import clip_and_step
from obliviate.removal.base import (MethodConfig, RemovalMethod, StepBudget, UnlearningTask, endless,
                                    epoch_loop, optimizer_for, planned_steps, register, scheduler_for)
from obliviate.training.trainer import seeded_generator


@dataclass
class RandomLabelConfig(MethodConfig):
    # Oracle-free selection (``bench --tune``; obliviate.tasks.tuning): candidates chosen a priori around the
    # defaults, gentlest first; early stopping on the user-computable targets picks the stopping point.
    tuning_space: ClassVar[dict[str, dict[str, list[Any]]]] = {"classification": {"lr": [3e-5, 1e-4, 3e-4], "epochs": [2.0]}}

    epochs: float = 1.0          # passes over the forget set
    lr: float = 1e-5
    optimizer: str = "adam"
    batch_size: int = 128
    retain_weight: float = 1.0   # weight of a retain batch's loss in each step (0 = Amnesiac only)
    max_grad_norm: float | None = 5.0
    schedule: Literal["constant", "cosine"] = "cosine"  # learning-rate schedule over the run: constant or cosine (decays to 0)


@register
class RandomLabel(RemovalMethod):
    name = "random_label"
    summary = "Fine-tune forget examples toward random wrong labels, with retain batches."
    paper = "Graves et al. 2021, Amnesiac Machine Learning"
    Config = RandomLabelConfig

    def _run(self, model: nn.Module, original: nn.Module, task: UnlearningTask, ctl: StepBudget,
             progress: Progress) -> tuple[nn.Module, dict[str, Any]]:
        cfg = self.config
        opt = optimizer_for(model, cfg)
        sched = scheduler_for(opt, cfg, planned_steps(task, task.forget, cfg.epochs, cfg.batch_size))
        gen = seeded_generator(task.seed, 0x71)
        retain = endless(task, task.retain, cfg.batch_size, seed_tag=0x72) if cfg.retain_weight > 0 else None
        model.train()
        for batch in epoch_loop(task, task.forget, cfg.epochs, cfg.batch_size, ctl, progress,
                                "random_label", seed_tag=0x70):
            loss = task.objective.loss(model, task.objective.relabel_random(batch, gen))
            if retain is not None:
                loss = loss + cfg.retain_weight * task.objective.loss(model, next(retain))
            clip_and_step(model, opt, loss, cfg.max_grad_norm, sched)
        return model, {}
