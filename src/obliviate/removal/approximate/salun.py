"""``salun``: random-label unlearning restricted to the weights salient for the forget loss.

Fan et al. 2024, "SalUn: Empowering Machine Unlearning via Gradient-based Weight
Saliency in Both Image Classification and Generation" (ICLR). The saliency map is
``m = 1[|grad_theta L(theta_o; D_f)| >= gamma]`` with ``gamma`` chosen so that the top
``saliency`` fraction (default 50%) of all weights, ranked together across the whole
network, is selected. Unlearning is then random labelling (Amnesiac, Graves et al.
2021) with retain data, updating only the selected weights: every other weight is
held at its original value.

As in the official CIFAR-10 code, each epoch is a pass over the forget set with
labels drawn uniformly at random for every batch, followed by a pass over the retain
set with true labels; unselected weights are restored after every optimiser step.
The gradient for the map is summed over the forget set at the original weights (the
paper's definition). Defaults are the authors' command: 10 epochs, SGD lr 0.1 with
momentum 0.9 and weight decay 5e-4, a 50% map.

Why it damages or collapses small networks at these defaults (issue 17; BENCHMARKS.md, "Why some
methods do nothing"): the authors' lr 0.1 with momentum is the SGD rate their ResNet-18 was
trained with; the built-in classifiers are trained with Adam at lr 1e-3, and SGD at 0.1 on half
of their weights, with random labels on the forget set, takes them far from the original in the
first epoch; 10 retain passes then retrain the masked half rather than repair it. On the
issue-3 CNN retain accuracy fell to 0.11 (collapsed), on the Fashion-MNIST MLP to 0.70.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import nn

from obliviate.progress import Progress
from obliviate.removal.approximate._common import FrozenEntries, check_fraction
from obliviate.removal.base import (MethodConfig, RemovalMethod, StepBudget, UnlearningTask, optimizer_for,
                                    register)
from obliviate.removal.objective import Objective
from obliviate.training.trainer import seeded_generator


@dataclass
class SalUnConfig(MethodConfig):
    # Oracle-free selection (``bench --tune``; obliviate.tasks.tuning): candidates chosen a priori around the
    # defaults, gentlest first; early stopping on the user-computable targets picks the stopping point.
    tuning_space: ClassVar[dict[str, dict[str, list[Any]]]] = {"classification": {"lr": [0.003, 0.01, 0.03], "epochs": [2]}}

    saliency: float = 0.5         # fraction of weights in the map (top by |forget-loss gradient|)
    epochs: int = 10              # each: one forget pass (random labels) then one retain pass
    lr: float = 0.1
    optimizer: str = "sgd"
    momentum: float = 0.9
    weight_decay: float = 5e-4
    batch_size: int = 128
    max_grad_norm: float | None = None

    def __post_init__(self) -> None:
        check_fraction("saliency", self.saliency, "method 'salun'", closed_high=True)


def forget_gradient(model: nn.Module, objective: Objective, forget: Any, batch_size: int,
                    generator: torch.Generator) -> dict[str, torch.Tensor]:
    """Gradient of the summed forget loss at the current weights, by parameter name."""
    params = {n: p for n, p in model.named_parameters() if p.requires_grad}
    total = {n: torch.zeros_like(p) for n, p in params.items()}
    was_training = model.training
    model.eval()  # the official mask script computes it in eval mode
    for batch in objective.batches(forget, batch_size, generator, shuffle=False):
        grads = torch.autograd.grad(objective.loss(model, batch, reduction="none").sum(), list(params.values()),
                                    allow_unused=True)
        for (n, _), g in zip(params.items(), grads):
            if g is not None:
                total[n].add_(g)
    model.train(was_training)
    return total


def saliency_masks(grads: dict[str, torch.Tensor], fraction: float) -> dict[str, torch.Tensor]:
    """True for the top ``fraction`` of all entries by |gradient|, ranked across every tensor."""
    flat = torch.cat([g.abs().flatten() for g in grads.values()])
    n_keep = int(round(fraction * flat.numel()))
    keep = torch.zeros_like(flat, dtype=torch.bool)
    keep[torch.argsort(flat, descending=True, stable=True)[:n_keep]] = True
    out, start = {}, 0
    for n, g in grads.items():
        out[n] = keep[start:start + g.numel()].view_as(g)
        start += g.numel()
    return out


@register
class SalUn(RemovalMethod):
    name = "salun"
    summary = "Random-label unlearning with retain data, updating only the weights salient for the forget loss."
    paper = "Fan et al. 2024, SalUn: Empowering Machine Unlearning via Gradient-based Weight Saliency"
    Config = SalUnConfig

    def _run(self, model: nn.Module, original: nn.Module, task: UnlearningTask, ctl: StepBudget,
             progress: Progress) -> tuple[nn.Module, dict[str, Any]]:
        cfg = self.config
        obj = task.objective
        masks = saliency_masks(forget_gradient(model, obj, task.forget, cfg.batch_size,
                                               seeded_generator(task.seed, 0x5A0)), cfg.saliency)
        frozen = FrozenEntries(model, masks)
        opt = optimizer_for(model, cfg)
        gen_f, gen_r, gen_lbl = (seeded_generator(task.seed, t) for t in (0x5A1, 0x5A2, 0x5A3))
        per_epoch = sum(math.ceil(obj.size(d) / cfg.batch_size) for d in (task.forget, task.retain))
        model.train()
        with progress.task("salun", total=cfg.epochs * per_epoch) as bar:
            for _ in range(cfg.epochs):
                for relabel, data, gen in ((True, task.forget, gen_f), (False, task.retain, gen_r)):
                    for batch in obj.batches(data, cfg.batch_size, gen):
                        if not ctl.ok():
                            return model, self._extra(masks)
                        if relabel:
                            batch = obj.relabel_random(batch, gen_lbl, exclude_true=False)
                        opt.zero_grad(set_to_none=True)
                        obj.loss(model, batch).backward()
                        frozen.mask_grads()
                        if cfg.max_grad_norm is not None:
                            torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.max_grad_norm)
                        opt.step()
                        frozen.restore()
                        ctl.step()
                        bar.advance(1)
        return model, self._extra(masks)

    @staticmethod
    def _extra(masks: dict[str, torch.Tensor]) -> dict[str, Any]:
        n = sum(m.numel() for m in masks.values())
        return {"saliency_fraction": sum(int(m.sum()) for m in masks.values()) / max(1, n)}
