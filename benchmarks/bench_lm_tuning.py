"""Issue 17 benchmark: the persons LM bench with oracle-free tuning, S seeds x D corpus draws.

    .venv/bin/python benchmarks/bench_lm_tuning.py --seeds 5 --draws 2 --methods graddiff,npo

Each corpus draw ``d`` fixes the corpus seed to ``d`` (the people, the forget people, their
neighbours and the tuning people); the run seeds ``0..S-1`` then vary the models (their
initialisation and data order) and the methods' random streams. Every (draw, seed) trains its
original and retain-only model in this run (a fresh model cache unless ``--cache-dir``), then
runs each method at its small-LM defaults (``tuned: false``) and with the oracle-free selection
of ``obliviate.tasks.lm_tuning`` (``tuned: true``; its whole time is the row's ``wall_s``).
This is ``obliviate bench --task persons --tune --seeds S`` with ``corpus.seed`` set, once per
draw. The relearning and in-context attacks are off unless ``--attacks`` (they do not enter
the goals and take a third of a seed's time).

Raw records (every row, every selection's trials and checks) go to
``benchmarks/results/lm_tuning/draw<d>.json``; a Markdown summary with machine, date and load
to ``benchmarks/results/lm_tuning.md``. Re-executes itself with PYTHONHASHSEED=0 (Faker's
it_IT cities depend on it).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from typing import Any

FQ_GOAL, MU_GOAL = 0.05, 0.9


def main() -> int:
    if os.environ.get("PYTHONHASHSEED") is None:
        os.execve(sys.executable, [sys.executable, *sys.argv], {**os.environ, "PYTHONHASHSEED": "0"})
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--methods", default="graddiff,npo")
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--draws", default="0,1", help="corpus seeds, one per draw (default 0,1)")
    ap.add_argument("--attacks", action="store_true", help="also run the relearning and in-context attacks")
    ap.add_argument("--set", action="append", default=[], help="method.param=value (as obliviate bench --set)")
    ap.add_argument("--out", default="runs/bench-lm-tuning")
    ap.add_argument("--raw", default="benchmarks/results/lm_tuning")
    ap.add_argument("--results", default="benchmarks/results/lm_tuning.md")
    ap.add_argument("--cache-dir", default=None, help="reuse trained models from here (default: a fresh temp dir)")
    ap.add_argument("--config", default=None, help="a JSON file of LMBenchConfig fields merged into each draw's "
                    "(e.g. smaller sizes for a smoke run); the draw's corpus seed still wins")
    ap.add_argument("--no-progress", action="store_true")
    args = ap.parse_args()

    import torch

    torch.set_num_threads(1)
    import obliviate.removal  # noqa: F401
    from obliviate.bench.runner import run_bench
    from obliviate.cli.common import parse_assignments
    from obliviate.config import validate
    from obliviate.machine import format_load, load_average
    from obliviate.progress import get_progress
    from obliviate.report.lm import write_reports
    from obliviate.tasks.lm_config import LMBenchConfig

    draws = [int(d) for d in args.draws.split(",")]
    cache = args.cache_dir or tempfile.mkdtemp(prefix="obliviate-bench-lm-tuning-")
    os.makedirs(args.raw, exist_ok=True)
    load_before = load_average()
    t_all = time.time()
    rows: list[dict[str, Any]] = []
    per_draw: dict[int, dict[str, Any]] = {}
    for d in draws:
        spec: dict[str, Any] = {"task": "persons", "methods": args.methods, "seeds": args.seeds, "tune": True,
                                "corpus": {"seed": d}, "out": f"{args.out}/draw{d}", "cache_dir": cache,
                                "progress": not args.no_progress, "threads": 1,
                                "method_config": parse_assignments(args.set)}
        if not args.attacks:
            spec["attacks"] = {"relearn": {"enabled": False}, "icl": {"enabled": False}}
        if args.config:
            with open(args.config) as fh:
                extra = json.load(fh)
            spec = {**extra, **{k: v for k, v in spec.items() if k not in extra or k in ("corpus", "out")}}
            spec["corpus"] = {**extra.get("corpus", {}), "seed": d}
        cfg = validate(LMBenchConfig, spec)
        load0, t0 = load_average(), time.time()
        result = run_bench(cfg, progress=get_progress(cfg.progress))
        wall = time.time() - t0
        write_reports(result, cfg.out)
        per_draw[d] = {"wall_s": wall, "load_before": load0, "load_after": load_average(),
                       "seeds": {s: {k: m.get(k) for k in ("seed_wall_s", "train_pair_s", "original_train_s",
                                                           "retain_train_s", "original_cached", "retain_cached",
                                                           "tuning_levels", "n_forget", "n_tuning_people",
                                                           "corpus_seed")}
                                 for s, m in result.meta["seeds"].items()}}
        raw = {"draw": d, "corpus_seed": d, "config": result.config, "meta": result.meta, "records": result.records,
               "wall_s": wall, "load_before": load0, "load_after": per_draw[d]["load_after"]}
        with open(os.path.join(args.raw, f"draw{d}.json"), "w") as fh:
            json.dump(raw, fh, indent=1, default=_jsonable)
        rows += [{**r, "draw": d} for r in result.records]
        print(f"draw {d}: {wall / 60:.1f} min", flush=True)
    wall_all = time.time() - t_all
    load_after = load_average()
    machine = result.meta["machine"]
    lines = [
        "# Persons LM: oracle-free tuning (issue 17)",
        "",
        f"- command: `.venv/bin/python benchmarks/bench_lm_tuning.py --methods {args.methods} --seeds {args.seeds} "
        f"--draws {args.draws}" + (" --attacks" if args.attacks else "")
        + "".join(f" --set {s}" for s in args.set) + "`",
        f"- date: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; total wall time {wall_all / 60:.1f} min; "
        + "; ".join(f"draw {d}: {v['wall_s'] / 60:.1f} min (per seed "
                    + ", ".join(f"{s}: {m['seed_wall_s'] / 60:.1f}" for s, m in v["seeds"].items()) + ")"
                    for d, v in per_draw.items()),
        f"- machine: {machine['cpu']}, {machine['cores']} cores, torch {machine['torch']}; load average "
        f"before/after: {format_load(load_before and load_before[:1], digits=1)} / "
        f"{format_load(load_after and load_after[:1], digits=1)}; per draw: "
        + ", ".join(f"{d}: {format_load(v['load_before'] and v['load_before'][:1], digits=1)} / "
                    f"{format_load(v['load_after'] and v['load_after'][:1], digits=1)}" for d, v in per_draw.items()),
        "",
        *summary_lines(rows),
    ]
    with open(args.results, "w") as fh:
        fh.write("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


def _jsonable(o: Any) -> Any:
    try:
        import numpy as np

        if isinstance(o, np.generic):
            return o.item()
        if isinstance(o, np.ndarray):
            return o.tolist()
    except ImportError:  # pragma: no cover
        pass
    return str(o)


def _f(v: Any, digits: int = 3) -> str:
    if v is None or (isinstance(v, float) and v != v):
        return "n/a"
    if isinstance(v, float) and abs(v) < 1e-3 and v != 0:
        return f"{v:.1e}"
    return f"{v:.{digits}f}" if isinstance(v, float) else str(v)


def passes(r: dict[str, Any]) -> bool:
    return r.get("forget_quality", 0) >= FQ_GOAL and r.get("model_utility_ratio", 0) >= MU_GOAL


def summary_lines(rows: list[dict[str, Any]]) -> list[str]:
    """Per-row table (draw, seed, method, tuned) and a per-variant tally of the goal."""
    head = ("| draw | seed | method | tuned | FQ | MU / retain-only | PrivLeak | Neighbours ROUGE | Neighbours exact "
            "| Forget ROUGE | Retain ROUGE | chosen | steps | stopped | targets met | time s | time ratio |")
    out = [head, "|" + "---|" * (head.count("|") - 1)]
    for r in rows:
        tuned = r.get("tuned")
        label = "-" if tuned is None else ("yes" if tuned else "no")
        chosen = (r.get("tuning") or {}).get("chosen")
        out.append(
            f"| {r['draw']} | {r['seed']} | {r['method']} | {label} | {_f(r.get('forget_quality'))} | "
            f"{_f(r.get('model_utility_ratio'))} | {_f(r.get('privleak'))} | {_f(r.get('neighbours_rouge'))} | "
            f"{_f(r.get('neighbours_exact'))} | {_f(r.get('forget_rouge'))} | {_f(r.get('retain_rouge'))} | "
            f"{json.dumps(chosen) if chosen is not None else '-'} | {r.get('steps', '')} | {r.get('stopped_by', '')} | "
            f"{'yes' if r.get('tuning_met') else ('no' if tuned else '-')} | {_f(r.get('wall_s'), 1)} | "
            f"{_f(r.get('wall_ratio'))} |")
    out += ["", "| method | tuned | rows | FQ >= 0.05 and MU >= 0.9 | mean PrivLeak | mean neighbours ROUGE | "
            "mean MU ratio | median FQ | mean time ratio |", "|---|---|---|---|---|---|---|---|---|"]
    import numpy as np

    groups: dict[tuple[str, Any], list[dict[str, Any]]] = {}
    for r in rows:
        groups.setdefault((r["method"], r.get("tuned")), []).append(r)
    for (method, tuned), rs in groups.items():
        label = "-" if tuned is None else ("yes" if tuned else "no")
        out.append(f"| {method} | {label} | {len(rs)} | {sum(passes(r) for r in rs)} of {len(rs)} | "
                   f"{np.mean([r['privleak'] for r in rs]):.3f} | {np.mean([r['neighbours_rouge'] for r in rs]):.3f} | "
                   f"{np.mean([r['model_utility_ratio'] for r in rs]):.3f} | "
                   f"{_f(float(np.median([r['forget_quality'] for r in rs])))} | "
                   f"{np.mean([r['wall_ratio'] for r in rs]):.3f} |")
    return out


if __name__ == "__main__":
    sys.exit(main())
