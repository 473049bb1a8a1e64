"""Signals of a replica group: the arrays audit attacks read (model I/O lives here, not in the attacks)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from obliviate.engine.replicas.groups import ArchitectureFactory, State

__all__ = ["relearn_accuracies", "score_group"]


def score_group(states: Sequence[State], factory: ArchitectureFactory, seeds: Sequence[int],
                xs: dict[str, np.ndarray], ys: dict[str, np.ndarray], device: str) -> Any:
    """Logit-scaled confidences and accuracies of every model of a group on forget, retain and test."""
    from obliviate.audit.attacks import GroupScores, logit_scale_from_logits
    from obliviate.engine.replicas.training import StackedReplicas

    modules = [factory.load(sd, int(s), device) for sd, s in zip(states, seeds, strict=True)]
    stacked = StackedReplicas.from_modules(modules, model_factory=factory, seeds=list(seeds))
    out: dict[str, np.ndarray] = {}
    acc: dict[str, np.ndarray] = {}
    for split in ("forget", "retain", "test"):
        logits = stacked.predict_logits(xs[split]).astype(np.float64)          # (N, n, C)
        acc[split] = (logits.argmax(-1) == ys[split][None, :]).mean(axis=1)
        out[split] = logit_scale_from_logits(logits, np.broadcast_to(ys[split], logits.shape[:2]))
    return GroupScores(forget=out["forget"], test=out["test"], forget_acc=acc["forget"],
                       retain_acc=acc["retain"], test_acc=acc["test"], retain=out["retain"])


def relearn_accuracies(states: Sequence[State], seeds: Sequence[int], factory: ArchitectureFactory,
                       xa: torch.Tensor, ya: torch.Tensor, xb: torch.Tensor, yb: torch.Tensor, *,
                       steps: int, lr: float, batch_size: int, seed: int, device: str) -> tuple[np.ndarray, np.ndarray]:
    """Accuracy on part B before and after ``steps`` Adam steps on part A, per model (same batches for index i)."""
    from obliviate.training.trainer import seeded_generator

    before, after = [], []
    xa, ya, xb, yb = xa.to(device), ya.to(device), xb.to(device), yb.to(device)
    for i, (sd, s) in enumerate(zip(states, seeds, strict=True)):
        model = factory.seeded(int(s))
        model.load_state_dict(sd)
        model.to(device)
        with torch.no_grad():
            before.append(float((model.eval()(xb).argmax(-1) == yb).float().mean()))
        opt = torch.optim.Adam(model.parameters(), lr=lr)
        gen = seeded_generator(seed, 0x2E1E, i)
        model.train()
        order = torch.randperm(len(ya), generator=gen)
        pos = 0
        for _ in range(steps):
            if pos >= len(order):
                order, pos = torch.randperm(len(ya), generator=gen), 0
            idx = order[pos: pos + batch_size].to(device)
            pos += batch_size
            loss = torch.nn.functional.cross_entropy(model(xa[idx]), ya[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        with torch.no_grad():
            after.append(float((model.eval()(xb).argmax(-1) == yb).float().mean()))
    return np.array(before), np.array(after)
