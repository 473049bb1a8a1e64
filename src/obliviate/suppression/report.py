"""Reporters of a guard evaluation: ``guard_results.json``, ``report.md``, ``report.html`` (with plots).

Rendering only: the numbers come from :func:`obliviate.suppression.evaluate.run_guard_eval`.
Every file says that these are suppression results: the guards change outputs, not weights.
"""

from __future__ import annotations

import base64
import io
import json
import math
from html import escape
from pathlib import Path
from typing import Any

__all__ = ["write_reports", "markdown", "html"]

NOTE = ("All numbers are **suppression** results: guards change what the system outputs; the model's weights "
        "still hold every protected fact. `trained_model` rows are the persons GPT-2's own answers; "
        "`adversarial` rows are a scripted generator that answers each attack as it asks (the protected answer "
        "encoded, reversed, spaced, in homoglyphs...), not a model.")


def _f(v: Any) -> str:
    if isinstance(v, float):
        return "n/a" if math.isnan(v) else f"{v:.3f}"
    return str(v)


def _table(rows: list[dict[str, Any]], cols: list[str]) -> str:
    out = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    out += ["| " + " | ".join(_f(r.get(c)) for c in cols) + " |" for r in rows]
    return "\n".join(out)


SUMMARY_COLS = ["generator", "guard", "n", "leak_off", "leak_on", "over_refusal", "over_refusal_generic",
                "benign_correct_off", "benign_correct_on", "p50_ms", "p95_ms", "p95_ms_per_1k_chars", "kind"]
FAMILY_COLS = ["generator", "guard", "family", "n", "leak_off", "leak_on", "blocked", "over_refusal", "p95_ms", "kind"]


def _matrix(rows: list[dict[str, Any]], generator: str) -> str:
    """leak_on per pipeline (rows) and family (columns), with leak_off on top."""
    sel = [r for r in rows if r["generator"] == generator and r["family"] != "all"]
    if not sel:
        return ""
    fams = list(dict.fromkeys(r["family"] for r in sel))
    guards = list(dict.fromkeys(r["guard"] for r in sel))
    cell = {(r["guard"], r["family"]): r for r in sel}
    lines = ["| guard | " + " | ".join(fams) + " |", "|---|" + "---|" * len(fams)]
    lines.append("| *(guards off)* | " + " | ".join(_f(cell[(guards[0], f)]["leak_off"]) for f in fams) + " |")
    for g in guards:
        lines.append(f"| {g} | " + " | ".join(_f(cell[(g, f)]["leak_on"]) if (g, f) in cell else "" for f in fams) + " |")
    return "\n".join(lines)


def markdown(result: Any) -> str:
    d = result.to_dict()
    meta, rows = d["meta"], d["rows"]
    parts = [f"# Suppression guards: {meta.get('task')}", "", NOTE, "",
             f"Forget request: `{(meta.get('protected') or {}).get('request', {}).get('source', '')}`; "
             f"{meta.get('n_facts')} protected facts, {meta.get('n_attack_cases')} attacks, "
             f"{meta.get('n_benign_cases')} benign prompts. Leak: the answer's ROUGE-L recall in the output (raw, "
             f"canonical or decoded) >= {d['config']['rouge_threshold']}. Thresholds from the held-out ROC at "
             f"FPR <= {d['config']['max_fpr']}: " + ", ".join(f"{k} {v:.3f}" for k, v in d["thresholds"].items())
             + f". Wall time {meta.get('wall_s', 0):.1f} s.", "",
             "over_refusal: share of benign look-alike prompts refused or redacted (over_refusal_generic: the same "
             "on generic prompts that name a forgotten person harmlessly); benign_correct_off/on: share of benign "
             "look-alike prompts answered correctly without / with the guard (prompt-only methods cost accuracy, "
             "not refusals). Latency: guard time per call; per 1,000 characters: the call's guard time over the "
             "characters checked (streaming checks the output so far after every chunk), calls under 1,000 "
             "characters counted as 1,000.", ""]
    if "model" in meta:
        parts += [f"Trained model: exact answers on the forget set {meta['model']['forget_exact_answers']:.2f} "
                  f"(training {meta['model']['train_s']:.1f} s, cached: {meta['model']['cached']}).", ""]
    parts += ["## Summary (all families)", "", _table([r for r in rows if r["family"] == "all"], SUMMARY_COLS), ""]
    for gen in dict.fromkeys(r["generator"] for r in rows):
        parts += [f"## Leak rate with the guard on, per family: `{gen}`", "", _matrix(rows, gen), ""]
    parts += ["## Every row", "", _table([r for r in rows if r["family"] != "all"], FAMILY_COLS), ""]
    parts += ["## ROC (AUC)", ""] + [f"- {k}: AUC {v['auc']:.3f} ({v['n_pos']} positive, {v['n_neg']} negative)"
                                     for k, v in d["roc"].items()] + [""]
    return "\n".join(parts)


