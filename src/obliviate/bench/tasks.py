"""Registry of benchmark tasks (``obliviate bench --task NAME``).

A task is a config model (pydantic, validated with nearest-key errors), a
runner that turns the config into a result, and a reporter that writes the
result's files and returns a Markdown summary. Classifier benchmarks are the
``classification`` task; language-model benchmarks register their own.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from obliviate.progress import Progress
from obliviate.registry import Registry


@dataclass(frozen=True)
class BenchTask:
    config_cls: type
    run: Callable[..., Any]                        # (config, *, progress) -> result
    write: Callable[[Any, str | Path], dict[str, Path]]  # (result, out) -> written paths
    summary: Callable[[Any], str]                  # result -> Markdown shown on the terminal
    description: str = ""


BENCH_TASKS: Registry[BenchTask] = Registry("bench task")


def _classification() -> BenchTask:
    from obliviate.bench.config import BenchConfig
    from obliviate.bench.runner import run_bench
    from obliviate.report.classifier import to_markdown, write_reports

    def run(cfg: Any, *, progress: Progress) -> Any:
        return run_bench(cfg, progress=progress)

    return BenchTask(BenchConfig, run, write_reports, to_markdown, "PyTorch classifiers on array data")


BENCH_TASKS.register("classification", _classification())
import obliviate.bench.lm_tasks  # noqa: E402,F401  (registers the language-model tasks persons and tofu)
