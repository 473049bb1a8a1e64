"""The bench's jobs on an executor (process pool, Ray): one seed, or one seed's setup and then one method.

Two job units, both giving the serial runner's records (same code, same seeds, each
method reseeded; see :meth:`SeedRun.run_methods`):

* ``seed``: a job runs a whole seed (split, original, reference, every method). What
  travels: the task once per map (with a classifier's data arrays, ``ray.put`` once)
  and the records back.
* ``method``: a *setup* job per seed trains (or loads) the original and the reference
  and sends back its reference records and the state dicts of every model it trained or
  loaded (tensors, keyed by their model-cache key; the driver puts them in Ray's object
  store once per seed); then one job per (seed, method)
  rebuilds the seed run from those shipped states (:class:`ShippedCache`: a cache hit,
  no retraining, no shared filesystem needed) and runs its one method. A method job
  repeats the seed's cheap setup (the split, forward passes for the reference outputs;
  for language models also the reference's evaluation and the control attacks).

The on-disk model cache is still read and written by every job (on a local cluster it
is the same folder as the driver's, so a second run trains nothing); on a remote
cluster without shared storage each job sees its node's own folder, and the shipped
states are what make a method job independent of it.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from dataclasses import dataclass, field
from typing import Any

from torch import nn

from obliviate.progress import NullProgress
from obliviate.removal.base import Budget
from obliviate.tasks import Task
from obliviate.training.cache import ModelCache
from obliviate.training.checkpoint import load_into, state_to_tensors

log = logging.getLogger(__name__)

__all__ = ["JOB_UNITS", "JobContext", "MethodJob", "RecordingCache", "SeedJob", "SeedOutcome", "ShippedCache",
           "method_job", "seed_job"]

JOB_UNITS = ("auto", "seed", "method")

#: model-cache key -> (state dict tensors, manifest): the models a setup job sends to its method jobs
Shipped = dict[str, tuple[dict[str, Any], dict[str, Any]]]


class RecordingCache(ModelCache):
    """The run's model cache, keeping a copy of every model it loads or stores (to ship them on)."""

    def __init__(self, inner: ModelCache) -> None:
        super().__init__(inner.root, enabled=inner.enabled)
        self.shipped: Shipped = {}

    def load(self, key: str, model: nn.Module) -> dict[str, Any] | None:
        manifest = super().load(key, model)
        if manifest is not None:
            self.shipped[key] = (state_to_tensors(model), dict(manifest))
        return manifest

    def store(self, key: str, model: nn.Module, manifest: dict[str, Any]) -> None:
        super().store(key, model, manifest)  # writes only when the run's cache is enabled
        self.shipped[key] = (state_to_tensors(model), dict(manifest))


class ShippedCache(ModelCache):
    """The run's model cache, answering first from the states a setup job shipped."""

    def __init__(self, inner: ModelCache, shipped: Shipped) -> None:
        super().__init__(inner.root, enabled=inner.enabled)
        self.shipped = shipped
        self.hits: list[str] = []

    def load(self, key: str, model: nn.Module) -> dict[str, Any] | None:
        if key in self.shipped:
            state, manifest = self.shipped[key]
            load_into(model, state, source=f"model {key} shipped from the setup job")
            self.hits.append(key)
            return dict(manifest)
        return super().load(key, model)


@dataclass(frozen=True)
class JobContext:
    """What every job of one run shares (sent once per map): the task (with its data), the cache, the budget."""

    task: Task
    cache: ModelCache
    budget: dict[str, Any]


@dataclass(frozen=True)
class SeedJob:
    seed: int
    methods: list[str]          # empty: the setup job of the ``method`` unit
    ship: bool = False          # send back the models' states (for the seed's method jobs)


@dataclass(frozen=True)
class MethodJob:
    seed: int
    method: str
    shipped: Any = field(repr=False)  # the seed's Shipped models, or an executor handle to them (Executor.put)


@dataclass
class SeedOutcome:
    records: list[dict[str, Any]]
    meta: dict[str, Any]
    shipped: Shipped
    job: dict[str, Any]         # where and how long it ran


def _prepare(ctx: JobContext) -> None:
    import obliviate.removal  # noqa: F401  (registers the methods in a fresh worker)

    ctx.task.setup()


def _where(t0: float) -> dict[str, Any]:
    return {"host": socket.gethostname(), "pid": os.getpid(), "wall_s": time.perf_counter() - t0}


def seed_job(ctx: JobContext, job: SeedJob) -> SeedOutcome:
    """A seed's run in a worker: split, original, reference, their records, then ``job.methods``."""
    from obliviate.audit.memorization import using_cache

    t0 = time.perf_counter()
    _prepare(ctx)
    cache = RecordingCache(ctx.cache)
    with using_cache(ctx.cache):
        run = ctx.task.seed_run(job.seed, cache=cache, progress=NullProgress())
        records = run.reference_records()
        if job.methods:
            records += run.run_methods(list(job.methods), Budget(**ctx.budget), NullProgress())
    return SeedOutcome(records, dict(run.meta), cache.shipped if job.ship else {}, _where(t0))


def method_job(ctx: JobContext, job: MethodJob) -> tuple[dict[str, Any], dict[str, Any]]:
    """One method of one seed in a worker, on the seed run rebuilt from the setup job's shipped models."""
    from obliviate.audit.memorization import using_cache

    from obliviate.engine.executor import resolve

    t0 = time.perf_counter()
    _prepare(ctx)
    shipped: Shipped = resolve(job.shipped)
    cache = ShippedCache(ctx.cache, shipped)
    with using_cache(ctx.cache):
        run = ctx.task.seed_run(job.seed, cache=cache, progress=NullProgress())
        [record] = run.run_methods([job.method], Budget(**ctx.budget), NullProgress())
    where = _where(t0)
    where["shipped_hits"] = len(cache.hits)
    if not cache.hits and shipped:
        log.warning("seed %d %s: no shipped model matched (another torch thread count or runtime in this "
                    "worker?); its seed's models were trained again here", job.seed, job.method)
    return record, where
