"""Issue 3 benchmark: every classifier method on several data sets, models and forget sets.

    # one process per (dataset, model) pair; they share one model cache and can run side by side
    # (the commands behind BENCHMARKS.md: Fashion-MNIST needs 120 epochs to fit its subset, the CNN
    # runs on a 2,500-image subset)
    .venv/bin/python benchmarks/bench_methods.py run --pair fashion-mnist:mlp --epochs 120 --data-dir ../shared/data
    .venv/bin/python benchmarks/bench_methods.py run --pair mnist:mlp --data-dir ../shared/data
    .venv/bin/python benchmarks/bench_methods.py run --pair mnist:cnn --train-subset 2500 --data-dir ../shared/data
    # then one summary of all of them: benchmarks/results/methods.md and a ToW-vs-time plot
    .venv/bin/python benchmarks/bench_methods.py summarise

Each pair is run on three forget sets (``random:0.1``, ``class:0`` and
``memorized-stratum:high``, 10% of the training set drawn from its most-memorised
tercile) for N seeds (default 3), with every registered classifier method at its
defaults and the per-memorisation-stratum breakdown on. The original of each seed is
trained once and shared by the three forget sets (the model cache); the retrained
reference is trained per forget set and seed, in the same process as the methods, so
time ratios are taken under the same load.

The training set is a class-stratified subset (default 5,000 examples, the same for
every seed; the full 10,000-example test set is kept) so that 3 pairs x 3 forget sets
x 3 seeds x every method fit in about an hour on 2 CPU cores. Each run's full report
(HTML with plots) is written under ``runs/bench-methods/``; the raw per-seed records of each
cell are copied to ``benchmarks/results/methods_cells/`` so that ``summarise`` can rebuild the
summary without the run folders.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RUNS = ROOT / "runs" / "bench-methods"
RESULTS = ROOT / "benchmarks" / "results"
# Each finished cell's raw records are also copied here (small JSON, committed with the results), so a
# later summary can be rebuilt without the run folders, which hold models and are not kept.
CELLS = RESULTS / "methods_cells"
CELL_FILES = ("results.json", "config.json", "meta.json", "bench_info.json")
FORGETS = ("random:0.1", "class:0", "memorized-stratum:high")
TIME_GOAL, TOW_GOAL = 0.05, 0.97
COLUMNS = [("ua", "UA"), ("ra", "RA"), ("ta", "TA"), ("tow", "ToW"), ("tow_gap_closed", "gap closed"),
           ("mia_auc", "MIA AUC"), ("wall_ratio", "time ratio")]


def _slug(pair: str, forget: str) -> str:
    return f"{pair.replace(':', '-')}_{forget.replace(':', '-')}"


def run(args: argparse.Namespace) -> int:
    import torch

    from obliviate.tasks.classification import BenchConfig
    from obliviate.bench.runner import run_bench
    from obliviate.machine import load_average
    from obliviate.progress import get_progress
    from obliviate.report.classifier import write_reports

    torch.set_num_threads(args.threads)
    dataset, model = args.pair.split(":")
    cache = Path(args.cache_dir).resolve()
    os.environ.setdefault("OBLIVIATE_CACHE", str(cache))  # memorisation scores are cached there too
    for forget in args.forget.split(","):
        slug = _slug(args.pair, forget)
        load_before = load_average()
        t0 = time.time()
        cfg = BenchConfig(dataset=dataset, data_dir=args.data_dir, model=model, forget=forget, methods=args.methods,
                          seeds=args.seeds, train_subset=args.train_subset, strata=True, cache_dir=str(cache),
                          threads=args.threads, progress=not args.no_progress, out=str(RUNS / slug),
                          recipe={"epochs": args.epochs} if args.epochs else {})
        result = run_bench(cfg, progress=get_progress(cfg.progress))
        write_reports(result, RUNS / slug)
        info = {"pair": args.pair, "forget": forget, "wall_min": (time.time() - t0) / 60,
                "load_before": load_before and load_before[0], "load_after": (load_average() or [None])[0],
                "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
                "command": " ".join(["benchmarks/bench_methods.py", *sys.argv[1:]])}
        (RUNS / slug / "bench_info.json").write_text(json.dumps(info, indent=2))
        (CELLS / slug).mkdir(parents=True, exist_ok=True)
        for name in CELL_FILES:
            shutil.copyfile(RUNS / slug / name, CELLS / slug / name)
        print(f"{slug}: {info['wall_min']:.1f} min", flush=True)
    return 0


def _load(slug_dir: Path) -> tuple[Any, dict[str, Any]] | None:
    from obliviate.bench.runner import BenchResult

    need = [slug_dir / n for n in CELL_FILES]
    if not all(p.is_file() for p in need):
        return None
    records, config, meta, info = (json.loads(p.read_text()) for p in need)
    return BenchResult(config=config, records=records, meta=meta), info


def summarise_runs(args: argparse.Namespace) -> int:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from obliviate.report.aggregate import fmt, summarise
    from obliviate.report.classifier import STRATUM_COLUMNS

    found: dict[str, Path] = {}
    for root in (CELLS, RUNS):  # a run folder wins over the archived copy of the same cell
        for d in sorted(root.iterdir()) if root.is_dir() else []:
            found[d.name] = d
    cells = []
    for slug, d in sorted(found.items()):
        if args.pairs and not any(slug.startswith(p.replace(":", "-") + "_") for p in args.pairs.split(",")):
            continue
        loaded = _load(d)
        if loaded is not None:
            cells.append((slug, *loaded))
    if not cells:
        print(f"no finished runs under {RUNS}", file=sys.stderr)
        return 1
    order = {p: i for i, p in enumerate(("fashion-mnist:mlp", "mnist:mlp", "mnist:cnn"))}
    cells.sort(key=lambda c: (order.get(c[2]["pair"], 9), FORGETS.index(c[2]["forget"])
                              if c[2]["forget"] in FORGETS else 9))
    metrics = [c for c, _ in COLUMNS] + [c for c, _ in STRATUM_COLUMNS]
    lines = ["# Classifier methods across data sets, models and forget sets (issue 3)", ""]
    tow_by: dict[tuple[str, str], dict[str, tuple[float, float]]] = {}
    overview: list[str] = []
    rows = (len(cells) + 2) // 3
    fig, axes = plt.subplots(rows, 3, figsize=(15, 4.2 * rows), squeeze=False)
    for k, (slug, result, info) in enumerate(cells):
        meta = result.meta
        summary = summarise(result.records, metrics)
        seeds = meta["seeds"].values()
        lines += [
            f"## {info['pair']}, forget `{info['forget']}`",
            "",
            f"- command: `.venv/bin/python {info['command']}`; date {info['date']}; wall {info['wall_min']:.1f} min; "
            f"load average before/after {info['load_before']:.1f} / {info['load_after']:.1f}",
            f"- machine: {meta['machine']['cpu']}, {meta['machine']['cores']} cores, torch {meta['machine']['torch']} "
            f"({meta['machine']['torch_threads']} thread(s)); train {meta['n_train']} (stratified subset), "
            f"test {meta['n_test']}; recipe {meta['recipe']}",
            "- original train accuracy per seed: " + ", ".join(f"{s['original_train_acc']:.4f}" for s in seeds)
            + "; forget set size: " + ", ".join(str(s["n_forget"]) for s in seeds)
            + "; retrain seconds: " + ", ".join(f"{s['retrain_s']:.1f}" for s in seeds),
            "",
            "| method | " + " | ".join(label for _, label in COLUMNS) + " | gap closed low / mid / high |",
            "|---" * (len(COLUMNS) + 2) + "|",
        ]
        for row in summary:
            strata = " / ".join(f"{row[f'gap_closed_{s}'][0]:.2f}" for s in ("low", "mid", "high"))
            lines.append(f"| {row['method']} | " + " | ".join(fmt(row[c]) for c, _ in COLUMNS) + f" | {strata} |")
        movers = [r for r in summary if r["method"] not in ("original", "retrain")]
        fast = [r for r in movers if r["wall_ratio"][0] <= TIME_GOAL]
        best = max(fast, key=lambda r: r["tow"][0]) if fast else None
        lines.append("")
        top = max(movers, key=lambda r: r["tow"][0])
        orig_row = next(r for r in summary if r["method"] == "original")
        fits = min(s["original_train_acc"] for s in seeds)
        overview.append(
            f"| {info['pair']} | `{info['forget']}` | {fits:.3f} | {fmt(orig_row['tow'])} | "
            + (f"{best['method']} {fmt(best['tow'])} ({best['tow_gap_closed'][0]:.2f}) at {best['wall_ratio'][0]:.3f}"
               if best is not None else "none")
            + f" | {top['method']} {fmt(top['tow'])} ({top['tow_gap_closed'][0]:.2f}) at {top['wall_ratio'][0]:.3f} |")
        if best is not None:
            verdict = "met" if best["tow"][0] >= TOW_GOAL else "NOT met"
            lines.append(f"Best within {TIME_GOAL:.0%} of retraining time: **{best['method']}**, ToW {fmt(best['tow'])} "
                         f"(gap closed {fmt(best['tow_gap_closed'])}) at time ratio {fmt(best['wall_ratio'])}; "
                         f"goal ToW >= {TOW_GOAL} there: {verdict}.")
        else:
            lines.append(f"No method finished within {TIME_GOAL:.0%} of retraining time.")
        lines.append("")
        tow_by[(info["pair"], info["forget"])] = {r["method"]: r["tow"] for r in summary}
        ax = axes[k // 3][k % 3]
        for r in summary:
            if r["method"] == "original" or not r["wall_ratio"][0] > 0:
                continue
            ax.errorbar(r["wall_ratio"][0], r["tow"][0], yerr=r["tow"][1], fmt="o", capsize=2, ms=4)
            ax.annotate(r["method"], (r["wall_ratio"][0], r["tow"][0]), xytext=(3, 2), textcoords="offset points",
                        fontsize=7)
        orig = next(r for r in summary if r["method"] == "original")
        ax.axhline(orig["tow"][0], color="grey", ls="--", lw=0.8, label="original")
        ax.axvline(TIME_GOAL, color="red", ls=":", lw=0.8, label="5% of retrain")
        ax.set_xscale("log")
        ax.set_title(f"{info['pair']}  {info['forget']}", fontsize=9)
        ax.set_xlabel("time / retrain time")
        ax.set_ylabel("ToW vs retrain")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="lower right")
    for k in range(len(cells), rows * 3):
        axes[k // 3][k % 3].set_visible(False)
    fig.tight_layout()
    png = RESULTS / f"{args.name}_tow_vs_time.png"
    fig.savefig(png, dpi=90)
    # How much ToW falls from random to high-memorisation forgetting, per pair and method.
    lines += ["## ToW on the high-memorisation stratum against random forgetting", "",
              "ToW(memorized-stratum:high) - ToW(random:0.1), same pair, same seeds; negative = harder.", ""]
    pairs = sorted({p for p, _ in tow_by}, key=lambda p: order.get(p, 9))
    lines.append("| method | " + " | ".join(pairs) + " |")
    lines.append("|---" * (len(pairs) + 1) + "|")
    methods = list(next(iter(tow_by.values())).keys())
    for m in methods:
        vals = []
        for p in pairs:
            hi, rnd = tow_by.get((p, "memorized-stratum:high"), {}).get(m), tow_by.get((p, "random:0.1"), {}).get(m)
            vals.append(f"{hi[0] - rnd[0]:+.3f} ({rnd[0]:.3f} -> {hi[0]:.3f})" if hi and rnd else "-")
        lines.append(f"| {m} | " + " | ".join(vals) + " |")
    lines += ["", f"Plot: `{png.relative_to(ROOT)}` (ToW against time ratio, one panel per cell).", ""]
    head = ["## Overview", "",
            f"Per cell: the lowest original train accuracy over seeds, the original's ToW, the best method "
            f"within {TIME_GOAL:.0%} of retraining time and the best method at any cost, each as ToW "
            "(share of the original's ToW gap closed) at its time ratio.", "",
            f"| pair | forget | original fits train | original ToW | best at <= {TIME_GOAL:.0%} of retrain time | "
            "best at any cost |", "|---|---|---|---|---|---|", *overview, ""]
    lines[2:2] = head
    out = RESULTS / f"{args.name}.md"
    out.write_text("\n".join(lines))
    print("\n".join(lines))
    return 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run", help="run one (dataset, model) pair on the forget sets")
    r.add_argument("--pair", required=True, help="DATASET:MODEL, e.g. fashion-mnist:mlp")
    r.add_argument("--forget", default=",".join(FORGETS))
    r.add_argument("--data-dir", default=None)
    r.add_argument("--methods", default="all")
    r.add_argument("--seeds", type=int, default=3)
    r.add_argument("--train-subset", type=int, default=5000)
    r.add_argument("--epochs", type=int, default=None, help="override the data set's default recipe epochs")
    r.add_argument("--cache-dir", default=str(ROOT / "runs" / "bench-methods-cache"))
    r.add_argument("--threads", type=int, default=1)
    r.add_argument("--no-progress", action="store_true")
    s = sub.add_parser("summarise", help="combine the finished runs into benchmarks/results/methods.md and a plot")
    s.add_argument("--pairs", default=None, help="only these DATASET:MODEL pairs (comma-separated; default all)")
    s.add_argument("--name", default="methods",
                   help="output names: benchmarks/results/NAME.md and NAME_tow_vs_time.png (default methods)")
    args = ap.parse_args()
    return run(args) if args.cmd == "run" else summarise_runs(args)


if __name__ == "__main__":
    sys.exit(main())