def _png(fig: Any) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    return base64.b64encode(buf.getvalue()).decode()


def plots(result: Any) -> dict[str, str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = {}
    if result.roc:
        fig, ax = plt.subplots(figsize=(5.5, 5))
        for name, r in result.roc.items():
            ax.plot(r["fpr"], r["tpr"], label=f"{name} (AUC {r['auc']:.2f})")
        ax.plot([0, 1], [0, 1], "k:", lw=0.8)
        ax.set_xlabel("false-positive rate (benign prompts flagged)")
        ax.set_ylabel("true-positive rate (attacks flagged)")
        ax.set_title("ROC of the scored guards (suppression)")
        ax.legend(fontsize=7)
        out["roc"] = _png(fig)
        plt.close(fig)
    fig, ax = plt.subplots(figsize=(6.5, 5))
    for gen, marker in (("trained_model", "o"), ("adversarial", "s")):
        sel = [r for r in result.rows if r["generator"] == gen and r["family"] == "all"]
        if not sel:
            continue
        ax.scatter([r["over_refusal"] for r in sel], [r["leak_on"] for r in sel], marker=marker, label=gen)
        for r in sel:
            ax.annotate(r["guard"], (r["over_refusal"], r["leak_on"]), fontsize=6)
    ax.set_xlabel("over-refusal on benign look-alikes")
    ax.set_ylabel("leak rate with the guard on (all families)")
    ax.set_title("Leak vs over-refusal (suppression)")
    ax.legend()
    out["tradeoff"] = _png(fig)
    plt.close(fig)
    return out


def html(result: Any) -> str:
    body = []
    for block in markdown(result).split("\n\n"):
        lines = block.strip().splitlines()
        if not lines:
            continue
        if lines[0].startswith("|"):
            cells = [[c.strip() for c in ln.strip("|").split("|")] for ln in lines if not ln.startswith("|---")]
            head = "".join(f"<th>{escape(c)}</th>" for c in cells[0])
            rows = "".join("<tr>" + "".join(f"<td>{escape(c)}</td>" for c in r) + "</tr>" for r in cells[1:])
            body.append(f"<table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>")
        elif lines[0].startswith("#"):
            level = len(lines[0]) - len(lines[0].lstrip("#"))
            body.append(f"<h{level}>{escape(lines[0].lstrip('#').strip())}</h{level}>")
        elif lines[0].startswith("- "):
            body.append("<ul>" + "".join(f"<li>{escape(ln[2:])}</li>" for ln in lines) + "</ul>")
        else:
            body.append(f"<p>{escape(' '.join(lines))}</p>")
    for name, png in plots(result).items():
        body.append(f'<h2>{escape(name)}</h2><img alt="{escape(name)}" style="max-width:100%" '
                    f'src="data:image/png;base64,{png}">')
    style = ("body{font-family:sans-serif;max-width:1200px;margin:auto}table{border-collapse:collapse;font-size:12px}"
             "td,th{border:1px solid #ccc;padding:2px 6px}img{max-width:100%}")
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>Suppression guards</title>"
            f"<style>{style}</style></head><body>{''.join(body)}</body></html>")


def write_reports(result: Any, out: str | Path) -> dict[str, Path]:
    """Write ``guard_results.json``, ``report.md``, ``report.html`` and ``config.json`` into ``out``."""
    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    paths = {"json": folder / "guard_results.json", "md": folder / "report.md", "html": folder / "report.html",
             "config": folder / "config.json"}
    paths["json"].write_text(json.dumps(result.to_dict(), indent=1, default=float))
    paths["md"].write_text(markdown(result))
    paths["html"].write_text(html(result))
    paths["config"].write_text(json.dumps(result.config, indent=1))
    return paths
