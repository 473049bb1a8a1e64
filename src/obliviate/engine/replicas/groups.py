"""Groups of replicas for strong audits: trained (or unlearned) in chunks on an executor, cached.

A group is N models of one architecture that differ in their seed (and, for unlearned
groups, were each unlearned by one method). Chunks of ``chunk`` replicas are one job:
from-scratch groups train a chunk at once with :func:`.training.train_replicas`; unlearned
groups run a removal method on each model of a chunk (methods are ordinary code).

Every chunk is cached in the shared :class:`obliviate.training.cache.ModelCache` (the one
training uses; safetensors plus a manifest that records the chunk's compute time), under a
key of what determines it, so a second audit retrains nothing. A corrupt entry is a miss
with a warning (ModelCache's behaviour).
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from obliviate.progress import Progress

log = logging.getLogger(__name__)

__all__ = ["ArchitectureFactory", "GroupRun", "ReplicaCache", "chunks", "mask_digest", "run_chunks",
           "train_job", "unlearn_job"]

State = dict[str, torch.Tensor]


@dataclass(frozen=True)
class ArchitectureFactory:
    """Builds one fresh model of the run's architecture from the current torch RNG (picklable)."""

    name: str
    options: dict[str, Any]
    input_shape: tuple[int, ...]
    n_classes: int

    def __call__(self) -> nn.Module:
        from obliviate.models.zoo import resolve_factory

        return resolve_factory(self.name)(tuple(self.input_shape), int(self.n_classes), **self.options)

    def seeded(self, seed: int) -> nn.Module:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            return self()

    def load(self, state: State, seed: int, device: str = "cpu") -> nn.Module:
        model = self.seeded(int(seed))
        model.load_state_dict(state)
        return model.to(device).eval()


class ReplicaCache:
    """Chunks of replica weights in a :class:`~obliviate.training.cache.ModelCache` (one entry per chunk)."""

    def __init__(self, cache: Any, factory: ArchitectureFactory) -> None:
        self.cache, self.factory = cache, factory

    def _holder(self, n: int) -> nn.ModuleList:
        # built under a fixed seed, so a cache lookup never draws from the caller's torch RNG
        return nn.ModuleList([self.factory.seeded(0) for _ in range(n)])

    def load(self, key: str, n: int) -> tuple[list[State], dict[str, Any]] | None:
        holder = self._holder(n)
        manifest = self.cache.load(key, holder)
        if manifest is None:
            return None
        return [{k: v.detach().clone() for k, v in m.state_dict().items()} for m in holder], manifest

    def store(self, key: str, states: Sequence[State], manifest: dict[str, Any]) -> None:
        if not self.cache.enabled:
            return
        holder = self._holder(len(states))
        for module, sd in zip(holder, states, strict=True):
            module.load_state_dict(sd)
        self.cache.store(key, holder, manifest)


def mask_digest(mask: np.ndarray | None) -> str:
    if mask is None:
        return "all"
    return hashlib.sha256(np.packbits(mask.astype(bool), axis=-1).tobytes()).hexdigest()[:16]


def chunks(n: int, size: int) -> list[range]:
    return [range(i, min(n, i + size)) for i in range(0, n, size)]


@dataclass
class GroupRun:
    """The states of one group (in replica order), its chunks' cache keys, and its timing."""

    states: list[State]
    keys: list[str]
    timing: dict[str, Any]


def run_chunks(ex: Any, cache: ReplicaCache, keys: Sequence[str], parts: Sequence[range],
               make_job: Callable[[int], dict[str, Any]], fn: Callable[[dict[str, Any]], tuple[list[State], float]],
               manifest: Callable[[int, float], dict[str, Any]], progress: Progress, description: str) -> GroupRun:
    """Load the cached chunks, run the others on ``ex`` (one job each), store them; one group."""
    t0 = time.perf_counter()
    got: list[list[State] | None] = []
    compute_s = 0.0
    for key, part in zip(keys, parts, strict=True):
        hit = cache.load(key, len(part))
        got.append(None if hit is None else hit[0])
        compute_s += 0.0 if hit is None else float(hit[1].get("wall_s", 0.0))
    todo = [i for i, g in enumerate(got) if g is None]
    if todo:
        done = ex.map(fn, [make_job(i) for i in todo], progress=progress, description=description)
    else:  # a group found whole in the cache still shows, as one step
        done = []
        with progress.task(f"{description[:-1]}, cached)", total=1) as bar:
            bar.advance(1)
    for i, (states, wall) in zip(todo, done, strict=True):
        got[i] = states
        compute_s += wall
        cache.store(keys[i], states, manifest(i, wall))
    return GroupRun(states=[sd for g in got for sd in g],  # type: ignore[union-attr]
                    keys=list(keys),
                    timing={"wall_s": time.perf_counter() - t0, "compute_s": compute_s,
                            "cached_chunks": len(parts) - len(todo), "chunks": len(parts)})


# --------------------------------------------------------------------------- jobs (executor workers)
def _set_threads(threads: int | None) -> None:
    if threads:
        torch.set_num_threads(threads)


def train_job(job: dict[str, Any]) -> tuple[list[State], float]:
    """Train one chunk of replicas at once; returns their state dicts and the wall time."""
    from obliviate.engine.replicas.training import train_replicas

    _set_threads(job.get("threads"))
    t0 = time.perf_counter()
    stacked = train_replicas(job["factory"], job["x"], job["y"], job["mask"], job["seeds"],
                             recipe=job["recipe"], device=job["device"])
    return stacked.state_dicts(), time.perf_counter() - t0


def unlearn_job(job: dict[str, Any]) -> tuple[list[State], float]:
    """Unlearn each model of a chunk with one method, one model at a time."""
    import obliviate.removal  # noqa: F401  (registers the methods in a fresh worker)
    from obliviate.removal.base import METHODS, Budget, UnlearningTask
    from obliviate.removal.objective import ClassificationObjective
    from obliviate.training.checkpoint import state_to_tensors
    from obliviate.training.trainer import train_classifier

    _set_threads(job.get("threads"))
    factory: ArchitectureFactory = job["factory"]
    device = job["device"]
    method_cls = METHODS.get(job["method"])
    objective = ClassificationObjective(factory.n_classes, device)
    out = []
    t0 = time.perf_counter()
    for sd, seed in zip(job["states"], job["seeds"], strict=True):
        model = factory.load(sd, seed, device)

        def fit_from_scratch(data: Any, _seed: int = seed) -> tuple[nn.Module, float, dict[str, Any]]:
            fresh = factory.seeded(_seed)
            res = train_classifier(fresh, data, job["recipe"], seed=_seed, device=device)
            return fresh.eval(), res.wall_s, {"steps": res.steps}

        task = UnlearningTask(forget=job["forget"], retain=job["retain"], objective=objective,
                              recipe=job["recipe"], seed=seed, device=device, fit_from_scratch=fit_from_scratch,
                              extras={"train": job["train"], "test": job["test"], "model_spec": job["spec"]})
        method = method_cls(**job["config"])
        torch.manual_seed(seed)  # methods drawing from the global RNG stay reproducible
        unlearned, _ = method.unlearn(model, task, budget=Budget(**job["budget"]))
        out.append(state_to_tensors(unlearned))
    return out, time.perf_counter() - t0
