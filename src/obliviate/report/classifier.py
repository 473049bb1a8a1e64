"""Reporters for classifier bench results: JSON, Markdown and HTML (with plots)."""

from __future__ import annotations

import base64
import hashlib
import html
import json
import logging
import math
from pathlib import Path
from typing import Any

from obliviate.tasks.base import BenchResult
from obliviate.report.aggregate import fmt, summarise
from obliviate.report.plots import grouped_bars, scatter_tradeoff, to_png
from obliviate.training.checkpoint import atomic_write_bytes, atomic_write_json

log = logging.getLogger(__name__)

COLUMNS = [
    ("ua", "UA"), ("ra", "RA"), ("ta", "TA"), ("tow", "ToW"), ("tow_gap_closed", "ToW gap closed"),
    ("js_to_retrain", "JS→retrain"), ("mia_auc", "MIA AUC"), ("mia_efficacy", "MIA-eff (SVC)"),
    ("wall_s", "time s"), ("wall_ratio", "time ratio"),
]
METRICS = [c for c, _ in COLUMNS] + ["forget_acc", "retain_acc", "test_acc", "mia_loss_efficacy"]
STRATA = ("low", "mid", "high")
STRATUM_COLUMNS = [(f"ua_{s}", f"UA {s}") for s in STRATA] + [(f"gap_closed_{s}", f"gap closed {s}") for s in STRATA]
EXPLAIN_STRATA = """\
Forget set by memorisation tercile (Feldman's in/out estimate; `obliviate.audit.memorization`).
UA per tercile of the *training set's* memorisation ranking, and the share of the original's
forget-accuracy gap to retrain that each method closed in it: 1 - |UA_s - UA_s(retrain)| /
|UA_s(original) - UA_s(retrain)|. High-memorisation examples are where the original differs most
from retrain, and where approximate methods usually fall short."""


def _has_strata(result: BenchResult) -> bool:
    return any("ua_high" in r for r in result.records)


def stratum_summary(result: BenchResult) -> list[dict[str, Any]]:
    return summarise(result.records, [c for c, _ in STRATUM_COLUMNS]) if _has_strata(result) else []

EXPLAIN = """\
How to read this table. Every number is mean ± 95% interval over seeds.
`original` is the model before unlearning (time 0): the row every method must move away from.
`retrain` is the exact gold standard (trained from scratch without the forget set): the row every
method should move *to*. UA = 1 − forget accuracy, RA = retain accuracy, TA = test accuracy.
ToW (Zhao et al.) = (1−|ΔUA|)(1−|ΔRA|)(1−|ΔTA|) against retrain; 1 is indistinguishable accuracy.
"ToW gap closed" = (ToW − ToW_original)/(1 − ToW_original): the share of the original's gap a method
closed (1 = all of it, 0 = nothing, negative = made it worse). JS→retrain is the Jensen–Shannon
divergence (bits) between the method's and retrain's outputs on the forget set. MIA AUC is a
population loss attack separating forget from test examples (0.5 = forget looks unseen);
MIA-eff is SalUn's SVC confidence attack: the share of forget examples called non-members,
to be compared with retrain's value, not with 1. These are *weak* attacks: passing them is not
evidence of removal (Hayes et al. 2024)."""


