"""One optimiser step with optional gradient clipping (shared by gradient-based methods)."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn


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
