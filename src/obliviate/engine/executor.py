"""Run many independent jobs (shard trainings, shadow models) on one of three backends.

An :class:`Executor` has one method, ``map(fn, items)``, that returns
``[fn(item) for item in items]`` in input order. ``fn`` must be a module-level
function and ``items`` picklable for the parallel backends. ``map(fn, items,
shared=obj)`` calls ``fn(obj, item)``: ``obj`` (a dataset, a task) travels once per
map on Ray (``ray.put``, then every task reads the same object-store copy) instead of
once per item.

* ``serial``: in this process, one after another (the default; no start-up cost).
* ``process``: a local :class:`concurrent.futures.ProcessPoolExecutor` with the
  ``spawn`` start method (safe with torch's threads; each worker imports anew).
* ``ray``: Ray tasks on an existing cluster (``address=``, or a Ray this process
  already joined), or on a local one started for the executor's lifetime
  (``pip install obliviate[ray]``). Results come back in input order; progress and
  the log advance as each job finishes.

New backends register with ``EXECUTORS.register("name", factory)``.
"""

from __future__ import annotations

import logging
import multiprocessing
import re
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ProcessPoolExecutor
from typing import Any, TypeVar

from obliviate.errors import ConfigError
from obliviate.progress import NullProgress, Progress
from obliviate.registry import Registry, closest

log = logging.getLogger(__name__)

R = TypeVar("R")


class Executor:
    """Abstract base: ``map`` runs ``fn`` over ``items`` and returns results in order."""

    name = "executor"

    def map(self, fn: Callable[..., R], items: Iterable[Any], *, shared: Any = None,
            progress: Progress | None = None, description: str = "jobs") -> list[R]:  # pragma: no cover
        """``[fn(item) ...]`` (``[fn(shared, item) ...]`` when ``shared`` is given), in input order."""
        raise NotImplementedError

    def put(self, obj: Any) -> Any:
        """A handle to ``obj`` for ``map(shared=...)`` or inside items (:func:`resolve` reads it in a job).

        In-process and process-pool backends hand ``obj`` itself back; Ray stores it once in the
        cluster's object store, so many jobs read one copy instead of one copy each.
        """
        return obj

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

    def map(self, fn: Callable[..., R], items: Iterable[Any], *, shared: Any = None,
            progress: Progress | None = None, description: str = "jobs") -> list[R]:
        items = list(items)
        out: list[R] = []
        with (progress or NullProgress()).task(description, total=len(items)) as bar:
            for item in items:
                out.append(fn(item) if shared is None else fn(shared, item))
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

    def map(self, fn: Callable[..., R], items: Iterable[Any], *, shared: Any = None,
            progress: Progress | None = None, description: str = "jobs") -> list[R]:
        items = list(items)
        if not items:
            return []
        pool = self._get_pool()
        # a process pool has no shared store: ``shared`` is pickled with every job
        futures = [pool.submit(fn, item) if shared is None else pool.submit(fn, shared, item) for item in items]
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


def _call(fn: Callable[..., R], item: Any, *shared: Any) -> R:
    """Runs in a Ray worker: ``fn`` travels as an argument, so builtins and partials work too."""
    return fn(*shared, item)


def _import_ray() -> Any:
    try:
        import ray
    except ImportError:
        raise ConfigError(
            "The 'ray' executor needs Ray, which is not installed. Install it with "
            "`pip install obliviate[ray]`, or choose executor 'serial' or 'process'."
        ) from None
    return ray


#: what ``ray.init(address=...)`` accepts: ``auto``, ``local``, ``host:port`` or ``ray://host:port``
_ADDRESS = re.compile(r"^(auto|local|(ray://)?[A-Za-z0-9_.\-]+:\d{1,5})$")


