"""Issue 17 benchmark: why some approximate methods do nothing (or collapse the model) at their defaults.

    # both parts, then the summary table (benchmarks/results/method_diagnosis/summary.md); ~20 min on 2 cores
    flock /tmp/obliviate-bench.lock .venv/bin/python benchmarks/bench_method_diagnosis.py run --data-dir ../shared/data
    .venv/bin/python benchmarks/bench_method_diagnosis.py summarise

Part ``methods``: Fashion-MNIST, a class-stratified 5,000-image training subset (the issue-3 setting),
the built-in MLP fitted for 120 epochs (100% train accuracy), random 10% forgetting, 3 seeds. Every
method of the diagnosis runs at its defaults, and then under *diagnostic settings*: one change each,
chosen from a hypothesis about why the default does nothing (a learning rate on the scale of the
original's recipe, more steps, a looser selection threshold) and from the papers, never from the
retrained model. They are not proposed defaults and not tuned results: they show whether the named
cause is the cause. Rows labelled ``before`` run the adversarial methods with their radii in raw
input units (the code before issue 17).

Part ``amun``: the nearest setting to the AMUN paper's that fits on 2 cores: a small CNN on a
2,500-image MNIST subset (the issue-3 CNN setting; the paper's is ResNet-18 on CIFAR-10), random 10%
forgetting, 2 seeds. AMUN as the paper describes it (nearest L2 adversarial examples by PGD-50 with
radius doubling, labelled with the model's prediction; fine-tune on D_F + D_A, with or without D_R),
its radius in raw pixel units as in the paper, and the ``include_forget=False`` ablation.

Both parts use one process: each seed's original and retrained model are trained once and shared
by every row of that seed, so time ratios divide by a retraining timed in this run. Raw records
(every field of every row, the run's metadata and load averages) go to
``benchmarks/results/method_diagnosis/<part>.json``.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "benchmarks" / "results" / "method_diagnosis"

# (label, method, overrides, the hypothesis the row tests); "" overrides = the method's defaults
METHOD_ROWS: list[tuple[str, str, dict[str, Any], str]] = [
    ("gradient_ascent", "gradient_ascent", {}, "defaults"),
    ("gradient_ascent lr=1e-3", "gradient_ascent", {"lr": 1e-3}, "lr: the original's Adam lr, not 1e-5"),
    ("gradient_ascent epochs=10", "gradient_ascent", {"epochs": 10.0}, "steps: 40 instead of 4"),
    ("random_label", "random_label", {}, "defaults"),
    ("random_label lr=1e-3", "random_label", {"lr": 1e-3}, "lr: the original's Adam lr"),
    ("rmu", "rmu", {}, "defaults"),
    ("rmu lr=1e-3 epochs=10", "rmu", {"lr": 1e-3, "epochs": 10.0}, "LLM lr and 4 steps"),
    ("rmu lr=1e-3 epochs=10 alpha=1", "rmu", {"lr": 1e-3, "epochs": 10.0, "alpha": 1.0},
     "+ retain weight not sized for 7B activations"),
    ("ssd", "ssd", {}, "defaults"),
    ("ssd alpha=2", "ssd", {"alpha": 2.0}, "selection threshold"),
    ("ssd alpha=1", "ssd", {"alpha": 1.0}, "selection threshold"),
    ("scrub", "scrub", {}, "defaults"),
    ("scrub lr=5e-3", "scrub", {"lr": 5e-3}, "lr x10"),
    ("salun", "salun", {}, "defaults (SGD lr 0.1)"),
    ("salun lr=0.01", "salun", {"lr": 0.01}, "lr: an Adam-trained MLP under SGD 0.1"),
    ("salun lr=0.01 epochs=2", "salun", {"lr": 0.01, "epochs": 2}, "+ fewer retain passes"),
    ("boundary_shrink before", "boundary_shrink", {"units": "input", "bound": 0.1, "step_size": 8 / 255},
     "raw-pixel radius (before issue 17)"),
    ("boundary_shrink", "boundary_shrink", {}, "defaults (std units)"),
    ("boundary_shrink lr=1e-3", "boundary_shrink", {"lr": 1e-3}, "lr x100"),
    ("amun before", "amun", {"units": "input"}, "raw-pixel radius (before issue 17)"),
    ("amun", "amun", {}, "defaults (std units)"),
    ("amun include_forget=False", "amun", {"include_forget": False}, "forget examples not kept at true labels"),
    ("aru before", "aru", {"units": "input", "eps": 8 / 255, "step_size": 2 / 255},
     "raw-pixel radius (before issue 17)"),
    ("aru", "aru", {}, "defaults (std units)"),
    ("graddiff", "graddiff", {}, "reference: the best fast method of issue 3"),
]

AMUN_ROWS: list[tuple[str, str, dict[str, Any], str]] = [
    ("amun paper D_F+D_A", "amun", {"units": "input", "use_retain": False}, "the paper's AMUN without D_R"),
    ("amun paper D_F+D_A+D_R", "amun", {"units": "input"}, "the paper's AMUN with D_R"),
    ("amun include_forget=False", "amun", {"units": "input", "include_forget": False}, "ablation: D_A + D_R"),
    ("graddiff", "graddiff", {}, "reference: the best fast method of issue 3"),
]

PARTS = {
    "methods": {"rows": METHOD_ROWS, "dataset": "fashion-mnist", "model": "mlp", "train_subset": 5000,
                "epochs": 120, "seeds": [0, 1, 2]},
    "amun": {"rows": AMUN_ROWS, "dataset": "mnist", "model": "cnn", "train_subset": 2500, "epochs": 20,
             "seeds": [0, 1]},
}
KEEP = ("method", "seed", "ua", "ra", "ta", "tow", "mia_auc", "pred_changed", "collapsed", "steps", "stopped_by",
        "wall_s", "wall_ratio", "config", "dampened", "dampened_fraction", "boundary_crossed", "adversarial_found",
        "median_eps", "max_steps", "min_steps", "updated_parameters", "layer", "saliency_fraction")


def run_part(name: str, args: argparse.Namespace) -> dict[str, Any]:
    import torch

    from obliviate.bench.runner import make_task
    from obliviate.machine import load_average, machine_info
    from obliviate.progress import NullProgress
    from obliviate.removal.base import Budget
    from obliviate.tasks.classification import BenchConfig

    part = PARTS[name]
    seeds = part["seeds"][:args.seeds] if args.seeds else part["seeds"]
    torch.set_num_threads(1)
    cfg = BenchConfig(dataset=part["dataset"], data_dir=args.data_dir, model=part["model"], forget="random:0.1",
                      methods=["retrain"], seeds=seeds, train_subset=part["train_subset"],
                      cache_dir=str(Path(args.cache_dir).resolve()), threads=1, progress=False,
                      out=str(ROOT / "runs" / "method-diagnosis" / name), recipe={"epochs": part["epochs"]})
    task = make_task(cfg)
    task.preflight()
    task.setup()
    cache = task.cache()
    records: list[dict[str, Any]] = []
    meta: dict[str, Any] = {"part": name, "dataset": part["dataset"], "model": part["model"],
                            "train_subset": part["train_subset"], "epochs": part["epochs"], "seeds": {},
                            "machine": machine_info(), "started": time.strftime("%Y-%m-%d %H:%M:%S"),
                            "load_before": load_average()}
    t0 = time.perf_counter()
    for seed in seeds:
        run = task.seed_run(seed, cache=cache, progress=NullProgress())
        for rec in run.reference_records():
            records.append({"label": rec["method"], "why": "reference", **_keep(rec)})
        for label, method, overrides, why in part["rows"]:
            task.config.method_config = {method: overrides}
            (rec,) = run.run_methods([method], Budget(), NullProgress())
            records.append({"label": label, "why": why, "overrides": overrides, **_keep(rec)})
            print(f"[{name}] seed {seed} {label:34s} tow={rec['tow']:.4f} ua={rec['ua']:.3f} ta={rec['ta']:.3f} "
                  f"changed={rec['pred_changed']:.4f} steps={rec['steps']} ratio={rec['wall_ratio']:.3f}",
                  flush=True)
        meta["seeds"][str(seed)] = run.meta
    meta["wall_s"] = time.perf_counter() - t0
    meta["finished"] = time.strftime("%Y-%m-%d %H:%M:%S")
    meta["load_after"] = load_average()
    return {"meta": meta, "records": records}


def _keep(rec: dict[str, Any]) -> dict[str, Any]:
    return {k: rec[k] for k in KEEP if k in rec}


def _mean_spread(values: list[float]) -> tuple[float, float]:
    vals = [v for v in values if v is not None and not (isinstance(v, float) and math.isnan(v))]
    if not vals:
        return float("nan"), float("nan")
    m = sum(vals) / len(vals)
    return m, (max(vals) - min(vals)) / 2


def summarise_part(data: dict[str, Any]) -> str:
    recs, meta = data["records"], data["meta"]
    orig = {r["seed"]: r["tow"] for r in recs if r["label"] == "original"}
    labels = list(dict.fromkeys(r["label"] for r in recs))
    n_seeds = len(orig)
    lines = [f"### {meta['part']}: {meta['dataset']} {meta['model']}, {meta['train_subset']}-image subset, "
             f"random 10%, {n_seeds} seeds",
             "",
             f"{meta['started']} to {meta['finished']}; load average {_load(meta['load_before'])} before, "
             f"{_load(meta['load_after'])} after; {meta['wall_s'] / 60:.1f} min. "
             "Mean ± half the range over seeds; gap share = (ToW - ToW_original) / (1 - ToW_original); "
             "changed = share of forget/retain/test predictions that differ from the original's; "
             "collapsed = seeds whose test accuracy is at or below the majority-class rate.",
             "",
             "| row | what it tests | UA | RA | TA | MIA AUC | ToW | gap share | changed | collapsed | steps | time ratio |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for label in labels:
        rows = [r for r in recs if r["label"] == label]
        gap = [(r["tow"] - orig[r["seed"]]) / (1 - orig[r["seed"]]) if orig[r["seed"]] < 1 else float("nan")
               for r in rows]
        cells = []
        for key in ("ua", "ra", "ta", "mia_auc", "tow"):
            m, s = _mean_spread([r.get(key) for r in rows])
            cells.append(f"{m:.3f} ± {s:.3f}")
        m, s = _mean_spread(gap)
        cells.append(f"{m:+.3f} ± {s:.3f}")
        m, _ = _mean_spread([r.get("pred_changed") for r in rows])
        cells.append(f"{m:.4f}")
        cells.append(f"{sum(bool(r.get('collapsed')) for r in rows)}/{len(rows)}")
        m, _ = _mean_spread([float(r.get("steps", 0)) for r in rows])
        cells.append(f"{m:.0f}")
        m, s = _mean_spread([r.get("wall_ratio") for r in rows])
        cells.append(f"{m:.3f}")
        lines.append(f"| {label} | {rows[0]['why']} | " + " | ".join(cells) + " |")
    extras = []
    for label in labels:
        rows = [r for r in recs if r["label"] == label]
        bits = []
        for key in ("dampened", "dampened_fraction", "boundary_crossed", "adversarial_found", "median_eps"):
            vals = [r[key] for r in rows if key in r]
            if vals:
                m, _ = _mean_spread([float(v) for v in vals])
                bits.append(f"{key} {m:.4g}")
        if bits:
            extras.append(f"- {label}: " + ", ".join(bits))
    if extras:
        lines += ["", "Method-specific record fields (mean over seeds):", "", *extras]
    return "\n".join(lines)


def _load(v: Any) -> str:
    return f"{v[0]:.2f}" if v else "n/a"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run")
    r.add_argument("--part", default="methods,amun", help="comma-separated: methods, amun")
    r.add_argument("--data-dir", default=str(ROOT.parent / "shared" / "data"))
    r.add_argument("--cache-dir", default=str(ROOT / "runs" / "method-diagnosis" / "cache"))
    r.add_argument("--seeds", type=int, default=0, help="use only the first N seeds of each part (0 = all)")
    sub.add_parser("summarise")
    args = p.parse_args(argv)
    OUT.mkdir(parents=True, exist_ok=True)
    if args.cmd == "run":
        for name in args.part.split(","):
            data = run_part(name, args)
            (OUT / f"{name}.json").write_text(json.dumps(data, indent=1, default=str))
    parts = [json.loads((OUT / f"{n}.json").read_text()) for n in PARTS if (OUT / f"{n}.json").is_file()]
    text = "\n\n".join(summarise_part(d) for d in parts)
    (OUT / "summary.md").write_text("# Why some methods do nothing (issue 17): raw summary\n\n" + text + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