def _clean(obj: Any) -> Any:
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {k: _clean(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_clean(v) for v in obj]
    return obj


def to_markdown(result: BenchResult) -> str:
    summary = summarise(result.records, METRICS)
    cfg = result.config
    lines = [
        f"# Unlearning benchmark: {result.meta.get('dataset', cfg.get('dataset'))}",
        "",
        f"- model: `{cfg.get('model')}` {cfg.get('model_options') or ''}",
        f"- forget set: `{cfg.get('forget')}`; seeds: {cfg.get('seeds')}",
        f"- recipe: {result.meta.get('recipe')}",
        f"- machine: {result.meta.get('machine', {}).get('cpu')} "
        f"({result.meta.get('machine', {}).get('cores')} cores), torch {result.meta.get('machine', {}).get('torch')}",
        f"- run: {result.meta.get('started')} → {result.meta.get('finished')}",
        "",
    ]
    seeds = result.meta.get("seeds", {})
    if seeds:
        lines.append("| seed | forget | retain | original train acc | retrain time s |")
        lines.append("|---|---|---|---|---|")
        for s, m in seeds.items():
            lines.append(f"| {s} | {m['n_forget']} | {m['n_retain']} | {m['original_train_acc']:.4f} | {m['retrain_s']:.1f} |")
        lines.append("")
    lines.append("| method | " + " | ".join(label for _, label in COLUMNS) + " |")
    lines.append("|---" * (len(COLUMNS) + 1) + "|")
    for row in summary:
        lines.append(f"| {row['method']} | " + " | ".join(fmt(row[c]) for c, _ in COLUMNS) + " |")
    lines += ["", EXPLAIN, ""]
    strata = stratum_summary(result)
    if strata:
        counts = [m.get("forget_per_stratum") for m in seeds.values() if m.get("forget_per_stratum")]
        lines += ["## By memorisation stratum", ""]
        if counts:
            lines += ["forget examples per tercile (per seed): "
                      + "; ".join(", ".join(f"{k} {v}" for k, v in c.items()) for c in counts), ""]
        lines.append("| method | " + " | ".join(label for _, label in STRATUM_COLUMNS) + " |")
        lines.append("|---" * (len(STRATUM_COLUMNS) + 1) + "|")
        for row in strata:
            lines.append(f"| {row['method']} | " + " | ".join(fmt(row[c]) for c, _ in STRATUM_COLUMNS) + " |")
        lines += ["", EXPLAIN_STRATA, ""]
    return "\n".join(lines)


def figures(result: BenchResult) -> list[tuple[str, bytes]]:
    summary = summarise(result.records, METRICS)
    movers = [r for r in summary if r["method"] != "original"]
    figs = [
        ("ToW against time ratio", to_png(scatter_tradeoff(
            movers, "wall_ratio", "tow", xlabel="wall time / retrain wall time (log)", ylabel="ToW vs retrain",
            title="Quality against cost (one point per method)", logx=True))),
        ("Accuracy per split", to_png(grouped_bars(
            summary, ["forget_acc", "retain_acc", "test_acc"], ["forget", "retain", "test"],
            title="Accuracy by split", ylabel="accuracy"))),
        ("Membership attacks", to_png(grouped_bars(
            summary, ["mia_auc", "mia_efficacy"], ["loss AUC (forget vs test)", "SVC MIA-efficacy"],
            title="Population membership attacks", ylabel="value"))),
    ]
    return figs


def to_html(result: BenchResult) -> str:
    summary = summarise(result.records, METRICS)
    head = "".join(f"<th>{html.escape(label)}</th>" for _, label in COLUMNS)
    body = []
    for row in summary:
        cls = ' class="ref"' if row["method"] in ("original", "retrain") else ""
        cells = "".join(f"<td>{html.escape(fmt(row[c]))}</td>" for c, _ in COLUMNS)
        body.append(f"<tr{cls}><td><b>{html.escape(row['method'])}</b></td>{cells}</tr>")
    imgs = "".join(
        f"<figure><img alt='{html.escape(t)}' src='data:image/png;base64,{base64.b64encode(png).decode()}'/>"
        f"<figcaption>{html.escape(t)}</figcaption></figure>"
        for t, png in figures(result)
    )
    cfg = html.escape(json.dumps(_clean(result.config), indent=2))
    explain = html.escape(EXPLAIN).replace("\n", " ")
    strata_html = ""
    strata = stratum_summary(result)
    if strata:
        shead = "".join(f"<th>{html.escape(label)}</th>" for _, label in STRATUM_COLUMNS)
        srows = "".join(
            f"<tr><td><b>{html.escape(row['method'])}</b></td>"
            + "".join(f"<td>{html.escape(fmt(row[c]))}</td>" for c, _ in STRATUM_COLUMNS) + "</tr>"
            for row in strata)
        strata_html = (f"<h2>By memorisation stratum</h2><table><tr><th>method</th>{shead}</tr>{srows}</table>"
                       f"<p>{html.escape(EXPLAIN_STRATA).replace(chr(10), ' ')}</p>")
    return f"""<!doctype html><html><head><meta charset="utf-8"><title>obliviate report</title>
<style>body{{font-family:system-ui,sans-serif;max-width:1200px;margin:2em auto;padding:0 1em}}
table{{border-collapse:collapse;font-size:13px}}td,th{{border:1px solid #ccc;padding:4px 8px;text-align:right}}
td:first-child{{text-align:left}}tr.ref{{background:#f3f6fa}}figure{{display:inline-block;margin:1em}}
pre{{background:#f7f7f7;padding:1em;overflow:auto}}</style></head><body>
<h1>Unlearning benchmark: {html.escape(str(result.meta.get('dataset')))}</h1>
<p>forget <code>{html.escape(str(result.config.get('forget')))}</code>, model <code>{html.escape(str(result.config.get('model')))}</code>,
seeds {html.escape(str(result.config.get('seeds')))}, machine {html.escape(str(result.meta.get('machine', {}).get('cpu')))}</p>
<table><tr><th>method</th>{head}</tr>{''.join(body)}</table>
<p>{explain}</p>{strata_html}{imgs}
<h2>Resolved configuration</h2><pre>{cfg}</pre></body></html>"""


def write_reports(result: BenchResult, out: str | Path) -> dict[str, Path]:
    """Write results.json, config.json, report.md and report.html into ``out``."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    paths = {
        "results": out / "results.json",
        "config": out / "config.json",
        "meta": out / "meta.json",
        "markdown": out / "report.md",
        "html": out / "report.html",
    }
    atomic_write_json(paths["results"], _clean(result.records))
    atomic_write_json(paths["config"], _clean(result.config))
    atomic_write_json(paths["meta"], _clean(result.meta))
    atomic_write_bytes(paths["markdown"], to_markdown(result).encode())
    atomic_write_bytes(paths["html"], to_html(result).encode())
    _retire_stale_audit(out, hashlib.sha256(paths["results"].read_bytes()).hexdigest())
    return paths


def _retire_stale_audit(out: Path, results_sha256: str) -> None:
    """An ``audit.json`` left by ``obliviate audit`` on earlier results no longer describes this run.

    It is renamed to ``audit.superseded.json`` (kept, not deleted), so nothing reads it as
    the audit of the new results; an audit of these very results is left alone.
    """
    audit = out / "audit.json"
    if not audit.is_file():
        return
    try:
        sha = json.loads(audit.read_text()).get("results_sha256")
    except (json.JSONDecodeError, AttributeError, UnicodeDecodeError):
        sha = None
    if sha == results_sha256:
        return
    audit.replace(out / "audit.superseded.json")
    log.warning("%s audited earlier results of this folder; moved it to audit.superseded.json "
                "(re-run `obliviate audit --run %s` to audit the new results)", audit, out)
