"""Issue 14 benchmark: suppression guards against attacks, over-refusal and latency.

    PYTHONPATH=src OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_guards.py

Runs ``obliviate guard eval --task persons`` at its default size (20 people, 2 forgotten;
the GPT-2 trained through obliviate.training.lm, from its cache when present), writes the
full report to ``runs/bench-guards``, then times every lexical guard on long texts
(1,000 and 4,000 characters, one full check each, as a non-streaming filter would) and
the sentence-encoder guard per call, and checks the issue's goals. Writes a Markdown
summary with command, machine, date and load to ``benchmarks/results/guards.md``.

Every number is a *suppression* number: the guards change outputs; the model's weights
still hold every protected fact.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from pathlib import Path

import numpy as np

from obliviate.suppression import GUARDS, GuardContext, compile_persons
from obliviate.suppression.attacks import CHARACTER_FAMILIES
from obliviate.suppression.evaluate import GuardEvalConfig, run_guard_eval
from obliviate.suppression.matching import views
from obliviate.suppression.report import write_reports

NEAR_VERBATIM = ("direct", "paraphrase", "typos", "continuation", "roleplay")


def latency(n_people: int, seed: int, repeats: int) -> dict[str, dict[str, float]]:
    """p50/p95 ms per call and per 1,000 characters of each guard on long texts (fresh text each call)."""
    from obliviate.data.persons import make_persons_corpus

    corpus = make_persons_corpus(n_people, 0.1, seed=seed)
    protected = compile_persons("subjects:" + ",".join(corpus.forget_subjects), corpus)
    rng = random.Random(seed)
    words = [w for ex in corpus.retain for w in (ex.question + " " + ex.answer).split()]
    out: dict[str, dict[str, float]] = {}
    for name in ("exact", "fuzzy", "pii", "minhash", "semantic"):
        try:
            guard = GUARDS.get(name)().fit(protected)
        except Exception as exc:  # the encoder may be missing: report, do not fail
            out[name] = {"error": str(exc)}  # type: ignore[dict-item]
            continue
        for size in (1000, 4000) if name != "semantic" else (60, 1000):
            times, cpu = [], []
            for i in range(repeats):
                text = " ".join(rng.choice(words) for _ in range(size // 4))[:size]
                views.cache_clear()
                t0, c0 = time.perf_counter(), time.thread_time()
                guard.check(text, GuardContext(prompt=text[:80], stage="output"))
                times.append((time.perf_counter() - t0) * 1000)
                cpu.append((time.thread_time() - c0) * 1000)
            ms, cms = np.array(times), np.array(cpu)
            per = max(1.0, size / 1000)
            out[f"{name}@{size}"] = {"chars": size, "p50_ms": float(np.percentile(ms, 50)),
                                     "p95_ms": float(np.percentile(ms, 95)),
                                     "p95_ms_per_1k_chars": float(np.percentile(ms, 95)) / per,
                                     "cpu_p95_ms_per_1k_chars": float(np.percentile(cms, 95)) / per}
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--people", type=int, default=20)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--repeats", type=int, default=100)
    ap.add_argument("--out", default="runs/bench-guards")
    ap.add_argument("--results", default="benchmarks/results/guards.md")
    args = ap.parse_args()
    import torch

    from obliviate.machine import load_average

    torch.set_num_threads(1)
    load0 = load_average() or (float('nan'),) * 3
    t0 = time.time()
    result = run_guard_eval(GuardEvalConfig(n_people=args.people, seed=args.seed))
    write_reports(result, args.out)
    eval_s = time.time() - t0
    lat = latency(args.people, args.seed, args.repeats)
    load1 = load_average() or (float('nan'),) * 3
    rows = result.rows

    def cell(gen: str, guard: str, fam: str) -> dict | None:
        return next((r for r in rows if r["generator"] == gen and r["guard"] == guard and r["family"] == fam), None)

    lines = ["# Suppression guards (issue 14): benchmark", "",
             f"Command: `PYTHONPATH=src OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_guards.py "
             f"--people {args.people} --seed {args.seed} --repeats {args.repeats}`  ",
             f"Date: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; machine: {result.meta['machine']['cpu']}, "
             f"{result.meta['machine']['cores']} cores, torch threads 1; load average at start "
             f"{load0[0]:.2f}/{load0[1]:.2f}/{load0[2]:.2f}, at end {load1[0]:.2f}/{load1[1]:.2f}/{load1[2]:.2f}.  ",
             f"Guard eval wall time {eval_s:.1f} s (model cached: {result.meta.get('model', {}).get('cached')}); "
             f"thresholds from the held-out ROC: "
             + ", ".join(f"{k} {v:.3f}" for k, v in result.thresholds.items()) + ".", "",
             "All numbers are suppression numbers: guards change outputs, the weights still hold the facts.", ""]
    # goal 1: direct and near-verbatim leaks blocked at <= 5% over-refusal
    lines += ["## Goal 1: direct and near-verbatim leaks blocked (>= 99%) at <= 5% over-refusal", "",
              "| generator | pipeline | family | leaks off | blocked | over-refusal (look-alikes) | over-refusal (generic) |",
              "|---|---|---|---|---|---|---|"]
    for gen in ("trained_model", "adversarial"):
        for pipe in ("exact", "lexical", "fuzzy", "exact_input", "semantic_input", "lexical+semantic_input"):
            for fam in NEAR_VERBATIM:
                r = cell(gen, pipe, fam)
                if r:
                    lines.append(f"| {gen} | {pipe} | {fam} | {r['leak_off'] * r['n']:.0f}/{r['n']} | "
                                 f"{r['blocked']:.3f} | {r['over_refusal']:.3f} | {r['over_refusal_generic']:.3f} |")
    # goal 2: character-level evasions
    lines += ["", "## Goal 2: evasion success with normalisation on (adversarial generator), every family", "",
              "| pipeline | " + " | ".join(f for f in result.config["families"]) + " |",
              "|---|" + "---|" * len(result.config["families"])]
    for pipe in ("exact_raw", "exact_norm", "exact", "fuzzy", "minhash", "lexical", "pii"):
        vals = [cell("adversarial", pipe, f) for f in result.config["families"]]
        if all(vals):
            lines.append(f"| {pipe} | " + " | ".join(f"{v['leak_on']:.2f}" for v in vals) + " |")
    worst = max(cell("adversarial", "exact", f)["leak_on"] for f in CHARACTER_FAMILIES)
    lines += ["", f"Character-level families ({', '.join(CHARACTER_FAMILIES)}) against `exact`: worst success "
              f"{worst:.3f} (goal <= 0.05: {'met' if worst <= 0.05 else 'NOT met'})."]
    # goal 3: latency
    lines += ["", "## Goal 3: latency (one full check of a fresh text per call)", "",
              "Wall-clock times on a shared machine include time the process waits for a core; the last "
              "column is the CPU time of the checking thread, which that wait does not inflate.", "",
              "| guard @ chars | p50 ms | p95 ms | p95 ms per 1,000 chars | p95 CPU ms per 1,000 chars |",
              "|---|---|---|---|---|"]
    for k, v in lat.items():
        if "error" in v:
            lines.append(f"| {k} | not run: {v['error']} | | | |")
        else:
            lines.append(f"| {k} | {v['p50_ms']:.2f} | {v['p95_ms']:.2f} | {v['p95_ms_per_1k_chars']:.2f} | "
                         f"{v['cpu_p95_ms_per_1k_chars']:.2f} |")
    lines += ["", "## Pipelines over all families (from guard_results.json)", "",
              "| generator | pipeline | leak off | leak on | over-refusal | over-refusal generic | benign correct off | "
              "benign correct on | p50 ms | p95 ms | p95 ms/1k chars |", "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        if r["family"] == "all":
            lines.append(f"| {r['generator']} | {r['guard']} | {r['leak_off']:.3f} | {r['leak_on']:.3f} | "
                         f"{r['over_refusal']:.3f} | {r['over_refusal_generic']:.3f} | {r['benign_correct_off']:.3f} | "
                         f"{r['benign_correct_on']:.3f} | {r['p50_ms']:.2f} | "
                         f"{r['p95_ms']:.2f} | {r['p95_ms_per_1k_chars']:.2f} |")
    text = "\n".join(lines) + "\n"
    Path(args.results).parent.mkdir(parents=True, exist_ok=True)
    Path(args.results).write_text(text)
    sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
