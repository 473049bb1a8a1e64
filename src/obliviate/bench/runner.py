"""The one runner: any task's config -> original -> exact reference -> methods -> records.

The runner only orchestrates; the task (:mod:`obliviate.tasks`) knows its data,
models and metrics, and the reporters (:mod:`obliviate.report`) write the files.
Every run returns one :class:`BenchResult` (``config``, ``records``, ``meta``).

``cfg.executor`` says where the seeds and methods run: ``serial`` in this process,
``process`` or ``ray`` as jobs (:mod:`obliviate.bench.jobs`) that give the same records
in the same order (records differ only in timing fields).
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
from obliviate.bench.jobs import JOB_UNITS, JobContext, MethodJob, SeedJob, method_job, seed_job

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


def run_bench(cfg: RunConfig, *, progress: Progress | None = None, bundle: DataBundle | None = None,
              job_unit: str = "auto") -> BenchResult:
    """Run the benchmark described by ``cfg`` (any task). ``bundle`` overrides a classifier run's data.

    ``job_unit`` (for the ``process`` and ``ray`` executors): ``seed`` (one job per seed),
    ``method`` (a setup job per seed, then one job per seed and method), or ``auto``:
    ``seed`` when there are at least as many seeds as worker CPUs, else ``method``.
    """
    if job_unit not in JOB_UNITS:
        raise ConfigError(f"The 'job_unit' parameter of run_bench must be one of {', '.join(JOB_UNITS)}; "
                          f"got {job_unit!r} instead.")
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
    if cfg.executor == "serial":
        with using_cache(cache):  # memorisation scores (memorized:* forget sets, --strata) honour the run's cache
            for seed in cfg.seeds:
                run = task.seed_run(seed, cache=cache, progress=progress)
                records += run.reference_records()
                records += run.run_methods(methods, budget, progress)
                meta["seeds"][str(seed)] = run.meta
    else:
        records, meta["seeds"], meta["executor"] = _run_jobs(task, cfg, methods, cache, progress, job_unit)
    meta["finished"] = time.strftime("%Y-%m-%d %H:%M:%S")
    meta["wall_s"], meta["cpu_s"] = time.perf_counter() - t0, time.process_time() - c0
    meta["load_average"] = load_average()  # at the end; meta["machine"] holds it at the start
    meta["versions"] = library_versions()
    cached = [m["retrain_cached_from"] for m in meta["seeds"].values() if m.get("retrain_cached_from")]
    if cached:
        meta["retrain_cached_from"] = "; ".join(cached)
    return BenchResult(config=json.loads(cfg.model_dump_json()), records=records, meta=meta)


def _slots(ex: Any, cfg: RunConfig) -> int:
    """How many jobs the executor runs at once (the CPUs of a Ray cluster, the pool's workers)."""
    cpus = ex.describe().get("cluster_cpus")
    if cpus:
        return max(1, int(cpus // getattr(ex, "cpus_per_task", 1.0)))
    return cfg.workers or os.cpu_count() or 1


def _run_jobs(task: Task, cfg: RunConfig, methods: list[str], cache: Any, progress: Progress,
              job_unit: str) -> tuple[list[dict[str, Any]], dict[str, Any], dict[str, Any]]:
    """The seeds and methods as jobs on ``cfg.executor``; records in the serial runner's order."""
    from obliviate.engine.executor import executor_options, make_executor

    seeds = list(cfg.seeds)
    ctx = JobContext(task=task, cache=cache, budget=cfg.budget.model_dump())
    t0 = time.perf_counter()
    with make_executor(cfg.executor, **executor_options(cfg.executor, workers=cfg.workers,
                                                        address=cfg.ray_address)) as ex:
        t_start = time.perf_counter()
        shared = ex.put(ctx)  # the task and its data travel once (Ray starts here)
        slots = _slots(ex, cfg)
        unit = job_unit if job_unit != "auto" else ("seed" if len(seeds) >= slots or not methods else "method")
        info: dict[str, Any] = {**ex.describe(), "unit": unit, "slots": slots, "jobs": [],
                                "start_s": time.perf_counter() - t_start}
        log.info("running %d seed(s) x %d method(s) on %s as %s jobs (%d at once)", len(seeds), len(methods),
                 cfg.executor, unit, slots)
        if unit == "seed":
            outs = ex.map(seed_job, [SeedJob(s, list(methods)) for s in seeds], shared=shared, progress=progress,
                          description=f"seeds on {cfg.executor}")
            records = [r for o in outs for r in o.records]
            info["jobs"] = [{"seed": s, "methods": list(methods), **o.job} for s, o in zip(seeds, outs, strict=True)]
        else:
            outs = ex.map(seed_job, [SeedJob(s, [], ship=True) for s in seeds], shared=shared, progress=progress,
                          description=f"setup (original + reference) on {cfg.executor}")
            # each seed's model states go to the object store once, not once per method job
            handles = [ex.put(o.shipped) for o in outs]
            jobs = [MethodJob(s, m, h) for s, h in zip(seeds, handles, strict=True) for m in methods]
            done = ex.map(method_job, jobs, shared=shared, progress=progress,
                          description=f"methods on {cfg.executor}")
            info["jobs"] = [{"seed": s, "setup": True, **o.job} for s, o in zip(seeds, outs, strict=True)]
            info["jobs"] += [{"seed": j.seed, "method": j.method, **where} for j, (_, where) in zip(jobs, done,
                                                                                                    strict=True)]
            info["shipped_models"] = {str(s): len(o.shipped) for s, o in zip(seeds, outs, strict=True)}
            by_seed = {s: [rec for j, (rec, _) in zip(jobs, done, strict=True) if j.seed == s] for s in seeds}
            records = [r for s, o in zip(seeds, outs, strict=True) for r in (*o.records, *by_seed[s])]
    info["wall_s"] = time.perf_counter() - t0
    return records, {str(s): o.meta for s, o in zip(seeds, outs, strict=True)}, info


def write_reports(result: BenchResult, out: str | Any) -> dict[str, Any]:
    """Write ``results.json``, ``config.json``, ``meta.json``, ``report.md`` and ``report.html`` of any task's run."""
    from obliviate import report

    return report.write_reports(result, out)


def summarise(result: BenchResult) -> str:
    """The summary and tables shown on the terminal."""
    from obliviate import report

    return report.summary_markdown(result)
