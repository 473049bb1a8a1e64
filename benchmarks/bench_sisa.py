"""SISA on Fashion-MNIST: accuracy against the monolithic model, and the cost of a deletion.

For every S (shards) and R (slices) in the grid this trains a SISA ensemble of MLPs into a
fresh store (serial executor, one torch thread per shard job, the same recipe as the
monolithic model) and reports:

* test accuracy for the three aggregations (majority vote, mean softmax, size-weighted)
  against a monolithic MLP trained on all the data with the same recipe and thread count;
* the time of one random deletion (a whole ``Sisa.forget`` call: ledger writes, checkpoint
  I/O, retraining, pointer switch, garbage collection; data already in memory, as in a
  long-running service) against full retraining (training the monolithic model), as a
  speed-up, next to the formula's ideal ``S / (2/3 + 1/(3R))``.

Deletions are sampled stratified over slices: each trial deletes one random example from
slice r of a random shard, for r = 1..R, so the mean over a trial is an unbiased estimate
of the expected cost of a uniformly random deletion (the quantity the formula gives), with
less variance than R independent draws. Both wall-clock and process CPU time are reported:
the machine is shared, and CPU time of single-threaded work is much less sensitive to
other load than wall time. The 1/5/15-minute load average is recorded beside each row.

At the goal configuration (S=8, R=4 by default) K requests are also applied as one batch
(``forget_many``): each affected shard is retrained once, from the earliest slice any
request touches.

Usage:
    python benchmarks/bench_sisa.py                 # full grid; writes benchmarks/results/sisa.md
    python benchmarks/bench_sisa.py --quick         # 6k examples, 4 epochs, S in {1,4,8}: a few minutes
"""

from __future__ import annotations

import argparse
import datetime as dt
import shutil
import statistics
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from obliviate.data import load_dataset
from obliviate.engine.sisa import AGGREGATORS, ErasureRequest, Sisa, SisaConfig
from obliviate.engine.sisa.training import derive_seed, deterministic
from obliviate.machine import format_load, load_average, machine_info
from obliviate.models import ModelSpec, build_model
from obliviate.training import Recipe, predict_logits, train_classifier

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA = REPO.parent / "shared" / "data"


def loadavg() -> str:
    return format_load(load_average(), sep=" ")


def timed(fn: Any) -> tuple[Any, float, float]:
    w, c = time.perf_counter(), time.process_time()
    out = fn()
    return out, time.perf_counter() - w, time.process_time() - c


