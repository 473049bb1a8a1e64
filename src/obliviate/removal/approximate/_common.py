"""Building blocks shared by the approximate methods: layers, re-initialisation, masks, retain fine-tuning.

Nothing here is a method; each helper does one thing that two or more methods need
(prune_finetune, layer_reset, noise, aru and l1_sparse all end with "fine-tune on the
retain data", several of them with some weights held fixed).
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable
from typing import Any

import torch
from torch import nn

from obliviate.errors import ConfigError
from obliviate.progress import Progress
from obliviate.removal.approximate._steps import clip_and_step
from obliviate.removal.base import StepBudget, UnlearningTask, epoch_loop
from obliviate.training.recipe import make_optimizer
from obliviate.training.trainer import seeded_generator


def parametrised_layers(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """Modules that own parameters directly (``recurse=False``), in registration order.

    For the built-in MLP: ``features.1`` (each hidden Linear) then ``classifier``.
    """
    return [(name, m) for name, m in model.named_modules() if any(True for _ in m.parameters(recurse=False))]


def seed_int(*parts: int) -> int:
    """A 63-bit integer seed derived from several ints (run seed, purpose tag, ...)."""
    return int(seeded_generator(*parts).initial_seed())


def fresh_parameters(module: nn.Module, seed: int) -> dict[str, torch.Tensor]:
    """What ``module``'s own parameters would be right after initialisation, under ``seed``.

    Uses the layer's ``reset_parameters`` (PyTorch's own initialiser for Linear,
    Conv, norms, embeddings) on a copy, inside a forked RNG so global state is untouched.
    """
    if not callable(getattr(module, "reset_parameters", None)):
        raise ConfigError(
            f"Cannot re-initialise a {type(module).__name__}: it has no reset_parameters(). "
            "Give the module a reset_parameters method, or choose layers that have one."
        )
    clone = copy.deepcopy(module)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        clone.reset_parameters()
    return {n: p.detach().clone() for n, p in clone.named_parameters(recurse=False)}


class FrozenEntries:
    """Holds chosen parameter entries at fixed values through optimiser steps.

    ``masks[name]`` is a bool tensor, True where the entry may change. After every
    optimiser step, call :meth:`restore`: entries outside the mask go back to the
    values they had when this object was made (so weight decay and momentum cannot
    move them either).
    """

    def __init__(self, model: nn.Module, masks: dict[str, torch.Tensor]) -> None:
        params = dict(model.named_parameters())
        unknown = [n for n in masks if n not in params]
        if unknown:
            raise ConfigError(f"mask names unknown parameters: {', '.join(unknown[:5])}")
        self._items = [(params[n], m.to(params[n].device), params[n].detach().clone())
                       for n, m in masks.items() if not bool(m.all())]

    @torch.no_grad()
    def restore(self) -> None:
        for p, m, held in self._items:
            p.copy_(torch.where(m, p, held))

    def mask_grads(self) -> None:
        for p, m, _ in self._items:
            if p.grad is not None:
                p.grad.mul_(m)


def finetune_retain(model: nn.Module, task: UnlearningTask, cfg: Any, ctl: StepBudget, progress: Progress,
                    description: str, *, seed_tag: int, params: Iterable[nn.Parameter] | None = None,
                    frozen: FrozenEntries | None = None,
                    penalty: Callable[[int], torch.Tensor | None] | None = None) -> int:
    """Train ``model`` on the retain data for ``cfg.epochs`` passes; returns the steps taken.

    ``params`` restricts which tensors the optimiser updates (default: all);
    ``frozen`` keeps masked-out entries fixed; ``penalty(step)`` adds a term to the loss.
    Reads ``epochs, lr, optimizer, batch_size, max_grad_norm`` (and optionally
    ``momentum, weight_decay``) from ``cfg``.
    """
    chosen = list(params) if params is not None else list(model.parameters())
    opt = make_optimizer(chosen, cfg.optimizer, cfg.lr, momentum=getattr(cfg, "momentum", 0.9),
                         weight_decay=getattr(cfg, "weight_decay", 0.0))
    model.train()
    step = 0
    for batch in epoch_loop(task, task.retain, cfg.epochs, cfg.batch_size, ctl, progress, description,
                            seed_tag=seed_tag):
        loss = task.objective.loss(model, batch)
        if penalty is not None:
            extra = penalty(step)
            if extra is not None:
                loss = loss + extra
        if frozen is None:
            clip_and_step(model, opt, loss, cfg.max_grad_norm)
        else:
            opt.zero_grad(set_to_none=True)
            loss.backward()
            frozen.mask_grads()
            if cfg.max_grad_norm is not None:
                torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.max_grad_norm)
            opt.step()
            frozen.restore()
        step += 1
    return step


def steps_per_epoch(task: UnlearningTask, data: Any, batch_size: int) -> int:
    return max(1, (task.objective.size(data) + batch_size - 1) // batch_size)


def check_fraction(name: str, value: float, owner: str, *, closed_high: bool = False) -> None:
    ok = 0.0 < value <= 1.0 if closed_high else 0.0 < value < 1.0
    if not ok:
        interval = "(0, 1]" if closed_high else "(0, 1)"
        raise ConfigError(f"The {name!r} parameter of {owner} must be in {interval}; got {value!r} instead.")
