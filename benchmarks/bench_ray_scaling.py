"""Issue 18 benchmark: the same bench (and audit replicas) serially, on Ray with 1 worker and with 2.

    flock /tmp/obliviate-bench.lock .venv/bin/python benchmarks/bench_ray_scaling.py --data-dir ../shared/data

Bench: Fashion-MNIST, a 10,000-image class-stratified training subset, the default MLP
(784-512-256-10) with a 10-epoch recipe, random 10% forget, 2 seeds x 4 methods, 1 torch
thread per process. It runs four times, each with a fresh model cache (so every original
and reference is trained inside the timed run):

* ``serial``: in this process (the runner's default);
* ``ray-1``: a local Ray instance with 1 CPU (one job at a time: the overhead of Ray);
* ``ray-2``: a local Ray instance with 2 CPUs, one job per seed;
* ``ray-2-method``: 2 CPUs, a setup job per seed, then one job per (seed, method).

Wall times include starting Ray (reported apart as ``start``). Each Ray run's records
are compared with the serial run's (every field except timing fields). Audit: a digits
bench run audited with 8 replicas per side (LiRA, U-LiRA; chunks of 2, so 4 jobs per
group, one executor map per group) serially and on Ray with 1 and 2 CPUs, fresh replica caches, verdict numbers
compared. Writes ``benchmarks/results/ray_scaling.md`` and the raw timings to
``benchmarks/results/ray_scaling.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

import obliviate.removal  # noqa: F401
from obliviate.bench.audit import AuditSettings, run_audit
from obliviate.bench.runner import run_bench, write_reports
from obliviate.machine import format_load, load_average, machine_info
from obliviate.tasks import config_for

TIMING = {"wall_s", "wall_ratio", "cpu_s", "attack_s", "eval_s", "tuning_s", "trained_at", "created", "total_s"}


def strip(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: strip(v) for k, v in value.items() if k not in TIMING}
    if isinstance(value, list):
        return [strip(v) for v in value]
    return value


def same(a: Any, b: Any) -> bool:
    return json.dumps(strip(a), sort_keys=True, default=str) == json.dumps(strip(b), sort_keys=True, default=str)


RUNS = [("serial", "serial", None, "auto"), ("ray-1", "ray", 1, "auto"), ("ray-2", "ray", 2, "seed"),
        ("ray-2-method", "ray", 2, "method")]


def bench_runs(args: argparse.Namespace, root: Path) -> list[dict[str, Any]]:
    base = {"dataset": "fashion-mnist", "data_dir": args.data_dir, "train_subset": args.train_subset,
            "recipe": {"epochs": args.epochs}, "methods": args.methods.split(","), "seeds": args.seeds,
            "threads": 1, "progress": False}
    rows, serial = [], None
    for name, executor, workers, unit in RUNS:
        if args.only and name not in args.only.split(","):
            continue
        cfg = config_for({**base, "executor": executor, "workers": workers, "cache_dir": str(root / f"cache-{name}"),
                          "out": str(root / name)})
        load0 = load_average()
        t0 = time.perf_counter()
        result = run_bench(cfg, job_unit=unit)
        wall = time.perf_counter() - t0
        row = {"run": name, "executor": executor, "workers": workers, "unit": result.meta.get("executor", {}).get(
            "unit", "-"), "wall_s": wall, "load_before": load0, "load_after": load_average(),
            "start_s": result.meta.get("executor", {}).get("start_s"), "jobs": result.meta.get("executor", {}).get(
                "jobs", []), "methods_wall_s": sum(r["wall_s"] for r in result.records
                                                    if r["method"] not in ("original", "retrain")),
            "train_s": sum(m.get("original_train_s", 0) + m.get("retrain_s", 0) for m in result.meta["seeds"].values())}
        if serial is None and name == "serial":
            serial = result
            row["equal_to_serial"] = None
        else:
            row["equal_to_serial"] = None if serial is None else same(result.records, serial.records)
        rows.append(row)
        print(f"{name}: {wall:.1f} s (load {format_load(load0)} -> {format_load(row['load_after'])}), "
              f"equal to serial: {row['equal_to_serial']}", flush=True)
        if name == "serial":
            write_reports(result, root / "serial-run")
    return rows


def audit_runs(args: argparse.Namespace, root: Path) -> list[dict[str, Any]]:
    run_dir = root / "digits-run"
    cfg = config_for({"dataset": "digits", "methods": ["finetune"], "seeds": 1, "threads": 1, "progress": False,
                      "cache_dir": str(root / "cache-digits"), "out": str(run_dir)})
    write_reports(run_bench(cfg), run_dir)
    rows, serial = [], None
    for name, executor, workers in (("serial", "serial", None), ("ray-1", "ray", 1), ("ray-2", "ray", 2)):
        settings = AuditSettings(attacks=("population", "lira", "ulira"), replicas=args.replicas, chunk=2,
                                 executor=executor, workers=workers, threads=1,
                                 cache_dir=str(root / f"audit-cache-{name}"))
        load0 = load_average()
        t0 = time.perf_counter()
        audit = run_audit(run_dir, settings)
        wall = time.perf_counter() - t0
        train = sum(v["wall_s"] for k, v in audit["timing"].items() if k.startswith(("train_", "unlearn_")))
        row = {"run": name, "wall_s": wall, "replica_jobs_wall_s": train, "load_before": load0,
               "load_after": load_average(), "timing": audit["timing"],
               "equal_to_serial": None if serial is None else same(audit["methods"], serial["methods"])}
        serial = serial or audit
        rows.append(row)
        print(f"audit {name}: {wall:.1f} s (replica groups {train:.1f} s), equal: {row['equal_to_serial']}",
              flush=True)
    return rows


def table(rows: list[dict[str, Any]], base: float, key: str = "wall_s") -> list[str]:
    out = []
    for r in rows:
        out.append(f"| {r['run']} | {r.get('unit', '-')} | {r[key]:.1f} | {base / r[key]:.2f}x | "
                   f"{'-' if r.get('start_s') is None else format(r['start_s'], '.1f')} | "
                   f"{format_load(r['load_before'])} -> {format_load(r['load_after'])} | "
                   f"{'-' if r['equal_to_serial'] is None else ('yes' if r['equal_to_serial'] else 'NO')} |")
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data-dir", default=os.environ.get("OBLIVIATE_DATA", "../shared/data"))
    ap.add_argument("--train-subset", type=int, default=10000)
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--methods", default="finetune,graddiff,kl,l1_sparse")
    ap.add_argument("--seeds", type=int, default=2)
    ap.add_argument("--replicas", type=int, default=8)
    ap.add_argument("--only", default=None, help="comma-separated bench runs (serial,ray-1,ray-2,ray-2-method)")
    ap.add_argument("--no-audit", action="store_true")
    ap.add_argument("--results", default="benchmarks/results/ray_scaling.md")
    args = ap.parse_args()
    torch.set_num_threads(1)
    root = Path(tempfile.mkdtemp(prefix="obliviate-ray-"))
    started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    machine = machine_info()
    t_all = time.perf_counter()
    bench = bench_runs(args, root)
    audit = [] if args.no_audit else audit_runs(args, root)
    total = time.perf_counter() - t_all

    lines = ["### Scaling: serial vs Ray with 1 and 2 workers", "",
             "- command: `flock /tmp/obliviate-bench.lock python benchmarks/bench_ray_scaling.py "
             f"--data-dir ../shared/data` (total {total / 60:.1f} min)",
             f"- date: {started}",
             f"- machine: {machine.get('cores')} cores, {machine.get('cpu')}; "
             f"torch {torch.__version__} (1 thread per process); shared with other agents' work, see the load",
             f"- bench: Fashion-MNIST, {args.train_subset} training images (stratified subset), MLP 784-512-256-10, "
             f"{args.epochs} epochs, forget random:0.1, {args.seeds} seeds x {args.methods}; fresh model cache per run",
             "", "| run | job unit | wall s | speed-up vs serial | Ray start s | load (1/5/15) before -> after | "
             "records == serial |", "|---|---|---:|---:|---:|---|:---:|"]
    serial_wall = next(r["wall_s"] for r in bench if r["run"] == "serial") if any(
        r["run"] == "serial" for r in bench) else bench[0]["wall_s"]
    lines += table(bench, serial_wall)
    ray1 = next((r for r in bench if r["run"] == "ray-1"), None)
    for r in bench:
        if ray1 is not None and r["run"].startswith("ray-2"):
            lines.append(f"\n1 -> 2 workers ({r['run']}): {ray1['wall_s']:.1f} s -> {r['wall_s']:.1f} s = "
                         f"{ray1['wall_s'] / r['wall_s']:.2f}x (ideal 2x).")
    if audit:
        lines += ["", f"Audit replicas: a digits MLP run (30 epochs), {args.replicas} replicas per side, LiRA + U-LiRA, "
                  f"chunks of 2 ({(args.replicas + 1) // 2} jobs per group; groups trained, retrained, oracle, "
                  "unlearned:finetune, one map each), fresh replica cache per run.",
                  "", "| run | - | wall s | speed-up vs serial | replica groups s | load before -> after | "
                  "verdict numbers == serial |", "|---|---|---:|---:|---:|---|:---:|"]
        base = audit[0]["wall_s"]
        for r in audit:
            lines.append(f"| {r['run']} | - | {r['wall_s']:.1f} | {base / r['wall_s']:.2f}x | "
                         f"{r['replica_jobs_wall_s']:.1f} | {format_load(r['load_before'])} -> "
                         f"{format_load(r['load_after'])} | "
                         f"{'-' if r['equal_to_serial'] is None else ('yes' if r['equal_to_serial'] else 'NO')} |")
    text = "\n".join(lines) + "\n"
    print(text)
    Path(args.results).write_text(text)
    Path(args.results).with_suffix(".json").write_text(json.dumps(
        {"date": started, "machine": machine, "bench": bench, "audit": audit, "total_s": total}, indent=1,
        default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
