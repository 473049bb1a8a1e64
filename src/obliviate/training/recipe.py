"""Training recipes: everything that determines how a model is fit, serialisable."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Literal

import torch
from torch import nn

from obliviate.errors import ConfigError


@dataclass(frozen=True)
class Recipe:
    """How to train a classifier from scratch (also the recipe ``retrain`` reuses).

    Defaults fit the built-in MLP to >= 98% train accuracy on Fashion-MNIST,
    as the unlearning literature's originals do (a forget set the original
    has not fit would look like test data from the start).
    """

    epochs: int = 20
    batch_size: int = 128
    lr: float = 1e-3
    optimizer: Literal["adam", "sgd"] = "adam"
    momentum: float = 0.9
    weight_decay: float = 0.0
    schedule: Literal["cosine", "constant"] = "cosine"

    def __post_init__(self) -> None:
        problems = []
        if self.epochs < 1:
            problems.append(f"epochs must be >= 1; got {self.epochs}.")
        if self.batch_size < 1:
            problems.append(f"batch_size must be >= 1; got {self.batch_size}.")
        if not self.lr > 0:
            problems.append(f"lr must be > 0; got {self.lr}.")
        if self.optimizer not in ("adam", "sgd"):
            problems.append(f"optimizer must be 'adam' or 'sgd'; got {self.optimizer!r}.")
        if self.schedule not in ("cosine", "constant"):
            problems.append(f"schedule must be 'cosine' or 'constant'; got {self.schedule!r}.")
        if self.weight_decay < 0:
            problems.append(f"weight_decay must be >= 0; got {self.weight_decay}.")
        if problems:
            raise ConfigError("Invalid training recipe:", problems)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def make_optimizer(params: Any, name: str, lr: float, *, momentum: float = 0.9,
                   weight_decay: float = 0.0) -> torch.optim.Optimizer:
    if name == "adam":
        return torch.optim.Adam(params, lr=lr, weight_decay=weight_decay)
    if name == "sgd":
        return torch.optim.SGD(params, lr=lr, momentum=momentum, weight_decay=weight_decay)
    raise ConfigError(f"optimizer must be 'adam' or 'sgd'; got {name!r}.")


def make_scheduler(opt: torch.optim.Optimizer, schedule: str, total_steps: int) -> Any:
    if schedule == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(1, total_steps))
    return torch.optim.lr_scheduler.LambdaLR(opt, lambda _: 1.0)


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
