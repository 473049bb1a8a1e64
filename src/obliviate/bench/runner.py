"""The one runner: any task's config -> original -> exact reference -> methods -> records.

The runner only orchestrates; the task (:mod:`obliviate.tasks`) knows its data,
models and metrics, and the reporters (:mod:`obliviate.report`) write the files.
Every run returns one :class:`BenchResult` (``config``, ``records``, ``meta``).
"""

from __future__ import annotations

import json
import logging
import os
import time
from typing import Any

from obliviate.audit.memorization import using_cache
from obliviate.data.dataset import DataBundle
from obliviate.errors import ConfigError
from obliviate.machine import library_versions, load_average, machine_info
from obliviate.progress import NullProgress, Progress
from obliviate.removal.base import Budget
from obliviate.tasks import BASELINE, REFERENCE, TASKS, RunConfig, Task
from obliviate.tasks.base import BenchResult

log = logging.getLogger(__name__)

__all__ = ["BASELINE", "REFERENCE", "BenchResult", "LMResult", "make_task", "run_bench", "machine_info",
           "summarise", "write_reports"]


LMResult = BenchResult  # one result record for every task


def make_task(cfg: RunConfig, *, bundle: DataBundle | None = None) -> Task:
    """The task object for ``cfg`` (``bundle`` replaces a classifier run's data loading)."""
    import obliviate.removal  # noqa: F401  (registers every method)

    task_cls = TASKS.get(cfg.task)
    if bundle is not None:
        if cfg.task != "classification":
            raise ConfigError(f"bundle= gives array data to a classifier run; the {cfg.task!r} task loads its own.")
        return task_cls(cfg, bundle=bundle)  # type: ignore[call-arg]
    return task_cls(cfg)


def run_bench(cfg: RunConfig, *, progress: Progress | None = None, bundle: DataBundle | None = None) -> BenchResult:
    """Run the benchmark described by ``cfg`` (any task). ``bundle`` overrides a classifier run's data."""
    progress = progress or NullProgress()
    task = make_task(cfg, bundle=bundle)
    methods = task.preflight()
    task.setup()
    budget = Budget(**cfg.budget.model_dump())
    cache = task.cache()
    meta: dict[str, Any] = {**task.run_meta(), "methods": [BASELINE, REFERENCE, *methods],
                            "machine": machine_info(), "started": time.strftime("%Y-%m-%d %H:%M:%S"),
                            "cwd": os.getcwd(), "seeds": {}}
    records: list[dict[str, Any]] = []
    t0, c0 = time.perf_counter(), time.process_time()
    with using_cache(cache):  # memorisation scores (memorized:* forget sets, --strata) honour the run's cache
        for seed in cfg.seeds:
            run = task.seed_run(seed, cache=cache, progress=progress)
            records += run.reference_records()
            records += run.run_methods(methods, budget, progress)
            meta["seeds"][str(seed)] = run.meta
    meta["finished"] = time.strftime("%Y-%m-%d %H:%M:%S")
    meta["wall_s"], meta["cpu_s"] = time.perf_counter() - t0, time.process_time() - c0
    meta["load_average"] = load_average()  # at the end; meta["machine"] holds it at the start
    meta["versions"] = library_versions()
    cached = [m["retrain_cached_from"] for m in meta["seeds"].values() if m.get("retrain_cached_from")]
    if cached:
        meta["retrain_cached_from"] = "; ".join(cached)
    return BenchResult(config=json.loads(cfg.model_dump_json()), records=records, meta=meta)


def write_reports(result: BenchResult, out: str | Any) -> dict[str, Any]:
    """Write ``results.json``, ``config.json``, ``meta.json``, ``report.md`` and ``report.html`` of any task's run."""
    from obliviate import report

    return report.write_reports(result, out)


def summarise(result: BenchResult) -> str:
    """The summary and tables shown on the terminal."""
    from obliviate import report

    return report.summary_markdown(result)
