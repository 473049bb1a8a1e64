"""Issue 4 benchmark: language-model unlearning on the fictitious-persons corpus, every LM method, N seeds.

    .venv/bin/python benchmarks/bench_lm.py --seeds 3
    .venv/bin/python benchmarks/bench_lm.py --task tofu --split forget10 --seeds 1 --data-dir ../shared/data/tofu

The same run as ``obliviate bench --task persons --methods all --seeds 3``: 200 people
(18 facts each, 3,600 QA pairs plus 68 general facts), forget 10% (20 people, 360 QA),
a 2-layer, 128-wide GPT-2 with a 4,096-token BPE vocabulary trained from scratch for 40
epochs, and every registered language-model method with the task's small-model settings.
Original and retain-only models are trained in this run (a fresh model cache unless
``--cache-dir`` is given), side by side in two processes. Writes the full report to
``runs/bench-lm`` and a Markdown summary with machine, date, load and per-seed wall time
to ``benchmarks/results/lm.md``. With ``--task tofu`` the same pipeline runs on the TOFU
files (``--split forget01|forget05|forget10``) with a small GPT-2 trained here from scratch,
writing ``runs/bench-lm-tofu`` and ``benchmarks/results/lm_tofu.md``.

Faker's it_IT city names depend on PYTHONHASHSEED, so the persons corpus is only
reproducible across processes with a fixed hash seed: this script re-executes itself
with PYTHONHASHSEED=0 when it is not set.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time


def main() -> int:
    if os.environ.get("PYTHONHASHSEED") is None:
        os.execve(sys.executable, [sys.executable, *sys.argv], {**os.environ, "PYTHONHASHSEED": "0"})
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--task", default="persons", choices=["persons", "tofu"])
    ap.add_argument("--split", default=None, help="TOFU forget split (forget01, forget05, forget10)")
    ap.add_argument("--data-dir", default=None, help="folder with the TOFU files")
    ap.add_argument("--methods", default="all")
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--out", default=None, help="default runs/bench-lm (persons) or runs/bench-lm-tofu")
    ap.add_argument("--results", default=None, help="default benchmarks/results/lm.md or lm_tofu.md")
    ap.add_argument("--cache-dir", default=None, help="reuse trained models from here (default: a fresh temp dir)")
    ap.add_argument("--no-progress", action="store_true")
    ap.add_argument("--threads", type=int, default=1, help="torch CPU threads per process (default 1)")
    args = ap.parse_args()
    suffix = "" if args.task == "persons" else f"-{args.task}"
    args.out = args.out or f"runs/bench-lm{suffix}"
    args.results = args.results or f"benchmarks/results/lm{suffix.replace('-', '_')}.md"

    import torch

    torch.set_num_threads(args.threads)
    import obliviate.removal  # noqa: F401
    from obliviate.tasks.lm_config import LMBenchConfig
    from obliviate.bench.runner import run_bench as run_lm_bench
    from obliviate.config import validate
    from obliviate.machine import format_load, load_average
    from obliviate.progress import get_progress
    from obliviate.report.lm import to_markdown, write_reports

    load_before = load_average()
    cache = args.cache_dir or tempfile.mkdtemp(prefix="obliviate-bench-lm-")
    spec = {"task": args.task, "methods": args.methods, "seeds": args.seeds, "out": args.out,
            "cache_dir": cache, "progress": not args.no_progress}
    if args.split:
        spec["split"] = args.split
    if args.data_dir:
        spec["data_dir"] = args.data_dir
    cfg = validate(LMBenchConfig, spec)
    t0 = time.time()
    result = run_lm_bench(cfg, progress=get_progress(cfg.progress))
    wall = time.time() - t0
    write_reports(result, args.out)
    load_after = load_average()

    seeds = result.meta["seeds"]
    corpus_name = "persons corpus" if args.task == "persons" else f"TOFU {args.split or 'forget10'}"
    task_args = "" if args.task == "persons" else f"--task tofu --split {args.split or 'forget10'} " + (
        f"--data-dir {args.data_dir} " if args.data_dir else "")
    per_seed = ", ".join(f"{s}: {m['seed_wall_s'] / 60:.1f} min" for s, m in seeds.items())
    first = next(iter(seeds.values()))
    best = _best(result.records)
    lines = [
        f"# Language-model unlearning (issue 4): {corpus_name}",
        "",
        f"- command: `.venv/bin/python benchmarks/bench_lm.py {task_args}--methods {args.methods} --seeds {args.seeds} "
        f"--threads {args.threads}` (= `obliviate bench {task_args or '--task persons '}--methods {args.methods} "
        f"--seeds {args.seeds}`)",
        f"- date: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; total wall time {wall / 60:.1f} min; "
        f"per seed (train both models + every method + every metric and attack): {per_seed}",
        f"- machine: {result.meta['machine']['cpu']}, {result.meta['machine']['cores']} cores, torch "
        f"{result.meta['machine']['torch']} ({args.threads} thread per process; original and retain-only trained "
        f"in two processes); load average before/after: "
        f"{format_load(load_before and load_before[:1], digits=1)} / {format_load(load_after and load_after[:1], digits=1)}",
        (f"- corpus: {first['n_people']} people, forget {first['forget_fraction']:.0%} ({first['n_forget']} QA), "
         if args.task == "persons" else f"- TOFU {first['split']}: forget {first['n_forget']} QA, ")
        + f"{first['n_train']} training QA; evaluated per split: {first['eval_sizes']}",
        f"- model: GPT-2 {first['model']['n_layer']} layers x {first['model']['n_embd']}, {first['model']['n_head']} heads, "
        f"vocab {first['model']['vocab_size']}, {first['model']['parameters']:,} parameters; recipe {first['recipe']}",
        "- exact-answer accuracy on the training questions per seed (original / retain-only on its own data): "
        + ", ".join(f"{m['original_train_exact']:.3f} / {m['retain_train_exact']:.3f}" for m in seeds.values()),
        f"- best method by the issue's goal (forget quality >= 0.05 with model utility >= 90% of the retain-only "
        f"model's): {best}",
        "",
        to_markdown(result).split("\n", 6)[-1],
    ]
    os.makedirs(os.path.dirname(args.results) or ".", exist_ok=True)
    with open(args.results, "w") as fh:
        fh.write("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


def _best(records: list[dict]) -> str:
    import numpy as np

    from obliviate.report.aggregate import summarise

    rows = summarise(records, ["forget_quality", "model_utility_ratio"])
    ok = [r for r in rows if r["method"] not in ("original", "retrain")
          and r["forget_quality"][0] >= 0.05 and r["model_utility_ratio"][0] >= 0.9]
    if not ok:
        movers = [r for r in rows if r["method"] not in ("original", "retrain")]
        top = max(movers, key=lambda r: np.nan_to_num(r["forget_quality"][0]))
        return (f"none reached it; highest mean forget quality: {top['method']} "
                f"({top['forget_quality'][0]:.2g}, utility ratio {top['model_utility_ratio'][0]:.2f})")
    return "; ".join(f"{r['method']} (forget quality {r['forget_quality'][0]:.3g}, utility ratio "
                     f"{r['model_utility_ratio'][0]:.2f})" for r in ok)


if __name__ == "__main__":
    sys.exit(main())
