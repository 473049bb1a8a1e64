"""Reporters for language-model bench results: JSON, Markdown and HTML with plots.

The table follows TOFU's layout (forget quality, model utility, then the per-split
numbers), with MUSE's PrivLeak and verbatim memorisation, and the two recovery
attacks. Every number is the mean over seeds with a 95% interval.
"""

from __future__ import annotations

import base64
import html
import json
import math
from pathlib import Path
from typing import Any

import numpy as np

from obliviate.tasks.base import BenchResult as LMResult
from obliviate.report.aggregate import fmt, summarise
from obliviate.report.plots import grouped_bars, to_png
from obliviate.training.checkpoint import atomic_write_bytes, atomic_write_json

COLUMNS = [
    ("forget_quality", "Forget quality"), ("model_utility", "Model utility"), ("model_utility_ratio", "MU / retain-only"),
    ("forget_rouge", "Forget ROUGE"), ("forget_prob", "Forget prob"), ("forget_truth_ratio", "Forget TR"),
    ("retain_rouge", "Retain ROUGE"), ("holdout_rouge", "Holdout ROUGE"),
    ("neighbours_rouge", "Neighbours ROUGE"), ("general_rouge", "General ROUGE"),
    ("privleak", "PrivLeak"), ("verbatim_rouge", "Verbatim ROUGE"),
    ("relearn_recovery", "Relearn gap"), ("icl_recovery", "ICL recovery"),
    ("wall_s", "time s"), ("wall_ratio", "time ratio"),
]
EXTRA_METRICS = [
    "log10_forget_quality", "forget_exact", "retain_exact", "retain_prob", "retain_truth_ratio", "holdout_prob",
    "real_authors_rouge", "world_facts_rouge", "mia_auc_loss", "mia_auc_zlib", "mia_auc_min_k", "mia_auc_min_k_pp",
    "privleak_loss", "privleak_zlib", "privleak_min_k_pp", "verbatim_exact", "relearn_rouge_gain",
    "relearn_rouge_control_gain", "relearn_rouge_excess", "icl_after_gap", "relearn_rouge_after", "relearn_prob_excess", "icl_rouge_none", "icl_rouge_facts",
    "icl_rouge_related", "icl_recovery_control", "icl_related_recovery", "icl_related_recovery_control", "icl_excess",
]
METRICS = [c for c, _ in COLUMNS] + EXTRA_METRICS

EXPLAIN = """\
How to read this table. Every number is the mean over seeds ± the half-width of a 95% interval.
`original` is the model before unlearning; `retrain` is the retain-only model, trained from scratch
without the forget set: the gold standard every method should move *to*.
Forget quality (TOFU) is the KS-test p-value between the forget-set truth ratios of a model and of
the retain-only model: near 1 = indistinguishable from never having seen the forget set; TOFU treats
>= 0.05 as not rejected. Model utility (TOFU) is the harmonic mean of answer probability, ROUGE-L
recall and truth ratio on the retain and general-knowledge sets; "MU / retain-only" divides by the
retain-only model's. ROUGE columns are ROUGE-L recall of greedy answers. PrivLeak (MUSE) compares the
Min-K% membership AUC (forget vs holdout) with the retain-only model's: 0 ideal, > 0 the forget set
still looks trained on, < 0 over-unlearned. Verbatim ROUGE: greedy continuation of half-given forget
answers. Relearn gap: fine-tune on half of each forgotten person's facts for a few steps, then
ROUGE-L on the held-back half minus what the retain-only model reaches after the same steps
(0 = as if never seen; the original shows what "not forgotten" looks like).
ICL recovery: ROUGE-L gained by putting the forget facts in the prompt; compare with the `retrain`
row: in a model that learns in context, context brings facts back even after exact removal. A
negative value means the context made answers worse: the model cannot read facts from a prompt
(small models trained from scratch here cannot), and the attack says nothing about it."""


def _clean(obj: Any) -> Any:
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, (np.floating, np.integer)):
        return _clean(obj.item())
    if isinstance(obj, dict):
        return {k: _clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_clean(v) for v in obj]
    return obj


