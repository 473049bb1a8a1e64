"""Full strong audit on Fashion-MNIST (MLP): bench run, then ``obliviate audit`` with N replicas per side.

Runs the classifier benchmark (retrain, finetune and the two best approximate methods of
issue 2, graddiff and kl) on Fashion-MNIST with the built-in MLP (784-512-256-10) and the
dataset's recipe (Adam 1e-3, cosine, batch 128) with ``--epochs`` (default 100, so that the
original fits its training subset), then the strong audit of that run:
N retrained, N trained-then-unlearned (per method) and N oracle replicas, LiRA, U-LiRA, the
challenge score and the relearning attack. Writes ``benchmarks/results/strong_audit.md`` with
the command, machine, date, load average, wall times and the per-method table.

Every replica is trained inside the timed run (a fresh replica cache unless --cache-dir is given).

``--train-subset N`` trains on a class-stratified random N of the 60,000 training images
(the bench's ``train_subset``; the 10,000 test images are kept whole). The audit trains
3 x replicas models with the full recipe, so its cost grows with N; the report states the
subset and an extrapolation to the full training set.

Usage:
    .venv/bin/python benchmarks/bench_strong_audit.py --data-dir ../shared/data --threads 1
"""

from __future__ import annotations

import argparse
import datetime as dt
import shlex
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

REPO = Path(__file__).resolve().parents[1]
METHODS = "retrain,finetune,graddiff,kl"


def _f(x: Any, digits: int = 3) -> str:
    return f"{x:.{digits}f}" if isinstance(x, (int, float)) else "n/a"


def _ci(pair: Any) -> str:
    if not pair or pair[0] is None:
        return "n/a"
    mean, half = pair
    return f"{mean:+.3f} ± {half:.3f}" if isinstance(half, (int, float)) else f"{mean:+.3f}"


def table(audit: dict[str, Any]) -> list[str]:
    head = ("| method | weak: MIA AUC | weak passes | U-LiRA acc | F | final score | LiRA AUC | "
            "LiRA TPR@1% FPR | LiRA TPR@0.1% FPR | relearn after-gap | relearn excess | caught by |")
    lines = [head, "|---|---:|:---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"]
    for name, m in audit["methods"].items():
        v = m["verdict"]
        lines.append(
            f"| {name} | {_f(m['population'].get('mia_auc'))} | {'yes' if v['weak_passes'] else 'no'} | "
            f"{_f(m['ulira']['mean_accuracy'])} | {_f(m['challenge']['F'])} | {_f(m['challenge']['final_score'])} | "
            f"{_f(m['lira']['online']['auc'])} | {_f(m['lira']['online']['tpr_at_1pct'], 4)} | "
            f"{_f(m['lira']['online']['tpr_at_0_1pct'], 4)} | {_ci(m['relearn']['after_gap_ci'])} | "
            f"{_ci(m['relearn']['excess_recovery_ci'])} | {', '.join(v['caught_by']) or '-'} |")
    return lines


def _mlp_widths(cfg: Any) -> list[int]:
    hidden = list(dict(cfg.model_options).get("hidden", (512, 256)))
    return [784, *hidden, 10]


