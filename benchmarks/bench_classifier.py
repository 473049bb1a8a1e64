"""Issue 2 benchmark: Fashion-MNIST, MLP, random 10% forget, every method, N seeds.

    .venv/bin/python benchmarks/bench_classifier.py --data-dir ../shared/data --seeds 3

Trains the original and the retrained model of every seed in this run (a fresh
model cache, so retraining time is measured here and not borrowed from another
machine or load), runs every registered classifier method with its defaults,
and writes the full report to ``runs/bench-fashion`` and a Markdown summary
with machine, date and load to ``benchmarks/results/classifier.md``.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path


import obliviate.removal  # noqa: F401
from obliviate.bench import BenchConfig, run_bench
from obliviate.machine import format_load, load_average
from obliviate.progress import get_progress
from obliviate.report.aggregate import fmt, summarise
from obliviate.report.classifier import COLUMNS, METRICS, write_reports


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dataset", default="fashion-mnist")
    ap.add_argument("--data-dir", default=os.environ.get("OBLIVIATE_DATA", "../shared/data"))
    ap.add_argument("--model", default="mlp")
    ap.add_argument("--forget", default="random:0.1")
    ap.add_argument("--methods", default="all")
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--out", default="runs/bench-fashion")
    ap.add_argument("--results", default="benchmarks/results/classifier.md")
    ap.add_argument("--cache-dir", default=None, help="reuse trained models from here (default: a fresh temp dir)")
    ap.add_argument("--no-progress", action="store_true")
    ap.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    args = ap.parse_args()

    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    load_before = load_average()
    cache = args.cache_dir or tempfile.mkdtemp(prefix="obliviate-bench-")
    cfg = BenchConfig(dataset=args.dataset, data_dir=args.data_dir, model=args.model, forget=args.forget,
                      methods=args.methods, seeds=args.seeds, out=args.out, cache_dir=cache,
                      progress=not args.no_progress)
    t0 = time.time()
    result = run_bench(cfg, progress=get_progress(cfg.progress))
    wall = time.time() - t0
    write_reports(result, args.out)
    load_after = load_average()

    summary = summarise(result.records, METRICS)
    movers = [r for r in summary if r["method"] not in ("original", "retrain")]
    eligible = [r for r in movers if r["wall_ratio"][0] <= 0.10]
    best = max(eligible, key=lambda r: r["tow"][0]) if eligible else None
    m = result.meta
    lines = [
        f"### {args.dataset}, {args.model}, forget `{args.forget}`, {args.seeds} seeds",
        "",
        f"- command: `.venv/bin/python benchmarks/bench_classifier.py --dataset {args.dataset} --model {args.model} "
        f"--forget {args.forget} --methods {args.methods} --seeds {args.seeds}"
        + (f" --threads {args.threads}" if args.threads else "") + "`",
        f"- date: {time.strftime('%Y-%m-%d %H:%M %Z')}; total wall time {wall / 60:.1f} min",
        f"- machine: {m['machine']['cpu']}, {m['machine']['cores']} cores, torch {m['machine']['torch']} "
        f"({m['machine']['torch_threads']} threads); load average before/after: "
        f"{format_load(load_before and load_before[:1], digits=1)} / "
        f"{format_load(load_after and load_after[:1], digits=1)}",
        f"- recipe: {m['recipe']}",
        "- original train accuracy per seed: "
        + ", ".join(f"{s['original_train_acc']:.4f}" for s in m["seeds"].values())
        + "; retrain seconds per seed: " + ", ".join(f"{s['retrain_s']:.1f}" for s in m["seeds"].values()),
        "",
        "| method | " + " | ".join(label for _, label in COLUMNS) + " |",
        "|---" * (len(COLUMNS) + 1) + "|",
    ]
    for row in summary:
        lines.append(f"| {row['method']} | " + " | ".join(fmt(row[c]) for c, _ in COLUMNS) + " |")
    lines.append("")
    if best is not None:
        lines.append(f"Best method within 10% of retraining time: **{best['method']}**, ToW {fmt(best['tow'])} "
                     f"at time ratio {fmt(best['wall_ratio'])} (goal: ToW >= 0.95 at <= 0.10): "
                     f"{'met' if best['tow'][0] >= 0.95 else 'NOT met'}.")
    else:
        lines.append("No method finished within 10% of retraining time.")
    text = "\n".join(lines) + "\n"
    Path(args.results).parent.mkdir(parents=True, exist_ok=True)
    Path(args.results).write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
