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
Perturbed inputs are kept inside each feature's observed range (the authors clamp
images to [0, 1]). Where the attack fails to cross the boundary, the example keeps the
original prediction as its label, as in the authors' code.

Attack sizes are in units of each feature's standard deviation (``units="std"``; see
:mod:`._adversarial`): the authors' bound of 0.1 and step of 8/255 on CIFAR-10 pixels
(std about 0.25) are 0.4 and 0.125 standard deviations. On [0, 1] images this is about
the paper's radius (a Fashion-MNIST pixel's std is 0 to 0.45, so its bound is 0 to 0.18);
on standardised or one-hot table columns the pixel value meant something else (0.1 of a
one-hot column is an off-data input). ``units="input"`` with ``bound=0.1,
step_size=8/255`` is the authors' setting verbatim.

Why it changes little at its defaults on random forgetting (issue 17; measured in
BENCHMARKS.md, "Why some methods do nothing"): the paper's schedule, 10 epochs of SGD at
lr 1e-5, is sized for forgetting a whole CIFAR class (5,000 images, 400 steps of a
ResNet); on a 500-example random forget set it is 40 steps, each moving weights by about
``lr * |grad|``, which leaves almost every prediction as it was. It is also a class-forgetting
method by design: it trains every forget example toward a *wrong* class, so on random
forgetting, where the retrained model still gets most forget examples right, moving further
overshoots (forget accuracy heads to 0, not to the retrained model's). The tuning space
searches larger learning rates, gentlest first, and the oracle-free selection stops it
when forget accuracy reaches held-out accuracy.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import torch
import torch.nn.functional as F
from torch import nn

from obliviate.errors import ConfigError
from obliviate.progress import Progress
from obliviate.removal.approximate._adversarial import (PIXEL_STD, Units, attack_geometry, model_device, pgd, predict,
                                                        require_classifier)
from obliviate.removal.approximate._steps import clip_and_step
from obliviate.removal.base import (MethodConfig, RemovalMethod, StepBudget, UnlearningTask, optimizer_for,
                                    register)
from obliviate.training.trainer import batch_indices, seeded_generator


@dataclass
class BoundaryShrinkConfig(MethodConfig):
    # oracle-free search (issue 17), gentlest first: the paper's lr, then larger ones for small networks and
    # small forget sets (early stopping on the targets ends a run before its 10 epochs when they are met)
    tuning_space: ClassVar[dict[str, dict[str, list[Any]]]] = {
        "classification": {"lr": [1e-5, 1e-4, 1e-3, 1e-2], "epochs": [10.0]}}

    attack: Literal["pgd", "fgsm"] = "pgd"   # neighbour search (the authors' code: PGD)
    units: Units = "std"          # bound and step in feature standard deviations ("input": raw input units)
    bound: float = 0.1 / PIXEL_STD    # L-inf radius: the authors' 0.1 pixel = 0.4 std
    step_size: float = (8 / 255) / PIXEL_STD   # PGD step: the authors' 8/255 pixel = 0.125 std (fgsm: the bound)
    attack_steps: int = 5         # PGD iterations
    clip_to_data_range: bool = True   # keep perturbed inputs within each feature's observed range
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
                         *, task: UnlearningTask, batch_size: int = 512) -> tuple[torch.Tensor, torch.Tensor]:
    """``(x_adv, labels)``: the neighbour-search inputs and the model's predictions on them."""
    scale, bounds = attack_geometry(task, x, cfg.units, cfg.clip_to_data_range)
    steps, step = (1, cfg.bound) if cfg.attack == "fgsm" else (cfg.attack_steps, cfg.step_size)
    advs, labels = [], []
    for s in range(0, x.shape[0], batch_size):
        adv = pgd(model, x[s:s + batch_size], y[s:s + batch_size], eps=cfg.bound, steps=steps, step_size=step,
                  norm="linf", bounds=bounds, scale=scale)
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
        _, labels = nearest_wrong_labels(original, x, y, cfg, task=task)
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
