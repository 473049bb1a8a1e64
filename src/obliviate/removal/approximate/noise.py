"""``noise``: calibrated Gaussian weight perturbation, then fine-tuning on retain data.

The noise-and-weight-perturbation family of the unlearning surveys: perturb the
weights to wash out what the forget set contributed, then recover utility on the
retain set. Golatkar et al. 2020 ("Eternal Sunshine of the Spotless Net") add
Gaussian noise shaped by the Fisher information; Ash & Adams 2020 ("On Warm-Starting
Neural Network Training") shrink and perturb weights before further training. This
implementation is the plain, model-agnostic version:
``theta_l <- shrink * theta_l + sigma * std(theta_l) * N(0, I)`` for every parameter
tensor ``l`` with at least two entries (so each layer's noise is calibrated to that
layer's own weight scale), then ``epochs`` passes of fine-tuning on the retain data.

The noise is calibrated to the weights' scale, not to a privacy budget: it gives no
(epsilon, delta) certificate (the certified methods live in ``removal.exact``).
The defaults are this implementation's choice: noise at half of each tensor's
standard deviation, no shrinking, and the retain fine-tuning of ``finetune`` run
longer (5 epochs) to recover from it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import nn

from obliviate.errors import ConfigError
from obliviate.progress import Progress
from obliviate.removal.approximate._common import finetune_retain
from obliviate.removal.base import MethodConfig, RemovalMethod, StepBudget, UnlearningTask, register
from obliviate.training.trainer import seeded_generator


@dataclass
class NoiseConfig(MethodConfig):
    # oracle-free search (issue 17), gentlest first: less noise, then more; longer retain repair
    tuning_space: ClassVar[dict[str, dict[str, list[Any]]]] = {
        "classification": {"sigma": [0.25, 0.5, 1.0], "epochs": [2.0, 5.0]}}

    sigma: float = 0.5            # noise std as a multiple of each parameter tensor's own std
    shrink: float = 1.0           # multiply weights by this before adding noise (1 = no shrinking)
    epochs: float = 5.0           # fine-tuning passes over the retain set
    lr: float = 1e-3
    optimizer: str = "adam"
    batch_size: int = 128
    max_grad_norm: float | None = 5.0

    def __post_init__(self) -> None:
        problems = []
        if not self.sigma >= 0:
            problems.append(f"The 'sigma' parameter of noise must be >= 0; got {self.sigma!r} instead.")
        if not 0 < self.shrink <= 1:
            problems.append(f"The 'shrink' parameter of noise must be in (0, 1]; got {self.shrink!r} instead.")
        if problems:
            raise ConfigError(" ".join(problems))


@torch.no_grad()
def perturb(model: nn.Module, sigma: float, shrink: float, generator: torch.Generator) -> dict[str, float]:
    """Add per-tensor calibrated Gaussian noise in place; returns each tensor's noise std."""
    stds = {}
    for name, p in model.named_parameters():
        if p.numel() < 2:
            continue
        scale = float(p.std()) * sigma
        noise = torch.randn(p.shape, generator=generator, dtype=p.dtype).to(p.device)
        p.mul_(shrink).add_(noise, alpha=scale)
        stds[name] = scale
    return stds


@register
class Noise(RemovalMethod):
    name = "noise"
    summary = "Add Gaussian noise scaled to each layer's weight std, then fine-tune on retain data."
    paper = "Golatkar et al. 2020, Eternal Sunshine of the Spotless Net (noise injection); Ash & Adams 2020"
    Config = NoiseConfig

    def _run(self, model: nn.Module, original: nn.Module, task: UnlearningTask, ctl: StepBudget,
             progress: Progress) -> tuple[nn.Module, dict[str, Any]]:
        cfg = self.config
        stds = perturb(model, cfg.sigma, cfg.shrink, seeded_generator(task.seed, 0x4E5))
        finetune_retain(model, task, cfg, ctl, progress, "noise", seed_tag=0x4E6)
        return model, {"noise_std": stds}
