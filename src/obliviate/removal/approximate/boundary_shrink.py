"""``boundary_shrink``: relabel each forget example to its nearest wrong class, then fine-tune on them.

Chen, Gao, Zhou, Wang & Yang 2023, "Boundary Unlearning: Rapid Forgetting of Deep
Networks via Shifting the Decision Space" (CVPR), Boundary Shrink. A neighbour
search on the *original* model finds, for each forget input, the class just across
its decision boundary: an untargeted L-inf attack from ``x`` (the authors' code: PGD
with bound 0.1, step 8/255, 5 iterations, no random start; ``attack="fgsm"`` is the
single-step variant the SalUn code base uses), whose prediction on the perturbed input
is the "nearest but incorrect" label. The model is then fine-tuned on the *clean*
forget inputs with those labels, shrinking the forgotten class's region into its
neighbours. Defaults follow the paper: 10 epochs over the forget set, SGD lr 1e-5
with momentum 0.9.

The original model is fixed and the attack has no random start, so every forget
example's label is the same in every epoch; they are computed once, up front.
Perturbed inputs are kept inside the observed range of the forget inputs (the
authors clamp images to [0, 1]). Where the attack fails to cross the boundary, the
example keeps the original prediction as its label, as in the authors' code.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import nn

from obliviate.errors import ConfigError
from obliviate.progress import Progress
from obliviate.removal.approximate._adversarial import data_range, model_device, pgd, predict, require_classifier
from obliviate.removal.approximate._steps import clip_and_step
from obliviate.removal.base import (MethodConfig, RemovalMethod, StepBudget, UnlearningTask, optimizer_for,
                                    register)
from obliviate.training.trainer import batch_indices, seeded_generator


@dataclass
class BoundaryShrinkConfig(MethodConfig):
    attack: Literal["pgd", "fgsm"] = "pgd"   # neighbour search (the authors' code: PGD)
    bound: float = 0.1            # L-inf radius of the neighbour search
    step_size: float = 8 / 255    # PGD step (ignored by fgsm, whose step is the bound)
    attack_steps: int = 5         # PGD iterations
    clip_to_data_range: bool = True   # keep perturbed inputs within the forget inputs' value range
    epochs: float = 10.0          # passes over the forget set
    lr: float = 1e-5
    optimizer: str = "sgd"
    momentum: float = 0.9
    batch_size: int = 128
    max_grad_norm: float | None = None

    def __post_init__(self) -> None:
        problems = []
        if not self.bound > 0:
            problems.append(f"The 'bound' parameter of boundary_shrink must be > 0; got {self.bound!r} instead.")
        if self.attack_steps < 1:
            problems.append(f"The 'attack_steps' parameter of boundary_shrink must be >= 1; got {self.attack_steps!r}.")
        if problems:
            raise ConfigError(" ".join(problems))


def nearest_wrong_labels(model: nn.Module, x: torch.Tensor, y: torch.Tensor, cfg: BoundaryShrinkConfig,
                         *, batch_size: int = 512) -> tuple[torch.Tensor, torch.Tensor]:
    """``(x_adv, labels)``: the neighbour-search inputs and the model's predictions on them."""
    bounds = data_range(x) if cfg.clip_to_data_range else None
    steps, step = (1, cfg.bound) if cfg.attack == "fgsm" else (cfg.attack_steps, cfg.step_size)
    advs, labels = [], []
    for s in range(0, x.shape[0], batch_size):
        adv = pgd(model, x[s:s + batch_size], y[s:s + batch_size], eps=cfg.bound, steps=steps, step_size=step,
                  norm="linf", bounds=bounds)
        advs.append(adv)
        labels.append(predict(model, adv))
    return torch.cat(advs), torch.cat(labels)


@register
class BoundaryShrink(RemovalMethod):
    name = "boundary_shrink"
    summary = "Relabel forget examples to the nearest wrong class (adversarial neighbour search), fine-tune on them."
    paper = "Chen et al. 2023, Boundary Unlearning: Rapid Forgetting of Deep Networks via Shifting the Decision Space"
    Config = BoundaryShrinkConfig

    def _run(self, model: nn.Module, original: nn.Module, task: UnlearningTask, ctl: StepBudget,
             progress: Progress) -> tuple[nn.Module, dict[str, Any]]:
        cfg = self.config
        obj = require_classifier(task, self.name)
        x, y = (t.to(model_device(model)) for t in task.forget.tensors(obj.device))
        _, labels = nearest_wrong_labels(original, x, y, cfg)
        flipped = float((labels != y).float().mean())
        opt = optimizer_for(model, cfg)
        gen = seeded_generator(task.seed, 0xB5)
        per_epoch = -(-len(y) // cfg.batch_size)
        total = max(1, int(round(cfg.epochs * per_epoch)))
        done = 0
        model.train()
        with progress.task("boundary_shrink", total=total) as bar:
            while done < total:
                for idx in batch_indices(len(y), cfg.batch_size, gen):
                    if done >= total or not ctl.ok():
                        return model, {"boundary_crossed": flipped}
                    clip_and_step(model, opt, F.cross_entropy(model(x[idx]), labels[idx]), cfg.max_grad_norm)
                    ctl.step()
                    done += 1
                    bar.advance(1)
        return model, {"boundary_crossed": flipped}
