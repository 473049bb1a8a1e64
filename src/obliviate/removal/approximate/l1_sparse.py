"""``l1_sparse``: fine-tune on retain data with a linearly decaying L1 penalty on the weights.

Jia et al. 2023, "Model Sparsity Can Simplify Machine Unlearning" (NeurIPS), the
"l1-sparse MU" method: minimise ``L(theta; D_r) + gamma_t * ||theta||_1`` starting from
the original model, with ``gamma_t = (1 - t / T) * gamma`` decaying linearly to zero
(the paper found a decaying schedule best: sparsity early promotes forgetting, the
late unpenalised epochs recover accuracy). As in the official code, ``t`` counts
epochs, ``||theta||_1`` is over every parameter tensor, and the optimiser is SGD
with momentum. Defaults: the official CIFAR-10 command's 10 epochs at lr 0.01, and
gamma 5e-4, the paper's reported setting as read here (the command leaves gamma as a
flag to sweep).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import nn

from obliviate.errors import ConfigError
from obliviate.progress import Progress
from obliviate.removal.approximate._common import finetune_retain, steps_per_epoch
from obliviate.removal.base import MethodConfig, RemovalMethod, StepBudget, UnlearningTask, register


@dataclass
class L1SparseConfig(MethodConfig):
    # Oracle-free selection (``bench --tune``; obliviate.tasks.tuning): candidates chosen a priori around the
    # defaults, gentlest first; early stopping on the user-computable targets picks the stopping point.
    tuning_space: ClassVar[dict[str, dict[str, list[Any]]]] = {"classification": {"lr": [0.003, 0.01], "epochs": [1.0, 2.0]}}

    epochs: float = 10.0          # passes over the retain set (T in the schedule)
    lr: float = 0.01              # learning rate (the authors' CIFAR-10 value)
    optimizer: str = "sgd"        # SGD with momentum, as the official code
    momentum: float = 0.9
    weight_decay: float = 5e-4    # the official code's default
    batch_size: int = 128
    gamma: float = 5e-4           # initial L1 weight; decays linearly to 0 over the epochs
    max_grad_norm: float | None = None   # the paper clips nothing

    def __post_init__(self) -> None:
        problems = []
        if not self.gamma >= 0:
            problems.append(f"The 'gamma' parameter of l1_sparse must be >= 0; got {self.gamma!r} instead.")
        if not self.epochs > 0:
            problems.append(f"The 'epochs' parameter of l1_sparse must be > 0; got {self.epochs!r} instead.")
        if problems:
            raise ConfigError(" ".join(problems))


def l1_norm(model: nn.Module) -> torch.Tensor:
    """``||theta||_1`` over every parameter tensor."""
    return sum(p.abs().sum() for p in model.parameters())  # type: ignore[return-value]


@register
class L1Sparse(RemovalMethod):
    name = "l1_sparse"
    summary = "Fine-tune on retain data with a linearly decaying L1 penalty (sparsity-aided forgetting)."
    paper = "Jia et al. 2023, Model Sparsity Can Simplify Machine Unlearning (l1-sparse MU)"
    Config = L1SparseConfig

    def _run(self, model: nn.Module, original: nn.Module, task: UnlearningTask, ctl: StepBudget,
             progress: Progress) -> tuple[nn.Module, dict[str, Any]]:
        cfg = self.config
        per_epoch = steps_per_epoch(task, task.retain, cfg.batch_size)

        def penalty(step: int) -> torch.Tensor | None:
            gamma_t = cfg.gamma * (1.0 - (step // per_epoch) / cfg.epochs)
            return gamma_t * l1_norm(model) if gamma_t > 0 else None

        finetune_retain(model, task, cfg, ctl, progress, "l1_sparse", seed_tag=0x11A, penalty=penalty)
        with torch.no_grad():
            total = sum(p.numel() for p in model.parameters())
            near_zero = sum(int((p.abs() < 1e-8).sum()) for p in model.parameters())
        return model, {"final_l1": float(l1_norm(model).detach()), "zero_fraction": near_zero / max(1, total)}
