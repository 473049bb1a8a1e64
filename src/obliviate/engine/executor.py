"""Run many independent jobs (shard trainings, shadow models) on one of three backends.

An :class:`Executor` has one method, ``map(fn, items)``, that returns
``[fn(item) for item in items]`` in input order. ``fn`` must be a module-level
function and ``items`` picklable for the parallel backends.

* ``serial``: in this process, one after another (the default; no start-up cost).
* ``process``: a local :class:`concurrent.futures.ProcessPoolExecutor` with the
  ``spawn`` start method (safe with torch's threads; each worker imports anew).
* ``ray``: Ray tasks on an existing cluster, or on a local one started for the
  executor's lifetime (``pip install obliviate[ray]``).

New backends register with ``EXECUTORS.register("name", factory)``.
"""

from __future__ import annotations

import logging
import multiprocessing
from collections.abc import Callable, Iterable
from concurrent.futures import ProcessPoolExecutor
from typing import Any, TypeVar

from obliviate.errors import ConfigError
from obliviate.progress import NullProgress, Progress
from obliviate.registry import Registry

log = logging.getLogger(__name__)

T = TypeVar("T")
R = TypeVar("R")


class Executor:
    """Abstract base: ``map`` runs ``fn`` over ``items`` and returns results in order."""

    name = "executor"

    def map(self, fn: Callable[[T], R], items: Iterable[T], *, progress: Progress | None = None,
            description: str = "jobs") -> list[R]:  # pragma: no cover - interface
        raise NotImplementedError

    def close(self) -> None:
        """Release workers; the executor is unusable afterwards."""

    def __enter__(self) -> Executor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def describe(self) -> dict[str, Any]:
        return {"backend": self.name}


class SerialExecutor(Executor):
    """Runs jobs one after another in the calling process."""

    name = "serial"

    def map(self, fn: Callable[[T], R], items: Iterable[T], *, progress: Progress | None = None,
            description: str = "jobs") -> list[R]:
        items = list(items)
        out: list[R] = []
        with (progress or NullProgress()).task(description, total=len(items)) as bar:
            for item in items:
                out.append(fn(item))
                bar.advance(1)
        return out


class ProcessExecutor(Executor):
    """A local process pool (spawn context); workers start lazily on the first ``map``."""

    name = "process"

    def __init__(self, max_workers: int | None = None) -> None:
        if max_workers is not None and (not isinstance(max_workers, int) or max_workers < 1):
            raise ConfigError(f"The 'max_workers' parameter of ProcessExecutor must be an int >= 1 or None; "
                              f"got {max_workers!r} instead.")
        self.max_workers = max_workers
        self._pool: ProcessPoolExecutor | None = None

    def _get_pool(self) -> ProcessPoolExecutor:
        if self._pool is None:
            self._pool = ProcessPoolExecutor(max_workers=self.max_workers,
                                             mp_context=multiprocessing.get_context("spawn"))
        return self._pool

    def map(self, fn: Callable[[T], R], items: Iterable[T], *, progress: Progress | None = None,
            description: str = "jobs") -> list[R]:
        items = list(items)
        if not items:
            return []
        pool = self._get_pool()
        futures = [pool.submit(fn, item) for item in items]
        with (progress or NullProgress()).task(description, total=len(items)) as bar:
            results = []
            for fut in futures:
                results.append(fut.result())
                bar.advance(1)
        return results

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None

    def describe(self) -> dict[str, Any]:
        return {"backend": self.name, "max_workers": self.max_workers}


def _call(fn: Callable[[T], R], item: T) -> R:
    """Runs in a Ray worker: ``fn`` travels as an argument, so builtins and partials work too."""
    return fn(item)


def _import_ray() -> Any:
    try:
        import ray
    except ImportError:
        raise ConfigError(
            "The 'ray' executor needs Ray, which is not installed. Install it with "
            "`pip install obliviate[ray]`, or choose executor 'serial' or 'process'."
        ) from None
    return ray


class RayExecutor(Executor):
    """Ray tasks, one CPU each by default.

    Uses the running Ray instance when there is one (``ray.init`` was called, e.g. to join a
    cluster); otherwise starts a local one with ``num_cpus`` and shuts it down on ``close``.
    """

    name = "ray"

    def __init__(self, num_cpus: int | None = None, cpus_per_task: float = 1.0) -> None:
        self.ray = _import_ray()
        if not cpus_per_task > 0:
            raise ConfigError(f"The 'cpus_per_task' parameter of RayExecutor must be > 0; got {cpus_per_task!r} instead.")
        self.num_cpus = num_cpus
        self.cpus_per_task = cpus_per_task
        self._started = False

    def _ensure_started(self) -> None:
        if not self.ray.is_initialized():
            log.info("starting a local Ray instance (num_cpus=%s)", self.num_cpus)
            self.ray.init(num_cpus=self.num_cpus, include_dashboard=False, log_to_driver=False)
            self._started = True

    def map(self, fn: Callable[[T], R], items: Iterable[T], *, progress: Progress | None = None,
            description: str = "jobs") -> list[R]:
        items = list(items)
        if not items:
            return []
        self._ensure_started()
        remote = self.ray.remote(num_cpus=self.cpus_per_task, max_retries=0)(_call)
        fn_ref = self.ray.put(fn)
        refs = [remote.remote(fn_ref, item) for item in items]
        with (progress or NullProgress()).task(description, total=len(items)) as bar:
            results = []
            for ref in refs:
                results.append(self.ray.get(ref))
                bar.advance(1)
        return results

    def close(self) -> None:
        if self._started and self.ray.is_initialized():
            self.ray.shutdown()
        self._started = False

    def describe(self) -> dict[str, Any]:
        return {"backend": self.name, "num_cpus": self.num_cpus, "cpus_per_task": self.cpus_per_task}


ExecutorFactory = Callable[..., Executor]
EXECUTORS: Registry[ExecutorFactory] = Registry("executor")
EXECUTORS.register("serial", SerialExecutor)
EXECUTORS.register("process", ProcessExecutor)
EXECUTORS.register("ray", RayExecutor)


def make_executor(backend: str | Executor = "serial", **options: Any) -> Executor:
    """An executor by name (``serial``, ``process``, ``ray``) with its options, or ``backend`` itself."""
    if isinstance(backend, Executor):
        return backend
    factory = EXECUTORS.get(backend)
    try:
        return factory(**options)
    except TypeError as exc:
        raise ConfigError(f"Bad options {sorted(options)} for executor {backend!r}: {exc}.") from None


__all__ = ["EXECUTORS", "Executor", "ProcessExecutor", "RayExecutor", "SerialExecutor", "make_executor"]
