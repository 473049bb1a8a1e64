"""Benchmark: one deletion vs a full refit at n = 60,000.

Summation-form estimators (SummationGaussianNB, SummationMultinomialNB on
Fashion-MNIST pixels, d = 784; SummationRidge on generated data, d = 100) and
certified removal (CertifiedLogisticRegression on a fixed random projection of
Fashion-MNIST to d = 100, rows scaled to unit norm): median time of single-row
``forget`` calls vs median time of a refit on the remaining rows.

    .venv/bin/python benchmarks/bench_summation.py [--data DIR] [--out FILE] [--threads T] [--quick]

Prints a Markdown table and writes it, with the command, machine and date, to
``benchmarks/results/summation.md``. The issue's goal is summation-form
deletion >= 1000x faster than refit at n = 60,000; the table reports what was
measured, pass or not.
"""

from __future__ import annotations

import argparse
import datetime as dt
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import scipy
import sklearn
from sklearn.linear_model import Ridge
from sklearn.naive_bayes import GaussianNB, MultinomialNB
from threadpoolctl import threadpool_limits

from obliviate.data.idx import read_idx
from obliviate.machine import format_load, load_average, machine_info
from obliviate.removal.exact.certified import CertifiedLogisticRegression
from obliviate.removal.exact.summation import SummationGaussianNB, SummationMultinomialNB, SummationRidge

REPO = Path(__file__).resolve().parents[1]
N = 60_000


def load_fashion_mnist(folder: Path) -> tuple[np.ndarray, np.ndarray] | None:
    images, labels = folder / "train-images-idx3-ubyte.gz", folder / "train-labels-idx1-ubyte.gz"
    if not (images.exists() and labels.exists()):
        return None
    X = read_idx(images).reshape(-1, 784)
    y = read_idx(labels)
    return X.astype(np.float64), y.astype(np.int64)


