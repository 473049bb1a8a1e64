"""``layer_reset``: re-initialise the first or last ``k`` parametrised layers, then fine-tune on retain data.

Goel et al. 2022, "Towards Adversarial Evaluation of Approximate Machine Unlearning"
(the EU-k baseline): re-initialise the last ``k`` layers and train them from scratch
on the retain data while the other layers stay frozen, so whatever the forget set put
into those layers is gone by construction (what remains in the frozen layers is not).

A "layer" is a module that owns parameters directly (for the built-in MLP: each
hidden Linear and the classifier), counted in registration order. Choices beyond
EU-k: ``which="first"`` resets the first layers instead, and ``train="all"``
fine-tunes every layer after the reset (a hybrid with CF-k). As in EU-k, the
defaults reuse the original training recipe (epochs, learning rate, optimiser,
batch size)
for the retraining; set them to fine-tune for less.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, ClassVar, Literal

import torch
from torch import nn

from obliviate.errors import ConfigError
from obliviate.progress import Progress
from obliviate.removal.approximate._common import finetune_retain, fresh_parameters, parametrised_layers, seed_int
from obliviate.removal.base import MethodConfig, RemovalMethod, StepBudget, UnlearningTask, register


@dataclass
class LayerResetConfig(MethodConfig):
    # oracle-free search (issue 17), gentlest first: reset one layer, then two; EU-k (train the reset layers) first
    tuning_space: ClassVar[dict[str, dict[str, list[Any]]]] = {
        "classification": {"k": [1, 2], "train": ["reset", "all"]}}

    k: int = 1                                   # how many parametrised layers to re-initialise
    which: Literal["last", "first"] = "last"     # EU-k resets the last k
    train: Literal["reset", "all"] = "reset"     # EU-k trains only the reset layers
    epochs: float | None = None                  # retain passes; None = the original recipe's epochs
    lr: float | None = None                      # None = the original recipe's learning rate
    optimizer: str | None = None                 # None = the original recipe's optimiser
    batch_size: int | None = None                # None = the original recipe's batch size
    max_grad_norm: float | None = None

    def __post_init__(self) -> None:
        if self.k < 1:
            raise ConfigError(f"The 'k' parameter of method 'layer_reset' must be an int >= 1; got {self.k!r} instead.")


def choose_layers(model: nn.Module, k: int, which: str) -> list[tuple[str, nn.Module]]:
    layers = parametrised_layers(model)
    if k > len(layers):
        raise ConfigError(
            f"layer_reset k={k} exceeds the model's {len(layers)} parametrised layers "
            f"({', '.join(n or '<root>' for n, _ in layers)}); choose k <= {len(layers)}."
        )
    return layers[-k:] if which == "last" else layers[:k]


@register
class LayerReset(RemovalMethod):
    name = "layer_reset"
    summary = "Re-initialise the first or last k layers, then (re)train on retain data (EU-k)."
    paper = "Goel et al. 2022, Towards Adversarial Evaluation of Approximate Machine Unlearning (EU-k)"
    Config = LayerResetConfig

    def _run(self, model: nn.Module, original: nn.Module, task: UnlearningTask, ctl: StepBudget,
             progress: Progress) -> tuple[nn.Module, dict[str, Any]]:
        cfg = self.config
        layers = choose_layers(model, cfg.k, cfg.which)
        with torch.no_grad():
            for i, (_, module) in enumerate(layers):
                for pname, value in fresh_parameters(module, seed_int(task.seed, 0x1A7, i)).items():
                    getattr(module, pname).copy_(value)
        train_cfg = replace(cfg, epochs=cfg.epochs if cfg.epochs is not None else task.recipe.epochs,
                            lr=cfg.lr if cfg.lr is not None else task.recipe.lr,
                            optimizer=cfg.optimizer or task.recipe.optimizer,
                            batch_size=cfg.batch_size or task.recipe.batch_size)
        params = ([p for _, m in layers for p in m.parameters(recurse=False)] if cfg.train == "reset"
                  else list(model.parameters()))
        trainable = {id(p) for p in params}
        saved = {id(p): p.requires_grad for p in model.parameters()}
        for p in model.parameters():
            p.requires_grad_(id(p) in trainable)
        try:
            finetune_retain(model, task, train_cfg, ctl, progress, "layer_reset", seed_tag=0x1A8, params=params)
        finally:
            for p in model.parameters():
                p.requires_grad_(saved[id(p)])
        return model, {"reset_layers": [n for n, _ in layers]}