def train_flop_per_example(widths: list[int]) -> float:
    """FLOP of one training example-pass of an MLP with these layer widths.

    Forward 2*in*out per layer, weight gradient 2*in*out, input gradient 2*in*out for every layer
    but the first (the data need no gradient); biases and activations are ignored (< 1%).
    """
    macs = [a * b for a, b in zip(widths[:-1], widths[1:])]
    return 2.0 * (2 * sum(macs) + sum(macs[1:]))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data-dir", default=str(REPO.parent / "shared" / "data"))
    ap.add_argument("--train-subset", type=int, default=1500,
                    help="class-stratified training images drawn from the 60k (0 = all of them)")
    ap.add_argument("--replicas", type=int, default=32)
    ap.add_argument("--epochs", type=int, default=100,
                    help="training epochs (the original must fit its training data: on the 1,500-image "
                         "subset the data set's 40 epochs fit only 95%%, 100 epochs fit 100%%)")
    ap.add_argument("--lr", type=float, default=None, help="learning rate (default: the data set's recipe)")
    ap.add_argument("--batch-size", type=int, default=None, help="batch size (default: the data set's recipe)")
    ap.add_argument("--methods", default=METHODS)
    ap.add_argument("--forget", default="random:0.1")
    ap.add_argument("--relearn-steps", type=int, default=20)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=REPO / "runs" / "strong-audit")
    ap.add_argument("--cache-dir", default=None, help="replica/model cache (default: a fresh temporary one, so "
                                                      "every model is trained inside the timed run)")
    ap.add_argument("--results", type=Path, default=REPO / "benchmarks" / "results" / "strong_audit.md")
    ap.add_argument("--progress", action="store_true")
    ap.add_argument("--executor", default="serial", choices=["serial", "process", "ray"],
                    help="where replica chunks train (process: one worker per core)")
    ap.add_argument("--workers", type=int, default=None, help="executor workers (default: the executor's own)")
    ap.add_argument("--precision", default="float32", choices=["float32", "bfloat16"],
                    help="replica training precision (bfloat16: autocast-style matmuls, float32 master weights)")
    ap.add_argument("--chunk", type=int, default=8, help="replicas trained together in one job")
    ap.add_argument("--bench-threads", type=int, default=None,
                    help="torch threads for the bench phase (default: --threads)")
    ap.add_argument("--goal-min", type=float, default=15.0, help="wall-time goal in minutes (reported, never tuned)")
    args = ap.parse_args(argv)

    torch.set_num_threads(args.bench_threads or args.threads)
    from obliviate.bench.audit import AuditSettings, run_audit, write_audit
    from obliviate.tasks.classification import BenchConfig
    from obliviate.bench.runner import run_bench
    from obliviate.config import validate
    from obliviate.machine import format_load, load_average, machine_info
    from obliviate.progress import get_progress
    from obliviate.report.classifier import write_reports

    cache = args.cache_dir or tempfile.mkdtemp(prefix="strong-audit-cache-")
    progress = get_progress(args.progress)
    load_before = format_load(load_average())
    started = dt.datetime.now(dt.timezone.utc)
    t0 = time.perf_counter()
    cfg = validate(BenchConfig, {
        "dataset": "fashion-mnist", "data_dir": args.data_dir, "model": "mlp", "forget": args.forget,
        "methods": args.methods.split(","), "seeds": [args.seed], "threads": args.threads,
        "out": str(args.out), "cache_dir": cache, "progress": args.progress,
        "train_subset": args.train_subset or None, "recipe": {"epochs": args.epochs, **({"lr": args.lr} if args.lr else {}),
                   **({"batch_size": args.batch_size} if args.batch_size else {})},
    }, source="bench_strong_audit")
    result = run_bench(cfg, progress=progress)
    write_reports(result, args.out)
    bench_s = time.perf_counter() - t0
    print(f"bench done in {bench_s:.1f} s (load {format_load(load_average())})", flush=True)
    torch.set_num_threads(args.threads)
    t1 = time.perf_counter()
    settings = AuditSettings(replicas=args.replicas, threads=args.threads, relearn_steps=args.relearn_steps,
                             cache_dir=cache, executor=args.executor, workers=args.workers,
                             precision=args.precision, chunk=args.chunk)
    audit = run_audit(args.out, settings, progress=progress)
    write_audit(args.out, audit)
    audit_s = time.perf_counter() - t1
    total_s = time.perf_counter() - t0
    load_after = format_load(load_average())

    seed_meta = result.meta["seeds"][str(args.seed)]
    timing = audit["timing"]
    n_train = audit["data"]["n_train"]
    train_compute = sum(timing[f"train_{g}"]["compute_s"] for g in ("trained", "retrained", "oracle"))
    n_models = 3 * args.replicas
    epochs = audit["recipe"]["epochs"]
    examples = args.replicas * epochs * (n_train + 2 * audit["data"]["n_retain"])
    flop_per_example = train_flop_per_example(_mlp_widths(cfg))
    train_flop = examples * flop_per_example
    command = "python " + " ".join(shlex.quote(a) for a in [
        "benchmarks/bench_strong_audit.py", *(sys.argv[1:] if argv is None else argv)])
    scale = 60_000 / n_train
    machine = machine_info()
    lines = [
        "## Strong audit on Fashion-MNIST (MLP)",
        "",
        f"- command: `{command}`",
        f"- date: {started.strftime('%Y-%m-%d %H:%M UTC')}",
        f"- machine: {machine['cores']} cores, {machine['cpu']}; torch {machine['torch']} ({machine['torch_threads']} "
        f"thread(s)), Python {machine['python']}",
        f"- load average (1/5/15 min) before -> after: {load_before} -> {load_after}",
        f"- data: Fashion-MNIST, {n_train} training images"
        + (f" (class-stratified subset of 60,000; `train_subset={args.train_subset}`)" if args.train_subset else "")
        + f", forget `{args.forget}` = {audit['data']['n_forget']} examples, {audit['data']['n_test']} test images; "
        f"original train accuracy {seed_meta['original_train_acc']:.4f}",
        f"- model: MLP 784-512-256-10; recipe {audit['recipe']}",
        f"- audit: {args.replicas} replicas per side ({n_models} models trained from scratch + "
        f"{args.replicas} unlearned per approximate method), attacks {', '.join(audit['attacks'])}; "
        f"relearning {args.relearn_steps} Adam steps on half the forget set, first "
        f"{min(args.replicas, settings.relearn_models)} models per group; cold cache; replica chunks of "
        f"{settings.chunk} on the {args.executor} executor" + (f" ({args.workers} workers)" if args.workers else ""),
        f"- replica training precision: {args.precision}; bench phase {args.bench_threads or args.threads} "
        "torch thread(s)",
        f"- **total wall time {total_s / 60:.1f} min** (bench {bench_s:.0f} s + audit {audit_s:.0f} s; "
        f"goal <= {args.goal_min:g} min on 2 cores: {'met' if total_s <= 60 * args.goal_min else 'NOT met'})",
        "",
        "| phase | wall s |",
        "|---|---:|",
        f"| bench (original, retrain, {', '.join(m for m in args.methods.split(',') if m != 'retrain')}) | {bench_s:.1f} |",
    ]
    for key, val in timing.items():
        if isinstance(val, dict):
            lines.append(f"| audit: {key} | {val['wall_s']:.1f} |")
    lines += [
        f"| audit total | {audit_s:.1f} |",
        "",
        f"Replica training: {n_models} models, {examples / 1e6:.1f} M example-passes in {train_compute:.0f} s "
        f"of worker time = {n_models / train_compute * 60:.1f} models/min, {examples / train_compute:.0f} "
        "examples/s per worker; "
        f"{flop_per_example / 1e6:.2f} MFLOP per example-pass (forward, weight and input gradients), "
        f"{train_flop / 1e12:.1f} TFLOP in all = {train_flop / train_compute / 1e9:.0f} GFLOP/s per worker, "
        f"{train_flop / max(timing['train_trained']['wall_s'] + timing['train_retrained']['wall_s'] + timing['train_oracle']['wall_s'], 1e-9) / 1e9:.0f} GFLOP/s wall. "
        + (f"On all 60,000 training images every phase scales about linearly in the training-set size, "
           f"so this run would take about {total_s * scale / 3600:.1f} h on the same machine and load "
           f"({scale:.0f}x); that is why it uses a subset." if args.train_subset else ""),
        "",
        *table(audit),
        "",
        "Weak vs strong: " + " ".join(audit["flags"]),
        "",
        "Thresholds: " + "; ".join(audit["threshold_text"]) + ".",
        "",
        f"Report with ROC plots: `{args.out.relative_to(REPO) if args.out.is_relative_to(REPO) else args.out}/report.html`.",
        "",
    ]
    text = "\n".join(lines)
    print(text)
    args.results.parent.mkdir(parents=True, exist_ok=True)
    args.results.write_text("# Benchmark: strong audit\n\n" + text)
    # the raw records behind every number above: the run's per-method records and the whole audit
    raw = args.results.with_suffix("")
    raw.mkdir(parents=True, exist_ok=True)
    for name in ("results.json", "meta.json", "audit.json"):
        if (args.out / name).exists():
            shutil.copyfile(args.out / name, raw / name)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
