"""Benchmark: deleting k rows from a summation-form model vs scikit-learn refitting without them.

Side by side in one run, for each estimator, training-set size n and batch size k: each
repetition deletes k fresh rows with ``forget`` (timed), then refits the scikit-learn
counterpart on the remaining rows (timed), and compares the two models' parameters.
Wall time (``time.perf_counter``) and CPU time (``time.process_time``) are both taken;
tables give the median and the spread (min-max) over repetitions and the ratio of medians.

- SummationRidge vs ``sklearn.linear_model.Ridge`` on generated data, d = 100, n growing;
- SummationGaussianNB / SummationMultinomialNB vs their scikit-learn classes on Fashion-MNIST
  pixels (d = 784; the first n training images), n growing;
- CertifiedLogisticRegression (not exact: a Newton step) vs its own retrain and scikit-learn's
  LogisticRegression, on a fixed random projection of Fashion-MNIST to d = 100.

    .venv/bin/python benchmarks/bench_summation.py [--data DIR] [--out FILE] [--threads T] [--quick]

Writes a Markdown report (command, machine, date, load) to ``benchmarks/results/summation.md``
and the raw timings next to it as JSON. The issue's goal is deletion >= 1000x faster than the
refit, with parameters equal within 1e-8; the tables report what was measured, met or not.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import scipy
import sklearn
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.naive_bayes import GaussianNB, MultinomialNB
from threadpoolctl import threadpool_limits

from obliviate.data.idx import read_idx
from obliviate.machine import format_load, load_average, machine_info
from obliviate.removal.exact.certified import CertifiedLogisticRegression
from obliviate.removal.exact.summation import SummationGaussianNB, SummationMultinomialNB, SummationRidge

REPO = Path(__file__).resolve().parents[1]
GOAL = 1000.0
TOL = 1e-8


def load_fashion_mnist(folder: Path) -> tuple[np.ndarray, np.ndarray] | None:
    images, labels = folder / "train-images-idx3-ubyte.gz", folder / "train-labels-idx1-ubyte.gz"
    if not (images.exists() and labels.exists()):
        return None
    X = read_idx(images).reshape(-1, 784)
    y = read_idx(labels)
    return X.astype(np.float64), y.astype(np.int64)


def timed(fn: Callable[[], Any]) -> tuple[Any, float, float]:
    """``(result, wall seconds, CPU seconds)`` of one call."""
    w0, c0 = time.perf_counter(), time.process_time()
    out = fn()
    return out, time.perf_counter() - w0, time.process_time() - c0


@dataclass
class Cell:
    """One (estimator, n, k) cell: per-repetition timings, parameter differences, deletion methods."""

    estimator: str
    n: int
    k: int
    compared: str
    delete_wall: list[float] = field(default_factory=list)
    delete_cpu: list[float] = field(default_factory=list)
    warm_wall: list[float] = field(default_factory=list)
    warm_cpu: list[float] = field(default_factory=list)
    refit_wall: list[float] = field(default_factory=list)
    refit_cpu: list[float] = field(default_factory=list)
    max_abs_diff: list[float] = field(default_factory=list)
    methods: list[str] = field(default_factory=list)

    def ratio(self, kind: str = "wall", deletion: str = "delete") -> float:
        return statistics.median(getattr(self, f"refit_{kind}")) / statistics.median(getattr(self, f"{deletion}_{kind}"))


def run_cell(
    cell: Cell,
    est: Any,
    alive: np.ndarray,
    refit: Callable[[np.ndarray], Any],
    diff: Callable[[Any, Any], float],
    reps: int,
    rng: np.random.Generator,
) -> Cell:
    """``reps`` times: delete k fresh rows from ``est`` (timed), refit on the rest (timed), compare.

    The first deletion of a repetition comes right after the previous refit, with cold caches
    (as a request arriving after other work); then ``burst`` more back-to-back (warm caches,
    as in a stream of requests). The refit and the comparison cover all of them.
    """
    burst = 5 if cell.k <= 10 else 0
    for _ in range(reps):
        for j in range(1 + burst):
            rows = rng.choice(np.flatnonzero(alive), cell.k, replace=False)
            request: Sequence[int] | np.ndarray = [int(rows[0])] if cell.k == 1 else rows  # how a caller asks
            _, wall, cpu = timed(lambda: est.forget(request))
            (cell.delete_wall if j == 0 else cell.warm_wall).append(wall)
            (cell.delete_cpu if j == 0 else cell.warm_cpu).append(cpu)
            cell.methods.append(est.deletion_log_[-1].method)
            alive[rows] = False
        keep = np.flatnonzero(alive)  # building the remaining data is not charged to the refit
        ref, wall, cpu = timed(lambda: refit(keep))
        cell.refit_wall.append(wall)
        cell.refit_cpu.append(cpu)
        cell.max_abs_diff.append(diff(est, ref))
    return cell


def max_diff(pairs: list[tuple[Any, Any]]) -> float:
    return float(max(np.max(np.abs(np.asarray(a, dtype=float) - np.asarray(b, dtype=float))) for a, b in pairs))


def bench_ridge(sizes: list[int], ks: list[int], reps: int, rng: np.random.Generator, d: int = 100) -> list[Cell]:
    cells = []
    for n in sizes:
        X = rng.normal(size=(n, d)) + 3.0
        y = X @ rng.normal(size=d) + rng.normal(size=n)
        est = SummationRidge(alpha=1.0).fit(X, y)
        alive = np.ones(n, dtype=bool)
        for k in ks:
            if k * reps * (6 if k <= 10 else 1) > n // 4:
                continue
            cell = Cell("SummationRidge", n, k, "coef_ and intercept_ vs Ridge(alpha=1)")
            run_cell(
                cell, est, alive, lambda keep: Ridge(alpha=1.0).fit(X[keep], y[keep]),
                lambda a, b: max_diff([(a.coef_, b.coef_), (a.intercept_, b.intercept_)]), reps, rng,
            )
            cells.append(cell)
            report(cell)
    return cells


def bench_nb(X_all: np.ndarray, y_all: np.ndarray, sizes: list[int], ks: list[int], reps: int, rng: np.random.Generator) -> list[Cell]:
    specs = [
        ("SummationGaussianNB", SummationGaussianNB, GaussianNB, "theta_, var_, class_prior_ vs GaussianNB()",
         lambda a, b: max_diff([(a.theta_, b.theta_), (a.var_, b.var_), (a.class_prior_, b.class_prior_)])),
        ("SummationMultinomialNB", SummationMultinomialNB, MultinomialNB,
         "feature_log_prob_, class_log_prior_ vs MultinomialNB()",
         lambda a, b: max_diff([(a.feature_log_prob_, b.feature_log_prob_), (a.class_log_prior_, b.class_log_prior_)])),
    ]
    cells = []
    for name, ours, theirs, compared, diff in specs:
        for n in sizes:
            X, y = X_all[:n], y_all[:n]
            est = ours().fit(X, y)
            alive = np.ones(n, dtype=bool)
            for k in ks:
                if k * reps * (6 if k <= 10 else 1) > n // 4:
                    continue
                cell = Cell(name, n, k, compared)
                run_cell(cell, est, alive, lambda keep: theirs().fit(X[keep], y[keep]), diff, reps, rng)
                cells.append(cell)
                report(cell)
    return cells


def report(cell: Cell) -> None:
    print(
        f"{cell.estimator} n={cell.n} k={cell.k}: delete {statistics.median(cell.delete_wall) * 1e6:.0f} us "
        f"(warm {statistics.median(cell.warm_wall or [float('nan')]) * 1e6:.0f} us), "
        f"refit {statistics.median(cell.refit_wall) * 1e3:.1f} ms, {cell.ratio():,.0f}x wall / "
        f"{cell.ratio('cpu'):,.0f}x CPU, max |diff| {max(cell.max_abs_diff):.1e}",
        file=sys.stderr,
    )


def bench_certified(X_img: np.ndarray, y_img: np.ndarray, reps: dict[str, int], rng: np.random.Generator) -> list[dict[str, Any]]:
    # A fixed (data-independent) random projection to d = 100, rows scaled to unit norm (the paper's ||x|| <= 1).
    proj = np.random.default_rng(1).normal(size=(784, 100)) / np.sqrt(784)
    Z = (X_img / 255.0) @ proj
    Z /= np.linalg.norm(Z, axis=1, keepdims=True)
    n, out = Z.shape[0], []
    params = dict(lam=1e-4, sigma=10.0, epsilon=1.0, delta=1e-4, random_state=0)
    for task, labels in [("binary (class 0 vs rest)", (y_img == 0).astype(int)), ("10-class one-vs-rest", y_img)]:
        est = CertifiedLogisticRegression(**params).fit(Z, labels)
        alive = np.ones(n, dtype=bool)
        first = int(rng.integers(n))
        _, w_first, c_first = timed(lambda: est.forget([first]))
        alive[first] = False
        later_w, later_c = [], []
        for i in rng.choice(np.flatnonzero(alive), 2, replace=False):
            _, w, c = timed(lambda: est.forget([int(i)]))
            later_w.append(w)
            later_c.append(c)
            alive[i] = False
        keep = np.flatnonzero(alive)
        retrain = [timed(lambda: CertifiedLogisticRegression(**params).fit(Z[keep], labels[keep]))[1:] for _ in range(reps[task])]
        row = {
            "task": task, "n": n, "first_wall": w_first, "first_cpu": c_first,
            "hessian_first": est.removal_log_[0]["hessian"], "hessian_later": est.removal_log_[-1]["hessian"],
            "later_wall": later_w, "later_cpu": later_c,
            "retrain_wall": [w for w, _ in retrain], "retrain_cpu": [c for _, c in retrain],
            "n_retrains": est.n_retrains_, "bound": est.guarantee().residual_bound,
            "budget": est.guarantee().residual_budget,
        }
        if task.startswith("binary"):
            C = 1.0 / (params["lam"] * keep.size)  # same L2 strength, no noise, no certificate
            sk = [timed(lambda: LogisticRegression(C=C, fit_intercept=False, max_iter=1000).fit(Z[keep], labels[keep]))[1:]
                  for _ in range(reps[task])]
            row["sklearn_wall"], row["sklearn_cpu"] = [w for w, _ in sk], [c for _, c in sk]
        out.append(row)
        print(f"Certified {task}: first removal {w_first:.4f}s, later {statistics.median(later_w):.3f}s, "
              f"retrain {statistics.median(row['retrain_wall']):.2f}s", file=sys.stderr)
    return out


def machine() -> str:
    m = machine_info()
    return (
        f"{m['cores']} cores, {m['cpu']}; {platform.system()} {platform.release()}; "
        f"Python {m['python']}, numpy {np.__version__}, scipy {scipy.__version__}, "
        f"scikit-learn {sklearn.__version__}"
    )


def _spread(values: list[float], scale: float, unit: str, fmt: str = ".0f") -> str:
    med = statistics.median(values) * scale
    return f"{med:{fmt}} {unit} ({min(values) * scale:{fmt}}-{max(values) * scale:{fmt}})"


def _pair(values: tuple[float, float | None], how: str) -> str:
    if how == "goal":
        return " / ".join("-" if v is None else ("yes" if v >= GOAL else "no") for v in values)
    return " / ".join("-" if v is None else f"{v:,.0f}x" for v in values)


def _methods(methods: list[str]) -> str:
    return ", ".join(f"{m} {methods.count(m)}" for m in dict.fromkeys(methods))


def render(args: argparse.Namespace, env: dict[str, Any], cells: list[Cell], cert: list[dict[str, Any]]) -> str:
    lines = [
        "# Deleting k rows vs scikit-learn refitting without them",
        "",
        f"- Command: `{env['command']}`",
        f"- Date: {env['date']}; total wall time {env['seconds'] / 60:.1f} min",
        f"- Machine: {env['machine']}. BLAS limited to {args.threads} thread(s) for both sides. "
        f"Shared with other jobs: load average (1/5/15 min) {env['load_start']} at start, {env['load_end']} at end.",
        f"- Each repetition deletes k fresh rows with `forget` (timed), then refits scikit-learn on the remaining "
        f"rows (timed; building the remaining arrays is not charged to the refit) and compares parameters. "
        f"{args.reps} repetitions per cell; median (min-max). Ratio = median refit / median deletion. "
        f"Deletion time includes input validation; k = 1 is `forget([i])`. *Cold*: the first deletion after "
        f"a refit (caches flushed by it, as for a request arriving after other work); *warm*: 5 more "
        f"back-to-back deletions per repetition (k <= 10), as in a stream of requests. The refit and the "
        f"comparison come after all of them.",
        "",
    ]
    for name in dict.fromkeys(c.estimator for c in cells):
        group = [c for c in cells if c.estimator == name]
        lines += [
            f"## {name} (d = {100 if name == 'SummationRidge' else 784})",
            "",
            f"Equality: max |difference| of {group[0].compared}, over all repetitions.",
            "",
            "| n | k | deletion cold: wall / CPU | deletion warm: wall / CPU | sklearn refit: wall / CPU "
            "| speed-up CPU: cold / warm | speed-up wall: cold / warm | >= 1000x (CPU): cold / warm "
            "| max abs diff | deletion methods |",
            "|---:|---:|---:|---:|---:|---:|---:|:---:|---:|---|",
        ]
        for c in group:
            has_warm = bool(c.warm_wall)
            cpu = (c.ratio("cpu"), c.ratio("cpu", "warm") if has_warm else None)
            wall = (c.ratio("wall"), c.ratio("wall", "warm") if has_warm else None)
            warm = (f"{_spread(c.warm_wall, 1e6, 'us')} / {_spread(c.warm_cpu, 1e6, 'us')}") if has_warm else "-"
            lines.append(
                f"| {c.n:,} | {c.k} | {_spread(c.delete_wall, 1e6, 'us')} / {_spread(c.delete_cpu, 1e6, 'us')} | {warm} "
                f"| {_spread(c.refit_wall, 1e3, 'ms', '.1f')} / {_spread(c.refit_cpu, 1e3, 'ms', '.1f')} "
                f"| {_pair(cpu, 'x')} | {_pair(wall, 'x')} | {_pair(cpu, 'goal')} | {max(c.max_abs_diff):.1e} "
                f"| {_methods(c.methods)} |"
            )
        lines.append("")
    if cert:
        lines += [
            "## CertifiedLogisticRegression (Guo et al. 2020), d = 100, n = 60,000",
            "",
            "lam=1e-4, sigma=10, (epsilon, delta) = (1, 1e-4). Not exact: one Newton step, certified by the "
            "residual budget. The first removal after a fit downdates the Hessians kept at the trained weights; "
            "the step moves the weights, so later removals rebuild them from the remaining rows. "
            "scikit-learn's LogisticRegression (lbfgs, same L2 strength, no noise, no certificate) is what a user "
            "would refit without this guarantee.",
            "",
            "| task | first removal: wall / CPU | later removal: wall / CPU (median) | our retrain: wall / CPU "
            "| sklearn refit: wall / CPU | speed-up vs our retrain, CPU: first / later | wall: first / later "
            "| first vs sklearn refit, CPU / wall | residual bound / budget |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for r in cert:
            med = statistics.median
            rw, rc = med(r["retrain_wall"]), med(r["retrain_cpu"])
            lw, lc = med(r["later_wall"]), med(r["later_cpu"])
            if "sklearn_wall" in r:
                sw, sc = med(r["sklearn_wall"]), med(r["sklearn_cpu"])
                sk, vs_sk = f"{sw:.2f} s / {sc:.2f} s", f"{sc / r['first_cpu']:,.0f}x / {sw / r['first_wall']:,.0f}x"
            else:
                sk = vs_sk = "-"
            lines.append(
                f"| {r['task']} | {r['first_wall'] * 1e3:.1f} ms / {r['first_cpu'] * 1e3:.1f} ms ({r['hessian_first']}) "
                f"| {lw:.3f} s / {lc:.3f} s ({r['hessian_later']}) | {rw:.2f} s / {rc:.2f} s | {sk} "
                f"| {rc / r['first_cpu']:,.0f}x / {rc / lc:,.1f}x | {rw / r['first_wall']:,.0f}x / {rw / lw:,.1f}x "
                f"| {vs_sk} | {r['bound']:.3g} / {r['budget']:.3g} |"
            )
        lines.append("")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data" / "fashion-mnist")
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "summation.md")
    parser.add_argument(
        "--threads", type=int, default=1,
        help="BLAS threads for both sides (default 1: on a shared, oversubscribed machine multi-threaded "
        "BLAS slows matrix products by 10-80x, which would inflate the refit times)",
    )
    parser.add_argument("--reps", type=int, default=5, help="repetitions per (n, k) cell")
    parser.add_argument("--ridge-sizes", default="7500,15000,30000,60000,120000")
    parser.add_argument("--nb-sizes", default="7500,15000,30000,60000")
    parser.add_argument("--ks", default="1,10,100,1000", help="batch sizes (a cell is skipped when k * reps > n / 4)")
    parser.add_argument("--no-certified", action="store_true", help="skip certified removal (its retrains take ~1 min)")
    parser.add_argument("--quick", action="store_true", help="small sizes, 3 repetitions (smoke run)")
    args = parser.parse_args(argv)
    if args.quick:
        args.reps, args.ridge_sizes, args.nb_sizes, args.ks = 3, "5000,20000", "5000", "1,10"
    with threadpool_limits(limits=args.threads):
        return run(args, argv if argv is not None else sys.argv[1:])


def run(args: argparse.Namespace, argv: list[str]) -> int:
    t0 = time.perf_counter()
    load_start = format_load(load_average())
    rng = np.random.default_rng(0)
    ks = [int(k) for k in args.ks.split(",")]
    cells = bench_ridge([int(n) for n in args.ridge_sizes.split(",")], ks, args.reps, rng)
    loaded = load_fashion_mnist(args.data)
    if loaded is None:
        print(f"Fashion-MNIST not found in {args.data}: generated pixels instead", file=sys.stderr)
        y_img = rng.integers(0, 10, 60_000)
        X_img = np.clip(rng.normal(60 + 10 * y_img[:, None], 50, size=(60_000, 784)), 0, 255).round()
    else:
        X_img, y_img = loaded
    cells += bench_nb(X_img, y_img, [int(n) for n in args.nb_sizes.split(",")], ks, args.reps, rng)
    cert = [] if args.no_certified or args.quick else bench_certified(
        X_img, y_img, {"binary (class 0 vs rest)": 2, "10-class one-vs-rest": 1}, rng
    )
    env = {
        "command": "PYTHONPATH=src .venv/bin/python benchmarks/bench_summation.py " + " ".join(argv),
        "date": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": machine(),
        "data": "Fashion-MNIST train set" if loaded is not None else "generated pixels",
        "load_start": load_start,
        "load_end": format_load(load_average()),
        "seconds": time.perf_counter() - t0,
    }
    text = render(args, env, cells, cert)
    print(text)
    raw = {"env": env, "args": {k: str(v) for k, v in vars(args).items()}, "cells": [asdict(c) for c in cells],
           "certified": cert}
    write_atomically(args.out, text)
    write_atomically(args.out.with_suffix(".json"), json.dumps(raw, indent=1))
    return 0


def write_atomically(path: Path, text: str) -> None:
    """Write to a temporary file beside ``path`` and rename it over: never a half-written report."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


if __name__ == "__main__":
    raise SystemExit(main())