def _probe(address: str, timeout_s: float = 5.0) -> None:
    """Fail fast when nothing listens at a ``host:port`` Ray address (``auto``/``local`` are Ray's own)."""
    import socket

    if address in ("auto", "local"):
        return
    host, _, port = address.removeprefix("ray://").rpartition(":")
    try:
        socket.create_connection((host, int(port)), timeout=timeout_s).close()
    except OSError as exc:
        raise ConfigError(
            f"Could not join the Ray cluster at {address!r}: nothing answers at {host}:{port} ({exc}). "
            "Check the address (`ray status` on the head node prints it; Ray Client uses ray://host:10001), "
            "or leave out --ray-address to start a local Ray instance."
        ) from None


class RayExecutor(Executor):
    """Ray tasks, one CPU each by default.

    With ``address`` it joins that cluster (``ray.init(address=...)``: ``auto``, ``host:6379``
    or a Ray Client ``ray://host:10001``); without, it uses the Ray this process already
    joined, or starts a local instance with ``num_cpus`` CPUs. It shuts down only what it
    started, on ``close``.
    """

    name = "ray"

    def __init__(self, num_cpus: int | None = None, cpus_per_task: float = 1.0, address: str | None = None) -> None:
        self.ray = _import_ray()
        if not cpus_per_task > 0:
            raise ConfigError(f"The 'cpus_per_task' parameter of RayExecutor must be > 0; got {cpus_per_task!r} instead.")
        if num_cpus is not None and (not isinstance(num_cpus, int) or num_cpus < 1):
            raise ConfigError(f"The 'num_cpus' parameter of RayExecutor must be an int >= 1 or None; "
                              f"got {num_cpus!r} instead.")
        if address is not None and not _ADDRESS.match(str(address)):
            raise ConfigError(f"The 'address' parameter of RayExecutor must be 'auto', 'host:port' or "
                              f"'ray://host:port'; got {address!r} instead.")
        if address is not None and num_cpus is not None:
            raise ConfigError("RayExecutor: num_cpus sizes a local Ray instance; a cluster joined by address "
                              "has its own CPUs. Give one of num_cpus (workers) and address.")
        self.num_cpus = num_cpus
        self.cpus_per_task = cpus_per_task
        self.address = address
        self._started = False
        self._checked = False

    def _ensure_started(self) -> None:
        if self.address is not None and not self._checked:
            _probe(self.address)  # ray.init retries a dead address for minutes; a refused port fails now
            self._checked = True
        if self.ray.is_initialized():
            return
        if self.address is not None:
            log.info("joining the Ray cluster at %s", self.address)
            try:
                self.ray.init(address=self.address, log_to_driver=False)
            except Exception as exc:  # ConnectionError, TimeoutError, RuntimeError: all mean no cluster there
                raise ConfigError(
                    f"Could not join the Ray cluster at {self.address!r} ({type(exc).__name__}: "
                    f"{str(exc).splitlines()[0] if str(exc) else 'no message'}). Check the address "
                    "(`ray status` on the head node prints it), or leave out --ray-address to start "
                    "a local Ray instance."
                ) from None
        else:
            log.info("starting a local Ray instance (num_cpus=%s)", self.num_cpus)
            self.ray.init(num_cpus=self.num_cpus, include_dashboard=False, log_to_driver=False)
        self._started = True

    def put(self, obj: Any) -> Any:
        """``obj`` in the cluster's object store, once (a reference that ``map(shared=...)`` accepts)."""
        self._ensure_started()
        return self.ray.put(obj)

    def map(self, fn: Callable[..., R], items: Iterable[Any], *, shared: Any = None,
            progress: Progress | None = None, description: str = "jobs") -> list[R]:
        items = list(items)
        if not items:
            return []
        self._ensure_started()
        remote = self.ray.remote(num_cpus=self.cpus_per_task, max_retries=0)(_call)
        fn_ref = self.ray.put(fn)
        extra = () if shared is None else (shared if isinstance(shared, self.ray.ObjectRef) else self.ray.put(shared),)
        refs = [remote.remote(fn_ref, item, *extra) for item in items]
        where = {ref: i for i, ref in enumerate(refs)}
        results: list[Any] = [None] * len(refs)
        t0 = time.perf_counter()
        pending = list(refs)
        with (progress or NullProgress()).task(description, total=len(items)) as bar:
            while pending:
                done, pending = self.ray.wait(pending, num_returns=1)
                for ref in done:
                    i = where[ref]
                    results[i] = self.ray.get(ref)
                    log.info("%s: job %d/%d done (%d of %d finished, %.1f s)", description, i + 1, len(refs),
                             len(refs) - len(pending), len(refs), time.perf_counter() - t0)
                    bar.advance(1)
        return results

    def close(self) -> None:
        if self._started and self.ray.is_initialized():
            self.ray.shutdown()
        self._started = False

    def describe(self) -> dict[str, Any]:
        out: dict[str, Any] = {"backend": self.name, "num_cpus": self.num_cpus, "cpus_per_task": self.cpus_per_task,
                               "address": self.address}
        if self.ray.is_initialized():
            out["cluster_cpus"] = self.ray.cluster_resources().get("CPU")
        return out


