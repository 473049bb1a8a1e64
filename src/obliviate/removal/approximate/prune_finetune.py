"""``prune_finetune``: one-shot magnitude pruning to a target sparsity, then masked fine-tuning on retain data.

Jia et al. 2023, "Model Sparsity Can Simplify Machine Unlearning" (NeurIPS), the
"prune first, then unlearn" recipe with one-shot magnitude pruning (OMP): zero the
weights with the smallest absolute value (L1 norm) until a fraction ``sparsity`` of
the prunable weights is zero, then fine-tune on the retain set with the pruning mask
held fixed, so pruned weights stay exactly zero. Defaults follow the paper: global
(whole-network) pruning at 95% sparsity, then 10 epochs of SGD at lr 0.01.

Choices the paper leaves open here: the official code prunes convolution weights
and keeps the classifier dense; for networks of Linear layers this implementation
prunes every Linear/Conv weight except the output layer's (``prune_output=False``),
never biases or norm parameters. ``scope="layer"`` prunes each layer to the target
separately instead of ranking all weights together.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import torch
from torch import nn

from obliviate.errors import ConfigError
from obliviate.progress import Progress
from obliviate.removal.approximate._common import FrozenEntries, check_fraction, finetune_retain, parametrised_layers
from obliviate.removal.base import MethodConfig, RemovalMethod, StepBudget, UnlearningTask, register

_PRUNABLE = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)


@dataclass
class PruneFinetuneConfig(MethodConfig):
    # oracle-free search (issue 17), gentlest first: lower sparsity (the paper sweeps it too), then the paper's 95%
    tuning_space: ClassVar[dict[str, dict[str, list[Any]]]] = {
        "classification": {"sparsity": [0.5, 0.8, 0.95], "epochs": [3.0, 10.0]}}

    sparsity: float = 0.95        # fraction of prunable weights set to zero (the paper's 95%)
    scope: Literal["global", "layer"] = "global"   # rank all prunable weights together, or per layer
    prune_output: bool = False    # also prune the output layer (the official code keeps it dense)
    epochs: float = 10.0          # fine-tuning passes over the retain set
    lr: float = 0.01
    optimizer: str = "sgd"
    momentum: float = 0.9
    weight_decay: float = 5e-4
    batch_size: int = 128
    max_grad_norm: float | None = None

    def __post_init__(self) -> None:
        check_fraction("sparsity", self.sparsity, "method 'prune_finetune'")


def prunable_weights(model: nn.Module, *, prune_output: bool) -> dict[str, nn.Parameter]:
    """Weights of Linear/Conv layers (optionally without the last parametrised layer), by parameter name."""
    layers = parametrised_layers(model)
    out_name = layers[-1][0] if layers else None
    found = {f"{name}.weight" if name else "weight": m.weight for name, m in layers
             if isinstance(m, _PRUNABLE) and (prune_output or name != out_name)}
    if not found:
        raise ConfigError(
            "prune_finetune found no Linear or Conv weights to prune"
            + ("" if prune_output else " besides the output layer; set prune_output=True to prune it")
            + "."
        )
    return found


@torch.no_grad()
def magnitude_masks(weights: dict[str, torch.Tensor], sparsity: float, scope: str) -> dict[str, torch.Tensor]:
    """Keep-masks (True = kept) zeroing the ``sparsity`` fraction of smallest-|w| entries.

    Ties at the threshold are broken by position so exactly ``round(sparsity * n)`` go.
    """
    def keep(flat: torch.Tensor) -> torch.Tensor:
        n_prune = int(round(sparsity * flat.numel()))
        k = torch.ones_like(flat, dtype=torch.bool)
        if n_prune:
            k[torch.argsort(flat.abs(), stable=True)[:n_prune]] = False
        return k

    if scope == "layer":
        return {n: keep(w.flatten()).view_as(w) for n, w in weights.items()}
    flat = keep(torch.cat([w.flatten() for w in weights.values()]))
    out, start = {}, 0
    for n, w in weights.items():
        out[n] = flat[start:start + w.numel()].view_as(w)
        start += w.numel()
    return out


@register
class PruneFinetune(RemovalMethod):
    name = "prune_finetune"
    summary = "Prune the smallest-magnitude weights to a target sparsity, then fine-tune on retain data."
    paper = "Jia et al. 2023, Model Sparsity Can Simplify Machine Unlearning (OMP + FT)"
    Config = PruneFinetuneConfig

    def _run(self, model: nn.Module, original: nn.Module, task: UnlearningTask, ctl: StepBudget,
             progress: Progress) -> tuple[nn.Module, dict[str, Any]]:
        cfg = self.config
        weights = prunable_weights(model, prune_output=cfg.prune_output)
        masks = magnitude_masks(dict(weights), cfg.sparsity, cfg.scope)
        with torch.no_grad():
            for n, w in weights.items():
                w.mul_(masks[n])
        finetune_retain(model, task, cfg, ctl, progress, "prune_finetune", seed_tag=0x9F,
                        frozen=FrozenEntries(model, masks))
        total = sum(w.numel() for w in weights.values())
        zeros = sum(int((w == 0).sum()) for w in weights.values())
        return model, {"sparsity": zeros / total, "pruned_tensors": sorted(weights)}
