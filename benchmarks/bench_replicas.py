"""Throughput of replica training: batched (torch.func) vs one model at a time.

Trains R replicas of an MLP 784-128-10 on a Fashion-MNIST subset with both
paths of :mod:`obliviate.engine.replicas` and the same recipe, seeds and masks,
then reports models per second, the speed-up, test accuracy of both sets of
models and how far their parameters differ (they should agree to float rounding).

Data: the real Fashion-MNIST IDX files (read by :func:`obliviate.data.idx.read_idx`) from
``--data-dir`` (default: ``../shared/data/fashion-mnist`` next to the repo); with
``--data random`` or when the files are missing, random data of the same shape
(the table says which).

Usage:
    python benchmarks/bench_replicas.py                      # CPU, writes benchmarks/results/replicas.md
    python benchmarks/bench_replicas.py --device cuda --out /tmp/gpu.md
"""

from __future__ import annotations

import argparse
import datetime as dt
import functools
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

from obliviate.data.idx import read_idx
from obliviate.engine.replicas import ReplicaRecipe, StackedReplicas, train_one_at_a_time, train_replicas
from obliviate.machine import format_load, load_average, loaded, machine_info

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA = REPO.parent / "shared" / "data" / "fashion-mnist"


# --------------------------------------------------------------------------- data
def load_data(kind: str, data_dir: Path, n_train: int, seed: int) -> tuple[str, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    files = {
        "xtr": data_dir / "train-images-idx3-ubyte.gz",
        "ytr": data_dir / "train-labels-idx1-ubyte.gz",
        "xte": data_dir / "t10k-images-idx3-ubyte.gz",
        "yte": data_dir / "t10k-labels-idx1-ubyte.gz",
    }
    rng = np.random.default_rng(seed)
    if kind == "fashion-mnist" or (kind == "auto" and all(p.exists() for p in files.values())):
        a = {k: read_idx(p) for k, p in files.items()}
        pick = rng.choice(a["xtr"].shape[0], size=n_train, replace=False)
        xtr = a["xtr"][pick].astype(np.float32) / 255.0
        ytr = a["ytr"][pick].astype(np.int64)
        xte = a["xte"].astype(np.float32) / 255.0
        yte = a["yte"].astype(np.int64)
        return f"Fashion-MNIST (real IDX files, {n_train} random training images)", xtr, ytr, xte, yte
    xtr = rng.random((n_train, 28, 28), dtype=np.float32)
    ytr = rng.integers(0, 10, n_train).astype(np.int64)
    xte = rng.random((10_000, 28, 28), dtype=np.float32)
    yte = rng.integers(0, 10, 10_000).astype(np.int64)
    return "random data of Fashion-MNIST shape (accuracy is meaningless)", xtr, ytr, xte, yte


def mlp(hidden: int = 128) -> nn.Module:
    return nn.Sequential(nn.Flatten(), nn.Linear(784, hidden), nn.ReLU(), nn.Linear(hidden, 10))


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


# --------------------------------------------------------------------------- main
def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--replicas", type=int, default=16)
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--subset", type=int, default=10_000, help="training images drawn from the 60k")
    ap.add_argument("--inclusion", type=float, default=0.5, help="probability a replica trains on an example")
    ap.add_argument("--hidden", type=int, default=128, help="hidden width of the MLP 784-H-10")
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--lr", type=float, default=0.05)
    ap.add_argument("--optimizer", default="sgd", choices=["sgd", "adam"])
    ap.add_argument("--repeats", type=int, default=3, help="timed runs per path (median reported)")
    ap.add_argument("--threads", type=int, default=0, help="torch intra-op threads (0 = torch default)")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--precision", default="float32", choices=["float32", "bfloat16"],
                    help="both paths at this precision (bfloat16: autocast matmuls, float32 master weights)")
    ap.add_argument("--kernel", default="auto", choices=["auto", "mlp", "vmap"],
                    help="batched path's kernel (auto: the grouped-matmul MLP kernel for this MLP)")
    ap.add_argument("--data", default="auto", choices=["auto", "fashion-mnist", "random"])
    ap.add_argument("--data-dir", type=Path, default=DEFAULT_DATA)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "replicas.md")
    ap.add_argument("--append", action="store_true", help="append a section instead of overwriting --out")
    args = ap.parse_args(argv)

    factory = functools.partial(mlp, args.hidden)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    data_desc, xtr, ytr, xte, yte = load_data(args.data, args.data_dir, args.subset, args.seed)
    mask = np.random.default_rng(args.seed + 1).random((args.replicas, args.subset)) < args.inclusion
    seeds = list(range(args.seed, args.seed + args.replicas))
    recipe = ReplicaRecipe(epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, optimizer=args.optimizer,
                           precision=args.precision)
    load_before = format_load(load_average())

    # Warm-up (not timed): the first vmap call in a process pays one-off set-up costs.
    warm = slice(0, 4 * args.batch_size)
    train_replicas(factory, xtr[warm], ytr[warm], None, seeds[:2], recipe=recipe, device=device, kernel=args.kernel)
    train_one_at_a_time(factory, xtr[warm], ytr[warm], None, seeds[:1], recipe=recipe, device=device)

    times: dict[str, list[float]] = {"batched": [], "one_at_a_time": []}
    batched = plain = None
    for rep in range(args.repeats):  # interleaved, so background load hits both paths alike
        sync(device)
        t0 = time.perf_counter()
        batched = train_replicas(factory, xtr, ytr, mask, seeds, recipe=recipe, device=device, kernel=args.kernel)
        sync(device)
        times["batched"].append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        plain = train_one_at_a_time(factory, xtr, ytr, mask, seeds, recipe=recipe, device=device)
        sync(device)
        times["one_at_a_time"].append(time.perf_counter() - t0)
        print(f"repeat {rep + 1}: batched {times['batched'][-1]:.2f}s, one-at-a-time {times['one_at_a_time'][-1]:.2f}s",
              flush=True)
    load_after = format_load(load_average())

    assert batched is not None and plain is not None
    plain_stacked = StackedReplicas.from_modules(plain, model_factory=factory, seeds=seeds, recipe=recipe)
    acc_b = (batched.predict_logits(xte).argmax(-1) == yte).mean(axis=1)
    acc_p = (plain_stacked.predict_logits(xte).argmax(-1) == yte).mean(axis=1)
    max_diff = max(
        (a[k].float() - b[k].detach().cpu().float()).abs().max().item()
        for a, b in zip(batched.state_dicts(), (m.state_dict() for m in plain))
        for k in a
    )
    med = {k: statistics.median(v) for k, v in times.items()}
    mps = {k: args.replicas / v for k, v in med.items()}
    ratio = mps["batched"] / mps["one_at_a_time"]
    # training FLOP: forward + weight gradient for both layers, input gradient for the second
    macs = (784 * args.hidden, args.hidden * 10)
    flop = float(mask.sum()) * args.epochs * 2.0 * (2 * sum(macs) + macs[1])

    dev_desc = (
        torch.cuda.get_device_name(device) if device.type == "cuda" else f"CPU, {torch.get_num_threads()} torch thread(s)"
    )
    command = "python " + " ".join([Path(sys.argv[0]).as_posix() if argv is None else "benchmarks/bench_replicas.py", *(sys.argv[1:] if argv is None else argv)])
    machine = machine_info()
    lines = [
        f"## Replica training throughput ({device.type})",
        "",
        f"- command: `{command}`",
        f"- date: {dt.datetime.now(dt.timezone.utc).strftime('%Y-%m-%d %H:%M UTC')}",
        f"- machine: {machine['cores']} cores, {machine['cpu']}; device: {dev_desc}; torch {machine['torch']}, "
        f"Python {machine['python']}",
        f"- load average (1/5/15 min) before / after: {load_before} -> {load_after}"
        + (" (shared machine: other jobs were running)" if loaded(cores=1) else ""),
        f"- data: {data_desc}; each replica includes each example with probability {args.inclusion} "
        f"(~{int(mask.sum(1).mean())} examples per replica)",
        f"- model: MLP 784-{args.hidden}-10; recipe: {args.replicas} replicas x {args.epochs} epoch(s), batch {args.batch_size}, "
        f"{args.optimizer} lr {args.lr}" + (", momentum 0.9" if args.optimizer == "sgd" else "")
        + f"; precision {args.precision} (both paths); batched kernel `{args.kernel}`"
        + f"; {flop / 1e9:.1f} GFLOP per path = {flop / med['batched'] / 1e9:.1f} GFLOP/s batched, "
        f"{flop / med['one_at_a_time'] / 1e9:.1f} GFLOP/s one at a time",
        f"- timing: median of {args.repeats} interleaved runs after an untimed warm-up; "
        f"all runs (s): batched {[round(t, 2) for t in times['batched']]}, "
        f"one-at-a-time {[round(t, 2) for t in times['one_at_a_time']]}",
        "",
        "| path | time (s) | models / s | mean test accuracy |",
        "|---|---:|---:|---:|",
        f"| batched (`train_replicas`, kernel {args.kernel}) | {med['batched']:.2f} | {mps['batched']:.2f} | {acc_b.mean():.4f} |",
        f"| one at a time (`train_one_at_a_time`) | {med['one_at_a_time']:.2f} | {mps['one_at_a_time']:.2f} | {acc_p.mean():.4f} |",
        "",
        f"**Speed-up: {ratio:.2f}x** (goal >= 2x: {'met' if ratio >= 2 else 'NOT met'}). "
        f"Largest parameter difference between the two paths: {max_diff:.2e}; largest per-replica test-accuracy "
        f"difference: {np.abs(acc_b - acc_p).max():.4f}.",
        "",
    ]
    text = "\n".join(lines)
    print(text)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    if args.append and args.out.exists():
        args.out.write_text(args.out.read_text().rstrip("\n") + "\n\n" + text)
    else:
        args.out.write_text("# Benchmark: batched replica training\n\n" + text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
