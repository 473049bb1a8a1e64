"""The runner layer: one runner for every task, and the strong-audit orchestration."""

from obliviate.bench.runner import BenchResult, run_bench
from obliviate.tasks.classification import BenchConfig
from obliviate.tasks.lm_config import LMBenchConfig

__all__ = ["BenchConfig", "BenchResult", "LMBenchConfig", "run_bench"]
