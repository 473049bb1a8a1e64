"""Optimiser steps shared by the gradient-based methods: one clipped step, and the forget-ascent loop."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from obliviate.progress import Progress
from obliviate.removal.base import (StepBudget, UnlearningTask, endless, epoch_loop, optimizer_for, planned_steps,
                                    scheduler_for)

#: ``term(model, batch) -> loss``: a forget term, or an anchor that keeps retain behaviour
#: (GradDiff: retain loss; KL: KL to the original)
Anchor = Callable[[nn.Module, Any], torch.Tensor]


def clip_and_step(model: nn.Module, opt: torch.optim.Optimizer, loss: torch.Tensor,
                  max_grad_norm: float | None, scheduler: Any = None) -> float:
    opt.zero_grad(set_to_none=True)
    loss.backward()
    if max_grad_norm is not None:
        torch.nn.utils.clip_grad_norm_(model.parameters(), max_grad_norm)
    opt.step()
    if scheduler is not None:
        scheduler.step()
    return float(loss.detach())


def forget_loop(model: nn.Module, task: UnlearningTask, cfg: Any, ctl: StepBudget, progress: Progress, name: str,
                *, forget_term: Anchor, anchor: Anchor | None = None, seed_tags: tuple[int, int] = (0, 0)) -> nn.Module:
    """Minimise ``forget_term(model, forget batch)`` for ``cfg.epochs`` passes over the forget set.

    With an ``anchor``, every step adds ``anchor(model, retain batch)`` (a retain batch drawn
    from an endless seeded stream). ``cfg`` provides epochs, batch_size, lr, optimizer,
    max_grad_norm and, optionally, schedule. ``seed_tags`` = (forget order, retain order).
    """
    opt = optimizer_for(model, cfg)
    sched = scheduler_for(opt, cfg, planned_steps(task, task.forget, cfg.epochs, cfg.batch_size))
    retain = endless(task, task.retain, cfg.batch_size, seed_tag=seed_tags[1]) if anchor is not None else None
    model.train()
    for batch in epoch_loop(task, task.forget, cfg.epochs, cfg.batch_size, ctl, progress, name,
                            seed_tag=seed_tags[0]):
        loss = forget_term(model, batch)
        if retain is not None:
            loss = loss + anchor(model, next(retain))
        clip_and_step(model, opt, loss, cfg.max_grad_norm, sched)
    return model


def forget_ascent(model: nn.Module, task: UnlearningTask, cfg: Any, ctl: StepBudget, progress: Progress, name: str,
                  *, forget_weight: float = 1.0, anchor: Anchor | None = None,
                  seed_tags: tuple[int, int] = (0, 0)) -> nn.Module:
    """:func:`forget_loop` ascending ``forget_weight * L(forget batch)`` (GA, GradDiff, KL).

    With ``cfg.forget_loss_ceiling`` (a loss per example, e.g. mean nats per answer token) an
    example stops being ascended once its loss reaches the ceiling: ascent without a bound
    drives the forget set's loss far past that of data never trained on (a membership signal
    of its own, PrivLeak < 0) and keeps pulling on everything that shares its tokens.
    """
    ceiling = getattr(cfg, "forget_loss_ceiling", None)
    if ceiling is None:
        return forget_loop(model, task, cfg, ctl, progress, name, anchor=anchor, seed_tags=seed_tags,
                           forget_term=lambda m, b: -forget_weight * task.objective.loss(m, b))

    def capped(m: nn.Module, b: Any) -> torch.Tensor:
        per = task.objective.loss(m, b, reduction="none")
        below = (per.detach() < ceiling).to(per.dtype)
        return -forget_weight * (per * below).sum() / max(1, per.numel())

    return forget_loop(model, task, cfg, ctl, progress, name, anchor=anchor, seed_tags=seed_tags, forget_term=capped)
