"""A small deterministic trainer for classifiers.

Deterministic means: the same model init, data, recipe and seed give the
same weights bit for bit on CPU. Shuffling uses its own ``torch.Generator``;
the global RNG is not touched.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from obliviate.data.dataset import ArrayDataset
from obliviate.progress import NullProgress, Progress
from obliviate.training.recipe import Recipe, make_optimizer, make_scheduler

log = logging.getLogger(__name__)


def seeded_generator(*seed_parts: int) -> torch.Generator:
    """A CPU generator seeded from several integers (e.g. run seed and a purpose tag)."""
    ss = np.random.SeedSequence([int(s) & 0xFFFFFFFF for s in seed_parts])
    return torch.Generator().manual_seed(int(ss.generate_state(1, dtype=np.uint64)[0] & 0x7FFFFFFFFFFFFFFF))


def batch_indices(n: int, batch_size: int, generator: torch.Generator, *, shuffle: bool = True) -> Iterator[torch.Tensor]:
    """Yield index tensors covering ``range(n)`` once."""
    order = torch.randperm(n, generator=generator) if shuffle else torch.arange(n)
    for start in range(0, n, batch_size):
        yield order[start : start + batch_size]


def endless_batches(x: torch.Tensor, y: torch.Tensor, batch_size: int,
                    generator: torch.Generator) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Cycle over shuffled minibatches forever (for a secondary data stream)."""
    while True:
        for idx in batch_indices(len(y), batch_size, generator):
            yield x[idx], y[idx]


@dataclass
class TrainResult:
    wall_s: float
    steps: int
    epochs: int
    final_loss: float
    history: list[float] = field(default_factory=list)


def train_classifier(model: nn.Module, data: ArrayDataset, recipe: Recipe, *, seed: int,
                     device: str | torch.device = "cpu", progress: Progress | None = None,
                     description: str = "train") -> TrainResult:
    """Train ``model`` in place on ``data`` with ``recipe``; returns timings and losses."""
    progress = progress or NullProgress()
    model.to(device).train()
    x, y = data.tensors(device)
    steps_per_epoch = (len(y) + recipe.batch_size - 1) // recipe.batch_size
    opt = make_optimizer(model.parameters(), recipe.optimizer, recipe.lr,
                         momentum=recipe.momentum, weight_decay=recipe.weight_decay)
    sched = make_scheduler(opt, recipe.schedule, recipe.epochs * steps_per_epoch)
    gen = seeded_generator(seed, 0x7A1)
    history: list[float] = []
    steps = 0
    t0 = time.perf_counter()
    with progress.task(description, total=recipe.epochs) as bar:
        for epoch in range(recipe.epochs):
            total, count = 0.0, 0
            for idx in batch_indices(len(y), recipe.batch_size, gen):
                xb, yb = x[idx], y[idx]
                loss = F.cross_entropy(model(xb), yb)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                sched.step()
                steps += 1
                total += float(loss.detach()) * len(idx)
                count += len(idx)
            history.append(total / max(1, count))
            bar.advance(1, loss=history[-1])
            log.debug("%s epoch %d loss %.4f", description, epoch, history[-1])
    model.eval()
    return TrainResult(wall_s=time.perf_counter() - t0, steps=steps, epochs=recipe.epochs,
                       final_loss=history[-1] if history else float("nan"), history=history)


@torch.no_grad()
def predict_logits(model: nn.Module, x: np.ndarray | torch.Tensor, *, batch_size: int = 2048,
                   device: str | torch.device = "cpu") -> np.ndarray:
    """Logits for every row of ``x`` in evaluation mode, as float64 numpy."""
    was_training = model.training
    model.eval()
    xt = torch.as_tensor(x)
    out = []
    for start in range(0, len(xt), batch_size):
        out.append(model(xt[start : start + batch_size].to(device)).double().cpu())
    if was_training:
        model.train()
    return torch.cat(out).numpy() if out else np.zeros((0, 0))