def _fmt_fq(value: tuple[float, float]) -> str:
    mean, half = value
    if not np.isfinite(mean):
        return "n/a"
    if mean < 1e-3:
        return f"{mean:.1e}"
    return fmt(value)


def _columns(summary: list[dict[str, Any]]) -> list[tuple[str, str]]:
    """Columns that have a value for at least one method (TOFU has no neighbours; general is per set there)."""
    return [(c, label) for c, label in COLUMNS if any(np.isfinite(row[c][0]) for row in summary)]


def to_markdown(result: LMResult) -> str:
    summary = summarise(result.records, METRICS)
    cfg, meta = result.config, result.meta
    machine = meta.get("machine", {})
    lines = [f"# Language-model unlearning benchmark: {cfg.get('task')}" + (f" {cfg.get('split')}" if cfg.get("split") else ""),
             "",
             f"- seeds: {cfg.get('seeds')}; methods: {', '.join(meta.get('methods', []))}",
             f"- machine: {machine.get('cpu')} ({machine.get('cores')} cores, torch threads {machine.get('torch_threads')}), "
             f"torch {machine.get('torch')}; load average at the end {meta.get('load_average')}",
             f"- run: {meta.get('started')} → {meta.get('finished')}", ""]
    seeds = meta.get("seeds", {})
    if seeds:
        lines += ["| seed | model | train | forget | retain | original exact (train) | retain-only exact (retain) | "
                  "original s | retain-only s | seed wall s |", "|---" * 10 + "|"]
        for s, m in seeds.items():
            model = m.get("model", {})
            desc = (f"GPT-2 {model.get('n_layer')}x{model.get('n_embd')}, vocab {model.get('vocab_size')}, "
                    f"{model.get('parameters')} params" if model.get("kind") == "gpt2" else str(model.get("path")))
            lines.append(f"| {s} | {desc} | {m.get('n_train')} | {m.get('n_forget')} | {m.get('n_retain')} | "
                         f"{m.get('original_train_exact', float('nan')):.3f} | {m.get('retain_train_exact', float('nan')):.3f} | "
                         f"{m.get('original_train_s', 0):.0f} | {m.get('retain_train_s', 0):.0f} | {m.get('seed_wall_s', 0):.0f} |")
        lines.append("")
    cols = _columns(summary)
    lines.append("| method | " + " | ".join(label for _, label in cols) + " |")
    lines.append("|---" * (len(cols) + 1) + "|")
    for row in summary:
        cells = [(_fmt_fq(row[c]) if c == "forget_quality" else fmt(row[c])) for c, _ in cols]
        lines.append(f"| {row['method']} | " + " | ".join(cells) + " |")
    lines += ["", EXPLAIN, ""]
    return "\n".join(lines)


def _tradeoff(summary: list[dict[str, Any]]) -> bytes:
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.6))
    for row in summary:
        (fq, _), (mu, mu_h) = row["forget_quality"], row["model_utility"]
        if not (np.isfinite(fq) and np.isfinite(mu)):
            continue
        fq = max(fq, 1e-30)
        marker = "*" if row["method"] == "retrain" else ("s" if row["method"] == "original" else "o")
        ax.errorbar(fq, mu, yerr=mu_h if np.isfinite(mu_h) else None, fmt=marker, capsize=3, markersize=8)
        ax.annotate(row["method"], (fq, mu), textcoords="offset points", xytext=(5, 4), fontsize=8)
    ax.set_xscale("log")
    ax.axvline(0.05, color="grey", ls="--", lw=0.8)
    ax.set_xlabel("forget quality (KS p-value vs retain-only, log)")
    ax.set_ylabel("model utility")
    ax.set_title("Forget quality against model utility (TOFU)")
    ax.grid(alpha=0.3)
    return to_png(fig)


