"""Benchmark orchestration: configs and runners that tie data, training, removal and audit together."""

from obliviate.bench.config import BenchConfig
from obliviate.bench.runner import BenchResult, run_bench

__all__ = ["BenchConfig", "BenchResult", "run_bench"]