def resolve(handle: Any) -> Any:
    """The object behind a handle from :meth:`Executor.put` (in a job; Ray references are fetched)."""
    if type(handle).__name__ == "ObjectRef" and type(handle).__module__.startswith("ray"):
        import ray

        return ray.get(handle)
    return handle


ExecutorFactory = Callable[..., Executor]
EXECUTORS: Registry[ExecutorFactory] = Registry("executor")
EXECUTORS.register("serial", SerialExecutor)
EXECUTORS.register("process", ProcessExecutor)
EXECUTORS.register("ray", RayExecutor)


def executor_options(backend: str, *, workers: int | None = None, address: str | None = None) -> dict[str, Any]:
    """The options of executor ``backend`` for a run's ``workers`` and ``ray_address`` settings."""
    if backend == "process":
        return {"max_workers": workers} if workers else {}
    if backend == "ray":
        return {k: v for k, v in (("num_cpus", workers), ("address", address)) if v is not None}
    return {}


def check_executor(backend: str, *, workers: int | None = None, address: str | None = None) -> list[str]:
    """The problems of a run's executor settings (empty when it can start); nothing is started."""
    problems: list[str] = []
    if backend not in EXECUTORS:
        hint = closest(backend, EXECUTORS.names())
        problems.append(f"unknown executor {backend!r}" + (f"; did you mean {hint!r}?" if hint else "")
                        + f" Options: {', '.join(EXECUTORS.names())}.")
        return problems
    if address is not None and backend != "ray":
        problems.append(f"ray_address {address!r} joins a Ray cluster; it needs executor 'ray' (got {backend!r}).")
    if backend == "ray":
        try:
            _import_ray()
        except ConfigError as exc:
            problems.append(str(exc))
        if address is not None and not _ADDRESS.match(str(address)):
            problems.append(f"ray_address {address!r} is not a Ray address: give 'auto', 'host:port' "
                            "(the head node's GCS port, 6379 by default) or 'ray://host:port' (Ray Client).")
        if address is not None and workers is not None:
            problems.append("workers sizes a local Ray instance; a cluster joined by ray_address has its own "
                            "CPUs. Leave out one of them.")
    return problems


def make_executor(backend: str | Executor = "serial", **options: Any) -> Executor:
    """An executor by name (``serial``, ``process``, ``ray``) with its options, or ``backend`` itself."""
    if isinstance(backend, Executor):
        return backend
    factory = EXECUTORS.get(backend)
    try:
        return factory(**options)
    except TypeError as exc:
        raise ConfigError(f"Bad options {sorted(options)} for executor {backend!r}: {exc}.") from None


__all__ = ["EXECUTORS", "Executor", "ProcessExecutor", "RayExecutor", "SerialExecutor", "check_executor",
           "executor_options", "make_executor", "resolve"]
