"""Write experiment results: NAME.json and NAME.png per experiment, one HTML page and one JSON for a set.

Rendering only: every number and sentence comes from the :class:`ExperimentResult`.
"""

from __future__ import annotations

import html
import json
import os
import platform
import time
from pathlib import Path
from typing import Any

from obliviate.lab.base import ExperimentResult


def machine() -> dict[str, Any]:
    """Where and when the results were measured (load average: how busy the cores were)."""
    try:
        load = [round(v, 2) for v in os.getloadavg()]
    except OSError:  # not on every platform
        load = []
    return {"date": time.strftime("%Y-%m-%d %H:%M:%S %Z"), "platform": platform.platform(),
            "python": platform.python_version(), "cpus": os.cpu_count(), "load_average": load}


def write_figure(result: ExperimentResult, out: Path) -> str | None:
    """Write the figure as ``out/NAME.png`` (or keep the file the result names); return its name in ``out``."""
    if isinstance(result.figure, bytes):
        path = out / f"{result.name}.png"
        path.write_bytes(result.figure)
        return path.name
    if isinstance(result.figure, str):
        src = Path(result.figure)
        if src.parent.resolve() != out.resolve() and src.is_file():
            (out / src.name).write_bytes(src.read_bytes())
        return src.name
    return None


def write_result(result: ExperimentResult, out: str | os.PathLike[str]) -> dict[str, Path]:
    """``out/NAME.json`` (with the config, machine and figure name) and ``out/NAME.png``."""
    return _write(result, Path(out))[1]


def _write(result: ExperimentResult, out: Path) -> tuple[dict[str, Any], dict[str, Path]]:
    out.mkdir(parents=True, exist_ok=True)
    fig = write_figure(result, out)
    entry = result.to_dict(figure=fig)
    path = out / f"{result.name}.json"
    path.write_text(json.dumps({**entry, "machine": machine()}, indent=2) + "\n")
    paths = {"json": path}
    if fig:
        paths["figure"] = out / fig
    return entry, paths


def write_all(results: list[ExperimentResult], out: str | os.PathLike[str], *,
              titles: dict[str, str] | None = None) -> dict[str, Path]:
    """Every result's files, ``out/mismatches.json`` (one entry per experiment) and ``out/index.html``."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    entries: dict[str, Any] = {}
    for r in results:
        entries[r.name] = _write(r, out)[0]
    summary = out / "mismatches.json"
    summary.write_text(json.dumps(entries, indent=2) + "\n")
    page = out / "index.html"
    page.write_text(html_page(entries, titles or {}, machine()))
    return {"json": summary, "html": page}


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    return html.escape(str(v))


def _table(header: list[str], rows: list[list[Any]]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{_fmt(c)}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _section(name: str, e: dict[str, Any], title: str) -> str:
    parts = [f'<section id="{html.escape(name)}"><h2>{html.escape(name)}: {html.escape(title)}</h2>',
             f'<p class="claim">{html.escape(e["claim"])}</p>']
    parts.append("<p><b>Compared</b>: " + "; ".join(
        f"{html.escape(w)} <span class=\"kind\">{html.escape(k)}</span>" for w, k in e["kind"].items()) + "</p>")
    if e.get("figure"):
        parts.append(f'<img src="{html.escape(e["figure"])}" alt="{html.escape(name)} figure" '
                     'style="max-width:100%">')
    if e.get("rows"):
        cols = list(dict.fromkeys(k for row in e["rows"] for k in row))
        parts.append(_table(cols, [[row.get(c, "") for c in cols] for row in e["rows"]]))
    flat: list[list[Any]] = []
    for k, v in e["measured"].items():
        if isinstance(v, dict):
            flat += [[f"{k}.{kk}", vv] for kk, vv in v.items()]
        else:
            flat.append([k, v])
    parts.append("<details><summary>measured</summary>" + _table(["quantity", "value"], flat) + "</details>")
    if e.get("details"):
        parts.append("<details><summary>details</summary>" + _table(
            ["", ""], [[k, v] for k, v in e["details"].items()]) + "</details>")
    parts.append(f'<p class="meta">{e["seconds"]:.1f} s; config: <code>{html.escape(json.dumps(e["config"]))}'
                 "</code></p></section>")
    return "\n".join(parts)


STYLE = """body{font-family:system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem;line-height:1.45}
img{max-width:100%}table{border-collapse:collapse;margin:.5rem 0}td,th{border:1px solid #ccc;padding:2px 6px;
font-size:.9rem;text-align:left}.claim{font-size:1.05rem}.kind{background:#eef;padding:0 4px;border-radius:3px}
.meta{color:#666;font-size:.85rem}code{word-break:break-all}"""


def html_page(entries: dict[str, Any], titles: dict[str, str], where: dict[str, Any]) -> str:
    toc = "".join(f'<li><a href="#{html.escape(n)}">{html.escape(n)}</a>: {html.escape(e["claim"][:140])}'
                  f'{"…" if len(e["claim"]) > 140 else ""}</li>' for n, e in entries.items())
    body = "\n".join(_section(n, e, titles.get(n, "")) for n, e in entries.items())
    meta = (f'{html.escape(str(where["date"]))}, {html.escape(str(where["platform"]))}, {where["cpus"]} CPUs, '
            f'load average {html.escape(str(where["load_average"]))}; '
            f'{sum(e["seconds"] for e in entries.values()):.1f} s in all')
    return (f"<!doctype html><html><head><meta charset=\"utf-8\"><title>obliviate: mismatch lab</title>"
            f"<style>{STYLE}</style></head><body><h1>The mismatch lab</h1>"
            f"<p class=\"meta\">{meta}</p><p>Each claim is written from that run's own numbers; every compared model "
            f"or run is labelled with its kind (exact, approximate, suppression, or none for a model trained with "
            f"the data).</p><ul>{toc}</ul>{body}</body></html>\n")