def ints(text: str) -> list[int]:
    return [int(t) for t in text.split(",") if t.strip()]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data-dir", default=str(DEFAULT_DATA))
    ap.add_argument("--quick", action="store_true", help="small subset, few epochs, small grid")
    ap.add_argument("--shards", default=None, help="comma-separated S values [1,4,8,16]")
    ap.add_argument("--slices", default=None, help="comma-separated R values [1,4]")
    ap.add_argument("--epochs", type=int, default=None, help="e, epochs of a whole-shard model [20]")
    ap.add_argument("--hidden", default="256", help="MLP hidden sizes [256]")
    ap.add_argument("--n-train", type=int, default=None, help="use a seeded subset of the training set")
    ap.add_argument("--trials", type=int, default=1, help="stratified deletion trials (R deletions each)")
    ap.add_argument("--goal-trials", type=int, default=3, help="trials at the goal configuration")
    ap.add_argument("--goal", default="8,4", help="S,R of the goal configuration")
    ap.add_argument("--batch-k", type=int, default=8, help="K requests batched at the goal configuration (0: skip)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "sisa.md"))
    ap.add_argument("--issue18", choices=["speed", "accuracy"], default=None,
                    help="issue 18: interleaved full retrains and deletions (speed), or the accuracy remedies")
    ap.add_argument("--reps", type=int, default=5, help="issue 18 speed: full-retrain / deletion pairs")
    ap.add_argument("--stream-k", type=int, default=16, help="issue 18 speed: requests in the batched stream")
    ap.add_argument("--pretrain-epochs", type=int, default=5, help="issue 18 accuracy: MNIST pre-training epochs")
    ap.add_argument("--remedies", type=int, default=4, help="issue 18 accuracy: how many remedies to run")
    ap.add_argument("--only", default=None, help="issue 18 accuracy: comma-separated remedy indices (0-4) instead")
    args = ap.parse_args(argv)
    if args.issue18:
        if args.out == str(REPO / "benchmarks" / "results" / "sisa.md"):
            args.out = str(REPO / "benchmarks" / "results" / f"sisa-issue18-{args.issue18}.md")
        return issue18_speed(args) if args.issue18 == "speed" else issue18_accuracy(args)

    shards = ints(args.shards or ("1,4,8" if args.quick else "1,4,8,16"))
    slices = ints(args.slices or "1,4")
    epochs = args.epochs or (4 if args.quick else 20)
    n_train = args.n_train or (6000 if args.quick else None)
    goal = tuple(ints(args.goal))
    hidden = ints(args.hidden)

    bundle = load_dataset("fashion-mnist", data_dir=args.data_dir)
    train, test = bundle.train, bundle.test
    if n_train and n_train < len(train):
        train = train.subset(np.sort(np.random.default_rng(args.seed).permutation(len(train))[:n_train]))
    if args.quick:
        test = test.subset(np.arange(2000))
    recipe = Recipe(epochs=epochs, batch_size=128, lr=1e-3)
    spec = ModelSpec("mlp", {"hidden": hidden})
    print(f"fashion-mnist: {len(train)} train / {len(test)} test, MLP {hidden}, {epochs} epochs", flush=True)

    # Warm-up (lazy torch imports, allocator): not timed.
    with deterministic(1):
        train_classifier(build_model(spec, train.input_shape, 10, seed=0), train.subset(np.arange(256)),
                         Recipe(epochs=1), seed=0)

    # Monolithic model = full retraining.
    mono = build_model(spec, train.input_shape, 10, seed=derive_seed(args.seed, 0))
    load0 = loadavg()
    with deterministic(1):
        _, full_wall, full_cpu = timed(lambda: train_classifier(mono, train, recipe, seed=args.seed))
    mono_acc = float((predict_logits(mono, test.x).argmax(1) == test.y).mean())
    print(f"monolithic: acc {mono_acc:.4f}, {full_wall:.1f}s wall, {full_cpu:.1f}s cpu (load {load0})", flush=True)

    rows: list[dict[str, Any]] = []
    batch_row: dict[str, Any] | None = None
    tmp = Path(tempfile.mkdtemp(prefix="bench-sisa-"))
    try:
        for s_ in shards:
            for r_ in slices:
                cfg = SisaConfig(shards=s_, slices=r_, model=spec, recipe=recipe, seed=args.seed, threads=1)
                store = tmp / f"s{s_}-r{r_}"
                load_before = loadavg()
                sisa, fit_wall, fit_cpu = timed(lambda: Sisa(cfg, store=store).fit(train))
                probs, sizes = sisa.shard_probabilities(test.x)
                accs = {name: float((agg(probs, sizes).argmax(1) == test.y).mean()) for name, agg in AGGREGATORS.items()}
                rng = np.random.default_rng(derive_seed(args.seed, s_, r_))
                placed = sisa.assignment()
                gone: set[str] = set()
                walls, cpus, fracs, replayed = [], [], [], []
                trials = args.goal_trials if (s_, r_) == goal else (args.trials if s_ > 1 else 1)
                for _ in range(trials):
                    for r in range(r_):
                        k = int(rng.integers(s_))
                        victim = str(rng.choice([i for i in placed[k][r] if i not in gone]))
                        receipt, w, c = timed(lambda: sisa.forget([victim], reason="benchmark"))
                        gone.add(victim)
                        walls.append(w)
                        cpus.append(c)
                        fracs.append(receipt.work_fraction)
                        replayed.append(receipt.slices_replayed)
                ideal = cfg.ideal_speedup()
                row = {
                    "S": s_, "R": r_, "epochs_per_slice": cfg.epochs_per_slice, **{f"acc_{k}": v for k, v in accs.items()},
                    "fit_wall": fit_wall, "fit_cpu": fit_cpu, "n_del": len(walls),
                    "del_wall": statistics.mean(walls), "del_cpu": statistics.mean(cpus),
                    "del_wall_sd": statistics.stdev(walls) if len(walls) > 1 else 0.0,
                    "speedup_wall": full_wall / statistics.mean(walls), "speedup_cpu": full_cpu / statistics.mean(cpus),
                    "speedup_fit_cpu": fit_cpu / statistics.mean(cpus),
                    "ideal": ideal, "work_fraction": statistics.mean(fracs),
                    "formula_fraction": (2 / 3 + 1 / (3 * r_)) / s_, "slices_replayed": statistics.mean(replayed),
                    "load": f"{load_before} → {loadavg()}",
                }
                rows.append(row)
                print(f"S={s_:2d} R={r_}: acc vote {accs['vote']:.4f} mean {accs['mean']:.4f} weighted "
                      f"{accs['weighted']:.4f}; deletion {row['del_wall']:.2f}s wall {row['del_cpu']:.2f}s cpu; "
                      f"speed-up {row['speedup_wall']:.2f} (wall) {row['speedup_cpu']:.2f} (cpu) vs ideal {ideal:.2f}; "
                      f"load {row['load']}", flush=True)
                if (s_, r_) == goal and args.batch_k:
                    reqs = []
                    for j in range(args.batch_k):
                        k, r = int(rng.integers(s_)), int(rng.integers(r_))
                        victim = str(rng.choice([i for i in placed[k][r] if i not in gone]))
                        gone.add(victim)
                        reqs.append(ErasureRequest([victim], reason="benchmark batch", request_id=f"batch-{j}"))
                    receipts, w, c = timed(lambda: sisa.forget_many(reqs))
                    batch_row = {"S": s_, "R": r_, "K": args.batch_k, "wall": w, "cpu": c,
                                 "shards": len(receipts[0].shards_retrained), "slices": receipts[0].slices_replayed,
                                 "work_fraction": receipts[0].work_fraction,
                                 "sequential_wall": args.batch_k * row["del_wall"],
                                 "sequential_cpu": args.batch_k * row["del_cpu"], "load": loadavg()}
                    print(f"batch of {args.batch_k}: {w:.2f}s wall {c:.2f}s cpu, {batch_row['shards']} shards", flush=True)
                sisa.close()
                shutil.rmtree(store, ignore_errors=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    write_report(Path(args.out), args=args, n_train=len(train), n_test=len(test), epochs=epochs, hidden=hidden,
                 mono_acc=mono_acc, full_wall=full_wall, full_cpu=full_cpu, full_load=load0, rows=rows,
                 batch=batch_row, goal=goal)
    print(f"wrote {args.out}")
    return 0


def write_report(path: Path, *, args: Any, n_train: int, n_test: int, epochs: int, hidden: list[int], mono_acc: float,
                 full_wall: float, full_cpu: float, full_load: str, rows: list[dict[str, Any]],
                 batch: dict[str, Any] | None, goal: tuple[int, ...]) -> None:
    machine = machine_info()
    lines = [
        "# SISA on Fashion-MNIST" + (" (quick run)" if args.quick else ""),
        "",
        f"Generated by `benchmarks/bench_sisa.py{' --quick' if args.quick else ''}` on "
        f"{dt.datetime.now().strftime('%Y-%m-%d %H:%M')}; {machine['cpu']}, "
        f"{machine['cores']} cores (shared with other jobs), Python {machine['python']}, torch {machine['torch']}.",
        "",
        f"Data: Fashion-MNIST, {n_train} training and {n_test} test examples. Model: MLP 784-{'-'.join(map(str, hidden))}-10; "
        f"recipe Adam lr 1e-3, batch 128, cosine schedule, e = {epochs} epochs for a whole-shard model, "
        f"2e/(R+1) epochs per cumulative slice. One torch thread per training everywhere, serial executor.",
        "",
        f"**Monolithic model** (= full retraining): test accuracy **{mono_acc:.4f}**, training "
        f"{full_wall:.1f} s wall / {full_cpu:.1f} s CPU (load average {full_load}).",
        "",
        "| S | R | epochs/slice | acc vote | acc mean | acc weighted | Δ mean vs mono (pts) | train s (wall / CPU) | "
        "deletions | deletion s (wall ± sd) | deletion s (CPU) | speed-up wall | speed-up CPU | "
        "ideal S/(2/3+1/(3R)) | CPU speed-up / ideal | CPU speed-up vs ensemble retrain | "
        "work fraction measured / formula | load average (before → after) |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['S']} | {r['R']} | {r['epochs_per_slice']} | {r['acc_vote']:.4f} | {r['acc_mean']:.4f} | "
            f"{r['acc_weighted']:.4f} | {100 * (r['acc_mean'] - mono_acc):+.2f} | "
            f"{r['fit_wall']:.0f} / {r['fit_cpu']:.0f} | {r['n_del']} | "
            f"{r['del_wall']:.2f} ± {r['del_wall_sd']:.2f} | {r['del_cpu']:.2f} | {r['speedup_wall']:.2f}× | "
            f"{r['speedup_cpu']:.2f}× | {r['ideal']:.2f}× | {r['speedup_cpu'] / r['ideal']:.0%} | "
            f"{r['speedup_fit_cpu']:.2f}× | "
            f"{r['work_fraction']:.4f} / {r['formula_fraction']:.4f} | {r['load']} |")
    g = next((r for r in rows if (r["S"], r["R"]) == goal), None)
    lines += ["", "## Goal", ""]
    if g is None:
        lines.append(f"The goal configuration S={goal[0]}, R={goal[1]} was not in this run's grid.")
    else:
        ok_speed = g["speedup_cpu"] / g["ideal"] >= 0.85
        ok_acc = mono_acc - g["acc_mean"] <= 0.02
        lines += [
            f"At S={goal[0]}, R={goal[1]}: a deletion reaches **{g['speedup_cpu'] / g['ideal']:.0%}** of the ideal "
            f"speed-up in CPU time ({g['speedup_wall'] / g['ideal']:.0%} in wall time; goal ≥ 85%: "
            f"{'met' if ok_speed else 'not met'}), and the mean-softmax ensemble is "
            f"**{100 * (mono_acc - g['acc_mean']):.2f} points** below the monolithic model (goal ≤ 2: "
            f"{'met' if ok_acc else 'not met'}; vote {100 * (mono_acc - g['acc_vote']):.2f}, weighted "
            f"{100 * (mono_acc - g['acc_weighted']):.2f}).",
        ]
    if batch is not None:
        lines += [
            "", f"## {batch['K']} requests in one batch (S={batch['S']}, R={batch['R']})", "",
            f"`forget_many` with {batch['K']} single-example requests retrained {batch['shards']} shard(s) once each "
            f"({batch['slices']} slices, {batch['work_fraction']:.3f} of full training): {batch['wall']:.1f} s wall / "
            f"{batch['cpu']:.1f} s CPU, against an estimated {batch['sequential_wall']:.1f} s wall / "
            f"{batch['sequential_cpu']:.1f} s CPU for {batch['K']} sequential deletions ({batch['K']} × the mean "
            f"above) and {full_wall:.1f} s / {full_cpu:.1f} s for full retraining (load average {batch['load']}).",
        ]
    lines += [
        "", "## How to read this", "",
        "- *Deletion* is one whole `Sisa.forget([id])` call on a store whose data is already in memory: "
        "validation, ledger verification and durable writes, loading the last unaffected checkpoint, retraining, "
        "saving checkpoints (fsync), the version switch and garbage collection of checkpoints that held the "
        "example. Starting the `obliviate` command (imports, loading the dataset) is not included.",
        "- Deletions are stratified over slices (one per slice per trial, random shard, random example), so their "
        "mean estimates the expected cost of a uniformly random deletion; *work fraction* is the retrained "
        "example-epochs over those of full training, measured from the receipts, next to the formula "
        "(2/3 + 1/(3R))/S.",
        "- Speed-up = full-retraining time (the monolithic model, trained once at the start) / mean deletion "
        "time. CPU time is the fairer measure on this shared machine (the load average beside each row shows how "
        "busy it was); wall time is reported too. *vs ensemble retrain* divides the same store's own training "
        "time (all S shards from scratch, the same work as the monolithic model, measured minutes before its "
        "deletions) instead, which is less exposed to load drift over the run. 1 / work fraction is the "
        "speed-up in training work, independent of load.",
        "- Accuracy is a single seed; differences of a few tenths of a point are within seed noise.",
    ]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")


# ---------------------------------------------------------------------------------------------
# Issue 18: the speed-up as a ratio of timings of the same work in the same run, the accuracy
# remedies, and batched deletions.
def _spread(values: list[float]) -> str:
    return f"{statistics.median(values):.3f} (min {min(values):.3f}, max {max(values):.3f})"


def issue18_speed(args: Any) -> int:
    """Interleave full retrains and SISA deletions at uniformly random positions (S, R = goal)."""
    import json

    bundle = load_dataset("fashion-mnist", data_dir=args.data_dir)
    train, test = bundle.train, bundle.test
    if args.n_train and args.n_train < len(train):
        train = train.subset(np.sort(np.random.default_rng(args.seed).permutation(len(train))[:args.n_train]))
    epochs = args.epochs or 20
    s_, r_ = tuple(ints(args.goal))
    recipe = Recipe(epochs=epochs, batch_size=128, lr=1e-3)
    spec = ModelSpec("mlp", {"hidden": ints(args.hidden)})
    cfg = SisaConfig(shards=s_, slices=r_, model=spec, recipe=recipe, seed=args.seed, threads=1)
    print(f"issue 18 speed: {len(train)} train, S={s_} R={r_}, e={epochs}, {args.reps} repetitions", flush=True)
    with deterministic(1):  # warm-up, not timed
        train_classifier(build_model(spec, train.input_shape, 10, seed=0), train.subset(np.arange(256)),
                         Recipe(epochs=1), seed=0)
    out: dict[str, Any] = {"n_train": len(train), "n_test": len(test), "S": s_, "R": r_, "epochs": epochs,
                           "epochs_per_slice": cfg.epochs_per_slice, "ideal": cfg.ideal_speedup(),
                           "formula_fraction": (2 / 3 + 1 / (3 * r_)) / s_, "load_start": loadavg(),
                           "machine": machine_info(), "pairs": [], "date": dt.datetime.now(dt.timezone.utc).isoformat()}
    tmp = Path(tempfile.mkdtemp(prefix="bench-sisa18-"))
    try:
        store = tmp / "store"
        sisa, fit_wall, fit_cpu = timed(lambda: Sisa(cfg, store=store, key_file=tmp / "ledger.pem").fit(train))
        probs, sizes = sisa.shard_probabilities(test.x)
        out["fit"] = {"wall": fit_wall, "cpu": fit_cpu, "load": loadavg(),
                      **{f"acc_{k}": float((agg(probs, sizes).argmax(1) == test.y).mean())
                         for k, agg in AGGREGATORS.items()}}
        rng = np.random.default_rng(derive_seed(args.seed, 18))
        gone: set[str] = set()
        for i in range(args.reps):
            load_before = loadavg()
            mono = build_model(spec, train.input_shape, 10, seed=derive_seed(args.seed, 0))
            with deterministic(1):
                _, fw, fc = timed(lambda: train_classifier(mono, train, recipe, seed=args.seed))
            if i == 0:
                out["mono_acc"] = float((predict_logits(mono, test.x).argmax(1) == test.y).mean())
            victim = str(rng.choice([v for v in train.ids.tolist() if v not in gone]))  # uniformly random
            expected = sisa.expected_work_fraction([victim])
            receipt, dw, dc = timed(lambda: sisa.forget([victim], reason="benchmark"))
            gone.add(victim)
            batch = sisa.current()["batch"]
            pair = {"full_wall": fw, "full_cpu": fc, "del_wall": dw, "del_cpu": dc,
                    "work_fraction": receipt.work_fraction, "expected_work_fraction": expected,
                    "shard_job_wall": sum(batch["shard_seconds"].values()), "slices_replayed": receipt.slices_replayed,
                    "load": f"{load_before} → {loadavg()}"}
            # efficiency 1.0: the deletion cost exactly its share of the full retrain's time
            pair["eff_cpu"] = fc * receipt.work_fraction / dc
            pair["eff_wall"] = fw * receipt.work_fraction / dw
            out["pairs"].append(pair)
            print(f"rep {i}: full {fw:.1f}s wall {fc:.1f}s cpu; deletion {dw:.2f}s wall {dc:.2f}s cpu, work "
                  f"{receipt.work_fraction:.4f} (expected {expected:.4f}); efficiency cpu {pair['eff_cpu']:.3f} "
                  f"wall {pair['eff_wall']:.3f}; load {pair['load']}", flush=True)
        # Batched deletions: a stream of k requests applied as one batch, and k in one shard.
        placed = sisa.assignment()
        streams = []
        for label, k in (("random", args.stream_k), ("one shard", args.stream_k // 2)):
            if k <= 0:
                continue
            if label == "random":
                pool = [v for v in train.ids.tolist() if v not in gone]
                ids = [str(v) for v in rng.choice(pool, size=k, replace=False)]
            else:
                shard = int(rng.integers(s_))
                pool = [v for sl in placed[shard] for v in sl if v not in gone]
                ids = [str(v) for v in rng.choice(pool, size=k, replace=False)]
            expected = sisa.expected_work_fraction(ids)
            load_before = loadavg()
            reqs = [ErasureRequest([v], reason="benchmark stream", request_id=f"{label}-{j}") for j, v in enumerate(ids)]
            receipts, w, c = timed(lambda: sisa.forget_many(reqs))
            gone.update(ids)
            streams.append({"label": label, "k": k, "wall": w, "cpu": c, "shards": len(receipts[0].shards_retrained),
                            "work_fraction": receipts[0].work_fraction, "expected_work_fraction": expected,
                            "load": f"{load_before} → {loadavg()}"})
            print(f"stream {label} k={k}: {w:.1f}s wall {c:.1f}s cpu, {streams[-1]['shards']} shards, work "
                  f"{receipts[0].work_fraction:.3f} (expected {expected:.3f})", flush=True)
        out["streams"] = streams
        sisa.close()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    out["load_end"] = loadavg()
    p = out["pairs"]
    full_cpu, full_wall = [x["full_cpu"] for x in p], [x["full_wall"] for x in p]
    del_cpu, del_wall = [x["del_cpu"] for x in p], [x["del_wall"] for x in p]
    out["summary"] = {
        "share_cpu_median": statistics.median(x["eff_cpu"] for x in p),
        "share_wall_median": statistics.median(x["eff_wall"] for x in p),
        # the plain ratio: it mixes the positions' different costs with timing (few random positions)
        "speedup_cpu_plain": statistics.median(full_cpu) / statistics.mean(del_cpu),
        "speedup_wall_plain": statistics.median(full_wall) / statistics.mean(del_wall),
        "mean_work_fraction": statistics.mean(x["work_fraction"] for x in p),
    }
    Path(args.out).with_suffix(".json").write_text(json.dumps(out, indent=2, default=str))
    write_issue18_speed(Path(args.out), out)
    print(f"wrote {args.out}")
    return 0


def write_issue18_speed(path: Path, o: dict[str, Any]) -> None:
    s, m = o["summary"], o["machine"]
    lines = [f"### Speed-up, same work in the same run (S={o['S']}, R={o['R']})", "",
             f"- command: `python benchmarks/bench_sisa.py --issue18 speed --reps {len(o['pairs'])}"
             f"{'' if o['n_train'] == 60000 else ' --n-train ' + str(o['n_train'])}`",
             f"- date: {o['date'][:16]} UTC; machine: {m['cpu']}, {m['cores']} cores (shared), torch {m['torch']}, "
             f"one torch thread; load average at start / end: {o['load_start']} / {o['load_end']}",
             f"- data: Fashion-MNIST, {o['n_train']} train / {o['n_test']} test; MLP 784-256-10, Adam lr 1e-3, "
             f"batch 128, cosine; e = {o['epochs']}, {o['epochs_per_slice']} epochs per cumulative slice",
             f"- SISA training: {o['fit']['wall']:.1f} s wall / {o['fit']['cpu']:.1f} s CPU; test accuracy vote "
             f"{o['fit']['acc_vote']:.4f}, mean {o['fit']['acc_mean']:.4f}, weighted {o['fit']['acc_weighted']:.4f}; "
             f"monolithic {o['mono_acc']:.4f}", "",
             "| rep | full retrain s (wall / CPU) | deletion s (wall / CPU) | shard job s (wall) | work fraction "
             "(measured / expected) | share of ideal, CPU | share of ideal, wall | load (before → after) |",
             "|---|---|---|---|---|---|---|---|"]
    for i, x in enumerate(o["pairs"]):
        lines.append(f"| {i} | {x['full_wall']:.1f} / {x['full_cpu']:.1f} | {x['del_wall']:.2f} / {x['del_cpu']:.2f} | "
                     f"{x['shard_job_wall']:.2f} | {x['work_fraction']:.4f} / {x['expected_work_fraction']:.4f} | "
                     f"{x['eff_cpu']:.0%} | {x['eff_wall']:.0%} | {x['load']} |")
    effc = [x["eff_cpu"] for x in o["pairs"]]
    effw = [x["eff_wall"] for x in o["pairs"]]
    lines += ["", f"Share of the ideal {o['ideal']:.2f}× (CPU): median **{statistics.median(effc):.0%}** "
              f"(min {min(effc):.0%}, max {max(effc):.0%}); wall: median {statistics.median(effw):.0%} "
              f"(min {min(effw):.0%}, max {max(effw):.0%}). Plain ratio median(full) / mean(deletion): "
              f"{s['speedup_cpu_plain']:.2f}× CPU, {s['speedup_wall_plain']:.2f}× wall, at a mean measured work "
              f"fraction {s['mean_work_fraction']:.4f} over these {len(o['pairs'])} positions (formula "
              f"{o['formula_fraction']:.4f})."]
    if o.get("streams"):
        lines += ["", "| stream | requests | shards retrained | work fraction (measured / expected) | s (wall / CPU) | "
                  "requests / min (CPU) | load |", "|---|---|---|---|---|---|---|"]
        for x in o["streams"]:
            lines.append(f"| {x['label']} | {x['k']} | {x['shards']} | {x['work_fraction']:.3f} / "
                         f"{x['expected_work_fraction']:.3f} | {x['wall']:.1f} / {x['cpu']:.1f} | "
                         f"{60 * x['k'] / x['cpu']:.1f} | {x['load']} |")
        lines.append(f"\nOne at a time, the same requests would take about {statistics.mean(x['del_cpu'] for x in o['pairs']):.2f} s CPU each "
                     f"({60 / statistics.mean(x['del_cpu'] for x in o['pairs']):.1f} requests / min).")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")


def _ensemble(train: Any, test: Any, cfg: SisaConfig, init: dict[str, Any] | None) -> tuple[dict[str, float], float, float]:
    """Train every shard in memory as the engine does (placement, slices, seeds), optionally from a
    shared initial state; returns test accuracy per aggregation and the training wall / CPU seconds."""
    from obliviate.engine.sisa.training import _train_slice, live_rows, place

    def run() -> np.ndarray:
        assignment = place(train, cfg)
        recipe = replace(cfg.recipe, epochs=cfg.epochs_per_slice)
        probs = []
        with deterministic(cfg.threads):
            for k in range(cfg.shards):
                rows, prefix = live_rows(assignment[k], np.zeros(len(train), dtype=bool))
                model = build_model(cfg.model, train.input_shape, train.n_classes, seed=derive_seed(cfg.seed, k))
                if init is not None:
                    model.load_state_dict(init)
                for r, n in enumerate(prefix):
                    _train_slice(model, train.x[rows], train.y[rows], train.ids[rows], n, recipe,
                                 derive_seed(cfg.seed, k, r), train.n_classes)
                probs.append(_softmax(predict_logits(model, test.x)))
        return np.stack(probs)

    probs, wall, cpu = timed(run)
    sizes = np.ones(cfg.shards)
    return ({k: float((agg(probs, sizes).argmax(1) == test.y).mean()) for k, agg in AGGREGATORS.items()}, wall, cpu)


def _softmax(z: np.ndarray) -> np.ndarray:
    z = np.asarray(z, dtype=np.float64)
    e = np.exp(z - z.max(1, keepdims=True))
    return e / e.sum(1, keepdims=True)


def issue18_accuracy(args: Any) -> int:
    """Accuracy of the remedies at S, R = goal against the monolithic model, with their costs."""
    import json

    bundle = load_dataset("fashion-mnist", data_dir=args.data_dir)
    train, test = bundle.train, bundle.test
    if args.n_train and args.n_train < len(train):
        train = train.subset(np.sort(np.random.default_rng(args.seed).permutation(len(train))[:args.n_train]))
    epochs = args.epochs or 20
    s_, r_ = tuple(ints(args.goal))
    recipe = Recipe(epochs=epochs, batch_size=128, lr=1e-3)
    spec = ModelSpec("mlp", {"hidden": ints(args.hidden)})
    print(f"issue 18 accuracy: {len(train)} train, S={s_} R={r_}, e={epochs}", flush=True)
    out: dict[str, Any] = {"n_train": len(train), "n_test": len(test), "S": s_, "R": r_, "epochs": epochs,
                           "load_start": loadavg(), "machine": machine_info(), "rows": [],
                           "date": dt.datetime.now(dt.timezone.utc).isoformat()}
    with deterministic(1):
        mono = build_model(spec, train.input_shape, 10, seed=derive_seed(args.seed, 0))
        _, w, c = timed(lambda: train_classifier(mono, train, recipe, seed=args.seed))
    out["mono"] = {"acc": float((predict_logits(mono, test.x).argmax(1) == test.y).mean()), "wall": w, "cpu": c,
                   "load": loadavg()}
    print(f"monolithic {out['mono']}", flush=True)
    # Public pre-training data no requester owns: MNIST digits (another data set), its training split.
    mnist = load_dataset("mnist", data_dir=args.data_dir).train
    with deterministic(1):
        pre = build_model(spec, mnist.input_shape, 10, seed=derive_seed(args.seed, 99))
        _, pw, pc = timed(lambda: train_classifier(pre, mnist, Recipe(epochs=args.pretrain_epochs, batch_size=128,
                                                                       lr=1e-3), seed=args.seed))
    init = {k: v.detach().clone() for k, v in pre.state_dict().items()}
    out["pretrain"] = {"data": f"MNIST train ({len(mnist)} digits)", "epochs": args.pretrain_epochs, "wall": pw,
                       "cpu": pc}
    remedies = [("same epochs, own init (today)", 1, None), ("shared init from MNIST", 1, init),
                ("same steps as the monolith", s_, None), ("same steps + shared init from MNIST", s_, init),
                ("twice the epochs", 2, None)]
    chosen = ints(args.only) if args.only else list(range(args.remedies))
    for name, mult, start in [remedies[i] for i in chosen]:
        cfg = SisaConfig(shards=s_, slices=r_, model=spec, recipe=replace(recipe, epochs=epochs * mult),
                         seed=args.seed, threads=1)
        load_before = loadavg()
        accs, w, c = _ensemble(train, test, cfg, start)
        row = {"remedy": name, "epochs": epochs * mult, "epochs_per_slice": cfg.epochs_per_slice, **accs,
               "wall": w, "cpu": c, "deletion_work_fraction": (2 / 3 + 1 / (3 * r_)) / s_ * mult,
               "load": f"{load_before} → {loadavg()}"}
        out["rows"].append(row)
        print(row, flush=True)
    out["load_end"] = loadavg()
    Path(args.out).with_suffix(".json").write_text(json.dumps(out, indent=2, default=str))
    o, mono_acc = out, out["mono"]["acc"]
    lines = [f"### Accuracy remedies (S={s_}, R={r_})", "",
             f"- command: `python benchmarks/bench_sisa.py --issue18 accuracy"
             f"{'' if o['n_train'] == 60000 else ' --n-train ' + str(o['n_train'])} --remedies {args.remedies}{' --only ' + args.only if args.only else ''}`",
             f"- date: {o['date'][:16]} UTC; machine: {o['machine']['cpu']}, {o['machine']['cores']} cores (shared), "
             f"one torch thread; load average at start / end: {o['load_start']} / {o['load_end']}",
             f"- data: Fashion-MNIST, {o['n_train']} train{'' if o['n_train'] == 60000 else ' (seeded subset)'} / {o['n_test']} test; MLP 784-256-10, "
             f"Adam lr 1e-3, batch 128, cosine; e = {epochs}",
             f"- monolithic model: test accuracy **{mono_acc:.4f}**, {o['mono']['wall']:.1f} s wall / "
             f"{o['mono']['cpu']:.1f} s CPU",
             f"- shared initialisation: the same MLP pre-trained on {o['pretrain']['data']} for "
             f"{o['pretrain']['epochs']} epochs ({pc:.1f} s CPU, paid once, never on a deletion); no Fashion-MNIST "
             "example (so no requester's data) is in it", "",
             "| remedy | epochs e (per slice) | acc vote | acc mean | acc weighted | Δ mean vs mono (pts) | "
             "training s (wall / CPU) | expected deletion work fraction | load (before → after) |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in o["rows"]:
        lines.append(f"| {r['remedy']} | {r['epochs']} ({r['epochs_per_slice']}) | {r['vote']:.4f} | {r['mean']:.4f} | "
                     f"{r['weighted']:.4f} | {100 * (r['mean'] - mono_acc):+.2f} | {r['wall']:.0f} / {r['cpu']:.0f} | "
                     f"{r['deletion_work_fraction']:.4f} | {r['load']} |")
    Path(args.out).write_text("\n".join(lines) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