def figures(result: LMResult) -> list[tuple[str, bytes]]:
    summary = summarise(result.records, METRICS)
    splits = [s for s in ("forget", "retain", "holdout", "neighbours", "general", "real_authors", "world_facts")
              if any(np.isfinite(row.get(f"{s}_rouge", (np.nan, np.nan))[0]) for row in summary)]
    return [
        ("Forget quality against model utility", _tradeoff(summary)),
        ("ROUGE-L per split", to_png(grouped_bars(summary, [f"{s}_rouge" for s in splits], splits,
                                                  title="ROUGE-L recall of greedy answers", ylabel="ROUGE-L"))),
        ("Membership attacks", to_png(grouped_bars(
            summary, ["mia_auc_loss", "mia_auc_zlib", "mia_auc_min_k", "mia_auc_min_k_pp"],
            ["LOSS", "zlib", "Min-K%", "Min-K%++"], title="Membership AUC, forget vs holdout", ylabel="AUC"))),
        ("Recovery attacks", to_png(grouped_bars(
            summary, ["relearn_rouge_gain", "icl_recovery", "icl_related_recovery"],
            ["relearning gain", "facts in context", "related facts in context"],
            title="How much comes back (ROUGE-L gain)", ylabel="ROUGE-L gain"))),
    ]


def to_html(result: LMResult) -> str:
    summary = summarise(result.records, METRICS)
    cols = _columns(summary)
    head = "".join(f"<th>{html.escape(label)}</th>" for _, label in cols)
    body = []
    for row in summary:
        cls = ' class="ref"' if row["method"] in ("original", "retrain") else ""
        cells = "".join(f"<td>{html.escape(_fmt_fq(row[c]) if c == 'forget_quality' else fmt(row[c]))}</td>"
                        for c, _ in cols)
        body.append(f"<tr{cls}><td><b>{html.escape(row['method'])}</b></td>{cells}</tr>")
    imgs = "".join(
        f"<figure><img alt='{html.escape(t)}' src='data:image/png;base64,{base64.b64encode(png).decode()}'/>"
        f"<figcaption>{html.escape(t)}</figcaption></figure>" for t, png in figures(result))
    cfg = html.escape(json.dumps(_clean(result.config), indent=2))
    meta = html.escape(json.dumps(_clean(result.meta.get("seeds", {})), indent=2))
    explain = html.escape(EXPLAIN).replace("\n", " ")
    title = f"{result.config.get('task')}" + (f" {result.config.get('split')}" if result.config.get("split") else "")
    return f"""<!doctype html><html><head><meta charset="utf-8"><title>obliviate LM report</title>
<style>body{{font-family:system-ui,sans-serif;max-width:1400px;margin:2em auto;padding:0 1em}}
table{{border-collapse:collapse;font-size:12px}}td,th{{border:1px solid #ccc;padding:4px 6px;text-align:right}}
td:first-child{{text-align:left}}tr.ref{{background:#f3f6fa}}figure{{display:inline-block;margin:1em}}
pre{{background:#f7f7f7;padding:1em;overflow:auto}}</style></head><body>
<h1>Language-model unlearning benchmark: {html.escape(title)}</h1>
<p>seeds {html.escape(str(result.config.get('seeds')))}, machine {html.escape(str(result.meta.get('machine', {}).get('cpu')))}</p>
<table><tr><th>method</th>{head}</tr>{''.join(body)}</table>
<p>{explain}</p>{imgs}
<h2>Per-seed setup</h2><pre>{meta}</pre>
<h2>Resolved configuration</h2><pre>{cfg}</pre></body></html>"""


def write_reports(result: LMResult, out: str | Path) -> dict[str, Path]:
    """Write results.json, config.json, meta.json, report.md and report.html into ``out``."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"results": out / "results.json", "config": out / "config.json", "meta": out / "meta.json",
             "markdown": out / "report.md", "html": out / "report.html"}
    atomic_write_json(paths["results"], _clean(result.records))
    atomic_write_json(paths["config"], _clean(result.config))
    atomic_write_json(paths["meta"], _clean(result.meta))
    atomic_write_bytes(paths["markdown"], to_markdown(result).encode())
    atomic_write_bytes(paths["html"], to_html(result).encode())
    return paths
