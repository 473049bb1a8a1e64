"""The strong-audit section of a bench run's reports (``obliviate audit``).

``audit.json`` is written next to ``results.json``; the section is placed between two
HTML comments in ``report.md`` and ``report.html``, so running the audit again replaces
it instead of adding a second one.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
from markupsafe import Markup

from obliviate.report import layout, plots
from obliviate.training.checkpoint import atomic_write_bytes

START = "<!-- obliviate-audit:start -->"
END = "<!-- obliviate-audit:end -->"

EXPLAIN = """\
How to read this section. Each method's *unlearned replicas* (models trained with the forget set,
then unlearned by the method) are compared with *retrained replicas* (trained without it). The
row `original` audits the trained replicas with no unlearning; `retrain` audits more retrained
replicas with other seeds, so its row is what an exact method scores with this many models.
Weak attack: the run's own loss-threshold MIA (AUC of forget vs test examples; 0.5 = forget looks
unseen) and the same attack averaged over the replicas. LiRA (Carlini et al. 2022): per-example
Gaussians of "trained with" and "trained without" models, tested on held-out unlearned vs retrained
models; AUC 0.5 and TPR ≈ FPR are ideal. U-LiRA (Hayes et al. 2024): per-example test of
"unlearned" vs "retrained" models fitted on the method's own unlearned models; accuracy 0.5 is
ideal. Challenge (Triantafillou et al. 2024): forget quality F from per-example epsilons
(delta 1e-5), 1 is best but finite samples keep even retrain well below 1, so compare with
retrain's row; final score = F × RA/RA_retrain × TA/TA_retrain (replica means). Relearn: Adam
steps on half of the forget set; "after-gap" is the accuracy on the other half afterwards minus a
retrained control's after the same steps (0 is ideal); "excess" is the gain beyond the control's."""
TINTS = ("Shaded rows: `original` and `retrain` are the references (the untouched model, and more retrained "
         "replicas); rows tinted red are methods the weak attack passes while a strong attack catches them.")


def _num(x: Any, digits: int = 3) -> str:
    if isinstance(x, (int, float)) and math.isfinite(x):
        return f"{x:.{digits}f}"
    return "n/a"


def _ci(pair: Any, digits: int = 3) -> str:
    if not isinstance(pair, (list, tuple)) or len(pair) != 2:
        return "n/a"
    mean, half = pair
    if not (isinstance(mean, (int, float)) and math.isfinite(mean)):
        return "n/a"
    if isinstance(half, (int, float)) and math.isfinite(half):
        return f"{mean:.{digits}f} ± {half:.{digits}f}"
    return f"{mean:.{digits}f}"


def _get(d: dict[str, Any], *path: str) -> Any:
    for k in path:
        if not isinstance(d, dict) or k not in d:
            return None
        d = d[k]
    return d


def _columns(audit: dict[str, Any]) -> list[tuple[str, Callable[[dict[str, Any]], str]]]:
    attacks = audit.get("attacks", [])
    cols: list[tuple[str, Callable[[dict[str, Any]], str]]] = []
    if "population" in attacks:
        cols += [
            ("weak: MIA AUC (run)", lambda r: _num(_get(r, "population", "mia_auc"))),
            ("weak passes", lambda r: {True: "yes", False: "no"}.get(_get(r, "verdict", "weak_passes"), "n/a")),
        ]
    if any(a in attacks for a in ("lira", "ulira", "challenge", "relearn")):
        cols.append(("MIA AUC (replicas)", lambda r: _num(_get(r, "population", "replicas_mia_auc"))))
    if "lira" in attacks:
        cols += [
            ("LiRA AUC", lambda r: _num(_get(r, "lira", "online", "auc"))),
            ("LiRA TPR@1%", lambda r: _num(_get(r, "lira", "online", "tpr_at_1pct"), 4)),
            ("LiRA TPR@0.1%", lambda r: _num(_get(r, "lira", "online", "tpr_at_0_1pct"), 4)),
            ("offline LiRA AUC", lambda r: _num(_get(r, "lira", "offline", "auc"))),
        ]
    if "ulira" in attacks:
        cols.append(("U-LiRA acc", lambda r: _num(_get(r, "ulira", "mean_accuracy"))))
    if "challenge" in attacks:
        cols += [
            ("F", lambda r: _num(_get(r, "challenge", "F"))),
            ("final score", lambda r: _num(_get(r, "challenge", "final_score"))),
        ]
    if "relearn" in attacks:
        cols += [
            ("relearn after-gap", lambda r: _ci(_get(r, "relearn", "after_gap_ci"))),
            ("relearn excess", lambda r: _ci(_get(r, "relearn", "excess_recovery_ci"))),
        ]
    cols.append(("caught by", lambda r: ", ".join(_get(r, "verdict", "caught_by") or []) or "-"))
    return cols


def _settings_line(audit: dict[str, Any]) -> str:
    data = audit.get("data") or {}
    s = audit.get("settings") or {}
    parts = [f"seed {audit.get('seed')}", f"attacks: {', '.join(audit.get('attacks', []))}"]
    if audit.get("replicas"):
        parts.append(f"{audit['replicas']} replicas per side")
    if data:
        parts.append(f"{data.get('n_forget')} forget / {data.get('n_retain')} retain / {data.get('n_test')} test "
                     f"examples ({data.get('dataset')}"
                     + (f", training subset {data['train_subset']}" if data.get("train_subset") else "") + ")")
    if "relearn" in audit.get("attacks", []) and audit.get("replicas"):
        parts.append(f"relearning: {s.get('relearn_steps')} Adam steps, first {min(s.get('relearn_models', 0), audit['replicas'])} "
                     "models per group")
    total = _get(audit, "timing", "total_s")
    if total is not None:
        parts.append(f"audit wall time {total:.1f} s")
    return "; ".join(parts)


def _kind(name: str, row: dict[str, Any]) -> str:
    return layout.kind_label(name, row.get("kind"))


def audit_markdown(audit: dict[str, Any]) -> str:
    """The audit section in Markdown (between the markers)."""
    cols = _columns(audit)
    lines = [START, "## Strong audit", "", _settings_line(audit), "",
             "| method | kind | " + " | ".join(h for h, _ in cols) + " |", "|---" * (len(cols) + 2) + "|"]
    for name, row in audit.get("methods", {}).items():
        lines.append(f"| {name} | {_kind(name, row)} | " + " | ".join(fn(row) for _, fn in cols) + " |")
    lines += ["", TINTS, ""]
    lines += ["**Weak against strong attacks.** " + _flag_paragraph(audit), ""]
    lines += ["Thresholds: " + "; ".join(audit.get("threshold_text", [])) + ".", ""]
    for note in audit.get("notes", []):
        lines += [f"Note: {note}", ""]
    lines += [EXPLAIN, "", "Full numbers, per-example U-LiRA accuracies and epsilons: `audit.json`.", END]
    return "\n".join(lines)


def _flag_head(audit: dict[str, Any]) -> str:
    methods = audit.get("methods", {})
    flagged = [m for m, r in methods.items() if _get(r, "verdict", "flagged")]
    if "population" not in audit.get("attacks", []):
        return "The weak attack was not part of this audit."
    if flagged:
        return (f"The weak attack passes {len(flagged)} method(s) that a strong attack catches: "
                + ", ".join(flagged) + ".")
    return "No method passes the weak attack while a strong attack catches it."


def _flag_paragraph(audit: dict[str, Any]) -> str:
    return " ".join([_flag_head(audit), *audit.get("flags", [])])


def _roc_png(audit: dict[str, Any], kind: str) -> bytes | None:
    curves, n_non = [], 1
    for name, r in audit.get("methods", {}).items():
        d = _get(r, "lira", kind)
        if not d:
            continue
        n_non = max(n_non, int(d.get("n_nonmembers") or 1))
        label = f"{name} (AUC {d['auc']:.3f}, TPR@0.1% {d['tpr_at_0_1pct']:.3f})"
        curves.append((name, np.asarray(d["fpr"], dtype=float), np.asarray(d["tpr"], dtype=float), label))
    if not curves:
        return None
    fig = plots.roc_curves(curves, floor=0.5 / n_non,
                           title=f"LiRA ({kind}): unlearned vs retrained replicas, forget examples")
    return plots.to_png(fig)


def audit_html(audit: dict[str, Any]) -> str:
    """The audit section in HTML (between the markers), with LiRA ROC curves."""
    cols = _columns(audit)
    rows = []
    for name, row in audit.get("methods", {}).items():
        tint = "flag" if _get(row, "verdict", "flagged") else layout.tint(name)
        rows.append(layout.Row(name, _kind(name, row), [layout.Cell(*fn(row).split(" ± ", 1)) for _, fn in cols],
                               tint))
    replicas = audit.get("replicas")
    table = layout.Table("Attacks per method", [h for h, _ in cols], rows,
                         heading=f"seed {audit.get('seed')}" + (f", {replicas} replicas per side" if replicas else ""))
    figs = []
    for kind in ("online", "offline"):
        png = _roc_png(audit, kind)
        if png:
            figs.append(layout.Plot(f"LiRA {kind} ROC (log-log)", lambda png=png: png,
                                    "One curve per method; `retrain` is the thick dashed black curve and chance the "
                                    "red diagonal: a method whose curve lies on them gives the attack nothing."))
    return layout.template("audit_section.html.j2").render(
        start=Markup(START), end=Markup(END), settings=_settings_line(audit), t=table, tints=TINTS,
        flag_head=_flag_head(audit), flags=audit.get("flags", []), thresholds=audit.get("threshold_text", []),
        notes=audit.get("notes", []),
        explain=EXPLAIN, figs=figs)


def _replace_section(text: str, section: str, *, before: tuple[str, ...] = ()) -> str:
    """Put ``section`` in place of an earlier one, else before the first anchor found (or at the end)."""
    start, end = text.find(START), text.find(END)
    if start != -1 and end != -1 and end > start:
        return text[:start] + section + text[end + len(END):]
    for anchor in before:
        if anchor in text:
            i = text.rfind(anchor)
            return text[:i] + section + "\n" + text[i:]
    return text.rstrip("\n") + "\n\n" + section + "\n"


def _clean(obj: Any) -> Any:
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {str(k): _clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_clean(v) for v in obj]
    if isinstance(obj, np.generic):
        return _clean(obj.item())
    return obj


def _bench_reports(run: Path) -> tuple[str, str]:
    """The run's report.md and report.html, rebuilt from its JSON files when one is missing."""
    md_path, html_path = run / "report.md", run / "report.html"
    if md_path.is_file() and html_path.is_file():
        return md_path.read_text(), html_path.read_text()
    from obliviate.report.classifier import to_html, to_markdown

    meta = json.loads((run / "meta.json").read_text()) if (run / "meta.json").is_file() else {}
    result = SimpleNamespace(config=json.loads((run / "config.json").read_text()),
                         records=json.loads((run / "results.json").read_text()), meta=meta)
    md = md_path.read_text() if md_path.is_file() else to_markdown(result)
    page = html_path.read_text() if html_path.is_file() else to_html(result)
    return md, page


def write_audit_reports(run: Path, audit: dict[str, Any]) -> dict[str, Path]:
    """Write ``audit.json`` and put the audit section into the run's Markdown and HTML reports."""
    paths = {"audit": run / "audit.json", "markdown": run / "report.md", "html": run / "report.html"}
    atomic_write_bytes(paths["audit"], (json.dumps(_clean(audit), indent=1) + "\n").encode())
    md, page = _bench_reports(run)
    atomic_write_bytes(paths["markdown"], _replace_section(md, audit_markdown(audit)).encode())
    anchors = (layout.CONFIG_ANCHOR, "<h2>Resolved configuration</h2>", "</main>", "</body>")
    atomic_write_bytes(paths["html"], _replace_section(page, audit_html(audit), before=anchors).encode())
    return paths
