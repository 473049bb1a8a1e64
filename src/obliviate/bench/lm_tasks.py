"""Registers the language-model bench tasks ``persons`` and ``tofu`` (imported by ``bench.tasks``)."""

from __future__ import annotations

from typing import Any

from obliviate.bench.lm_config import LMBenchConfig
from obliviate.bench.tasks import BENCH_TASKS, BenchTask
from obliviate.progress import Progress


def _run(cfg: Any, *, progress: Progress) -> Any:
    from obliviate.bench.lm_runner import run_lm_bench

    return run_lm_bench(cfg, progress=progress)


def _write(result: Any, out: Any) -> Any:
    from obliviate.report.lm import write_reports

    return write_reports(result, out)


def _summary(result: Any) -> str:
    from obliviate.report.lm import to_markdown

    return to_markdown(result)


BENCH_TASKS.register("persons", BenchTask(LMBenchConfig, _run, _write, _summary,
                                          "causal LM on the fictitious-persons QA corpus (TOFU protocol)"))
BENCH_TASKS.register("tofu", BenchTask(LMBenchConfig, _run, _write, _summary,
                                       "causal LM on TOFU (--split forget01|forget05|forget10)"))