def median_seconds(fn: Callable[[], object], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def median_forget_seconds(est, rows: np.ndarray) -> float:
    """Median over single-row forget calls (each removes a different row)."""
    times = []
    for i in rows:
        t0 = time.perf_counter()
        est.forget([int(i)])
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def machine() -> str:
    m = machine_info()
    return (
        f"{m['cores']} cores, {m['cpu']}; {platform.system()} {platform.release()}; "
        f"Python {m['python']}, numpy {np.__version__}, scipy {scipy.__version__}, "
        f"scikit-learn {sklearn.__version__}; load average at start {format_load(load_average(), sep=', ')}"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data" / "fashion-mnist")
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "summation.md")
    parser.add_argument(
        "--threads", type=int, default=1,
        help="BLAS threads for both sides (default 1: on a shared, oversubscribed machine multi-threaded "
        "BLAS slows matrix products by 10-80x, which would inflate the refit times)",
    )
    parser.add_argument("--quick", action="store_true", help="fewer repeats (smoke run)")
    args = parser.parse_args(argv)
    with threadpool_limits(limits=args.threads):
        return run(args)


def run(args: argparse.Namespace) -> int:
    refit_repeats, forget_rows, cert_repeats = (2, 10, 1) if args.quick else (5, 50, 3)
    rng = np.random.default_rng(0)
    start_machine = machine()

    loaded = load_fashion_mnist(args.data)
    if loaded is None:
        source = f"generated (Fashion-MNIST not found in {args.data})"
        y_img = rng.integers(0, 10, N)
        X_img = np.clip(rng.normal(60 + 10 * y_img[:, None], 50, size=(N, 784)), 0, 255).round()
    else:
        source = "Fashion-MNIST train set (60,000 x 784 pixels, 10 classes)"
        X_img, y_img = loaded
    X_img, y_img = X_img[:N], y_img[:N]

    rows = []  # (estimator, data, d, refit_own, refit_sklearn, forget)
    for name, ours, theirs in [
        ("SummationGaussianNB", SummationGaussianNB, GaussianNB),
        ("SummationMultinomialNB", SummationMultinomialNB, MultinomialNB),
    ]:
        Xr, yr = X_img[1:], y_img[1:]
        t_own = median_seconds(lambda: ours().fit(Xr, yr), refit_repeats)
        t_sk = median_seconds(lambda: theirs().fit(Xr, yr), refit_repeats)
        est = ours().fit(X_img, y_img)
        t_forget = median_forget_seconds(est, rng.choice(N, forget_rows, replace=False))
        rows.append((name, "Fashion-MNIST pixels" if loaded else "generated", 784, t_own, t_sk, t_forget))
        print(f"{name}: refit {t_own:.4f}s (sklearn {t_sk:.4f}s), forget {t_forget * 1e6:.1f}us", file=sys.stderr)

    d_ridge = 100
    X_r = rng.normal(size=(N, d_ridge)) + 3.0
    y_r = X_r @ rng.normal(size=d_ridge) + rng.normal(size=N)
    t_own = median_seconds(lambda: SummationRidge().fit(X_r[1:], y_r[1:]), refit_repeats)
    t_sk = median_seconds(lambda: Ridge().fit(X_r[1:], y_r[1:]), refit_repeats)
    est = SummationRidge().fit(X_r, y_r)
    t_forget = median_forget_seconds(est, rng.choice(N, forget_rows, replace=False))
    rows.append(("SummationRidge", "generated Gaussian", d_ridge, t_own, t_sk, t_forget))
    print(f"SummationRidge: refit {t_own:.4f}s (sklearn {t_sk:.4f}s), forget {t_forget * 1e6:.1f}us", file=sys.stderr)

    # Certified removal: a fixed (data-independent) random projection to d = 100, unit-norm rows.
    proj = np.random.default_rng(1).normal(size=(784, 100)) / np.sqrt(784)
    Z = (X_img / 255.0) @ proj
    Z /= np.linalg.norm(Z, axis=1, keepdims=True)
    cert_rows = []
    for task, labels in [("binary (class 0 vs rest)", (y_img == 0).astype(int)), ("10-class one-vs-rest", y_img)]:
        params = dict(lam=1e-4, sigma=10.0, epsilon=1.0, delta=1e-4, random_state=0)
        t_fit = median_seconds(lambda: CertifiedLogisticRegression(**params).fit(Z[1:], labels[1:]), cert_repeats)
        est = CertifiedLogisticRegression(**params).fit(Z, labels)
        t_forget = median_forget_seconds(est, rng.choice(N, cert_repeats, replace=False))
        acc = float((est.predict(Z) == labels).mean())
        g = est.guarantee()
        cert_rows.append((task, t_fit, t_forget, est.n_retrains_, g.residual_bound, g.residual_budget, acc))
        print(f"Certified {task}: retrain {t_fit:.2f}s, forget {t_forget:.3f}s", file=sys.stderr)

    when = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    end_load = load_average()
    lines = [
        "# One deletion vs full refit at n = 60,000",
        "",
        f"- Command: `.venv/bin/python benchmarks/bench_summation.py --threads {args.threads}"
        f"{' --quick' if args.quick else ''}`",
        f"- Date: {when}",
        f"- Machine: {start_machine}; load average at end {format_load(end_load and end_load[:1])}. "
        f"BLAS limited to {args.threads} thread(s) for both sides. The machine is shared with other jobs, "
        "so absolute times are noisy; the ratios are the point.",
        f"- Data for naive Bayes and certified removal: {source}",
        f"- Refit: median of {refit_repeats} fits on the 59,999 remaining rows. Deletion: median of "
        f"{forget_rows} single-row `forget` calls (each a different row), including input validation.",
        "",
        "## Summation-form estimators (exact removal)",
        "",
        "| estimator | data | d | refit (ours) | refit (sklearn) | one deletion | speed-up vs our refit | speed-up vs sklearn | >= 1000x? |",
        "|---|---|---:|---:|---:|---:|---:|---:|:---:|",
    ]
    for name, data, d, t_own, t_sk, t_f in rows:
        ok = "yes" if t_own / t_f >= 1000 else "no"
        lines.append(
            f"| {name} | {data} | {d} | {t_own * 1e3:.1f} ms | {t_sk * 1e3:.1f} ms | {t_f * 1e6:.1f} us "
            f"| {t_own / t_f:,.0f}x | {t_sk / t_f:,.0f}x | {ok} |"
        )
    lines += [
        "",
        "## Certified removal (Guo et al. 2020), logistic regression, d = 100",
        "",
        f"Median of {cert_repeats} retrains / single-row removals; lam=1e-4, sigma=10, (epsilon, delta) = (1, 1e-4). "
        "A removal is one Newton step (Hessian on the 59,999 remaining rows); it is not exact, and retrains "
        "when the residual budget runs out.",
        "",
        "| task | retrain | one removal (Newton) | speed-up | retrains triggered | residual bound / budget | train accuracy |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for task, t_fit, t_f, n_re, bound, budget, acc in cert_rows:
        lines.append(
            f"| {task} | {t_fit:.2f} s | {t_f:.3f} s | {t_fit / t_f:,.1f}x | {n_re} | {bound:.3g} / {budget:.3g} | {acc:.3f} |"
        )
    slow = [name for name, _, _, t_own, _, t_f in rows if t_own / t_f < 1000]
    lines += ["", "## Notes", ""]
    if slow:
        lines.append(
            f"- Below the 1000x goal: {', '.join(slow)}. A single-row deletion there costs a fixed overhead "
            "(input validation and a few dozen small numpy calls, each a few microseconds) that does not "
            "depend on n, while the refit is cheap because d is small; the ratio grows with n."
        )
    lines.append(
        "- Certified removal is not exact: the Newton step needs the Hessian on all remaining rows "
        "(O(n d^2) per class), so it is cheaper than retraining by a constant factor only, and it spends the "
        "residual budget (a retrain with fresh noise follows when the budget is exhausted)."
    )
    table = "\n".join(lines) + "\n"
    print(table)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(table)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
