"""What a removal method optimises, separated from the method itself.

Methods talk to an :class:`Objective` (per-batch loss, output distributions,
random relabelling) instead of calling ``cross_entropy`` directly. The
classifier objective lives here; a causal-LM objective (loss over answer
tokens) implements the same interface, so gradient ascent, GradDiff, KL and
the rest run unchanged on language models.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from obliviate.data.dataset import ArrayDataset
from obliviate.errors import ConfigError
from obliviate.training.trainer import batch_indices

Batch = Any


class Objective(ABC):
    """The loss and output interface removal methods are written against."""

    @abstractmethod
    def batches(self, data: Any, batch_size: int, generator: torch.Generator,
                *, shuffle: bool = True) -> Iterator[Batch]:
        """One pass over ``data`` in minibatches."""

    @abstractmethod
    def loss(self, model: nn.Module, batch: Batch, *, reduction: str = "mean") -> torch.Tensor:
        """The training loss (per example with ``reduction='none'``)."""

    @abstractmethod
    def log_probs(self, model: nn.Module, batch: Batch) -> torch.Tensor:
        """Log output distributions, shape (..., n_outputs), for divergences between models."""

    def kl_to(self, model: nn.Module, reference: nn.Module, batch: Batch) -> torch.Tensor:
        """KL(reference || model) averaged over the batch; the reference is not differentiated."""
        with torch.no_grad():
            ref = self.log_probs(reference, batch)
        cur = self.log_probs(model, batch)
        return F.kl_div(cur.reshape(-1, cur.shape[-1]), ref.reshape(-1, ref.shape[-1]),
                        log_target=True, reduction="batchmean")

    def relabel_random(self, batch: Batch, generator: torch.Generator, *, exclude_true: bool = True) -> Batch:
        raise ConfigError(f"{type(self).__name__} does not support random relabelling.")

    def size(self, data: Any) -> int:
        return len(data)


class ClassificationObjective(Objective):
    """Cross-entropy on ``(x, y)`` tensors drawn from an :class:`ArrayDataset`."""

    def __init__(self, n_classes: int, device: str | torch.device = "cpu") -> None:
        self.n_classes = n_classes
        self.device = device
        self._tensors: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}

    def _as_tensors(self, data: ArrayDataset) -> tuple[torch.Tensor, torch.Tensor]:
        key = id(data)
        if key not in self._tensors:
            self._tensors[key] = data.tensors(self.device)
        return self._tensors[key]

    def batches(self, data: ArrayDataset, batch_size: int, generator: torch.Generator,
                *, shuffle: bool = True) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        x, y = self._as_tensors(data)
        for idx in batch_indices(len(y), batch_size, generator, shuffle=shuffle):
            yield x[idx], y[idx]

    def loss(self, model: nn.Module, batch: tuple[torch.Tensor, torch.Tensor], *,
             reduction: str = "mean") -> torch.Tensor:
        x, y = batch
        return F.cross_entropy(model(x), y, reduction=reduction)

    def log_probs(self, model: nn.Module, batch: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        return F.log_softmax(model(batch[0]), dim=-1)

    def relabel_random(self, batch: tuple[torch.Tensor, torch.Tensor], generator: torch.Generator,
                       *, exclude_true: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
        x, y = batch
        if exclude_true:
            shift = torch.randint(1, self.n_classes, y.shape, generator=generator).to(y.device)
            return x, (y + shift) % self.n_classes
        return x, torch.randint(0, self.n_classes, y.shape, generator=generator).to(y.device)
