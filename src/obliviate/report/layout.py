"""One report layout for every task: summary, tables, plots, then configuration and environment.

Task modules (:mod:`obliviate.report.classifier`, :mod:`obliviate.report.lm`) only build a
:class:`Report` from a result's ``config``, ``records`` and ``meta``; this module renders it
as Markdown and as HTML (jinja2 templates with autoescape; Markdown text through
markdown-it-py). :func:`markdown_to_html` turns any Markdown string, such as
``ForgetResult.to_markdown()``, into a page in the same style.
"""

from __future__ import annotations

import base64
import json
import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property, lru_cache
from importlib import metadata
from typing import Any

import jinja2
import numpy as np
from markdown_it import MarkdownIt
from markupsafe import Markup

BASELINE, REFERENCE = "original", "retrain"
CONFIG_ANCHOR = "<!-- obliviate-config -->"

REFERENCE_LEGEND = (
    "**Reference rows** (shaded): `original` is the untouched model before any unlearning "
    "(kind *baseline*, time 0), the row every method starts from; `retrain` is trained from scratch "
    "without the forget set (kind *exact*), the reference every method is measured against. "
    "**Kinds**: *exact* removal gives the model retraining would give; *approximate* methods change "
    "the trained weights to imitate retraining, with no guarantee that the forget data's influence is gone; "
    "*suppression* leaves the weights as they are and filters what the model outputs."
)
CAVEAT = (
    "These numbers say how close each model's behaviour is to `retrain`'s on these metrics and attacks; "
    "for an approximate method they are not evidence that the forget data's influence has left the weights. "
    "Only an exact method (`retrain`) gives that guarantee."
)


# --------------------------------------------------------------------------- the document


@dataclass
class Cell:
    text: str
    ci: str = ""  # the interval's half-width, shown under the mean in HTML

    @property
    def markdown(self) -> str:
        return f"{self.text} ± {self.ci}" if self.ci else self.text


@dataclass
class Row:
    method: str
    kind: str
    cells: list[Cell]
    tint: str = ""  # "ref" for original/retrain, "flag" for a caught method


@dataclass
class Table:
    title: str
    columns: list[str]  # after "method" and "kind"
    rows: list[Row]
    heading: str = ""  # e.g. "mean ± 95% interval over 3 seeds" / "one seed"
    notes: list[str] = field(default_factory=list)  # Markdown, under the table
    with_kind: bool = True
    cautions: list[str] = field(default_factory=list)  # Markdown, shown as cautions under the table
    first_column: str = "method"


@dataclass
class Plot:
    """A figure, drawn only when a page shows it (Markdown reports list plot titles only)."""

    title: str
    make: Callable[[], bytes]
    caption: str = ""  # Markdown

    @cached_property
    def png(self) -> bytes:
        return self.make()

    @property
    def data_uri(self) -> str:
        return "data:image/png;base64," + base64.b64encode(self.png).decode()


@dataclass
class Report:
    title: str
    asked: list[str]  # Markdown bullets: what was asked
    kinds: list[str]  # Markdown bullets: what kind of result each method gave
    verdict: list[str]  # Markdown paragraphs: the headline
    cautions: list[str] = field(default_factory=list)  # Markdown, shown in a box at the top and by the times
    tables: list[Table] = field(default_factory=list)
    explain: list[str] = field(default_factory=list)  # Markdown paragraphs after the tables
    plots: list[Plot] = field(default_factory=list)
    environment: list[tuple[str, str]] = field(default_factory=list)  # (what, Markdown value)
    extra_tables: list[Table] = field(default_factory=list)  # per-seed counts and times, in the environment
    config_json: str = ""
    legend: str = REFERENCE_LEGEND


# --------------------------------------------------------------------------- helpers for task modules


def interval_heading(n_seeds: int) -> str:
    """What a table's numbers are: an interval only where there are several seeds."""
    if n_seeds > 1:
        return f"mean ± 95% interval over {n_seeds} seeds"
    return "one seed: single values, no interval"


def n_seeds(summary: list[dict[str, Any]]) -> int:
    return max((int(r.get("n", 1)) for r in summary), default=1)


def kind_label(method: str, kind: Any) -> str:
    if method == BASELINE or kind in ("none", "baseline"):
        return "baseline"
    if method == REFERENCE:
        return "exact (reference)"
    return str(kind) if kind else "unknown"


def tint(method: str) -> str:
    return "ref" if method in (BASELINE, REFERENCE) else ""


def cell(value: tuple[float, float], digits: int = 3) -> Cell:
    mean, half = value
    if not (isinstance(mean, (int, float)) and math.isfinite(mean)):
        return Cell("n/a")
    text = f"{mean:.{digits}f}"
    if isinstance(half, (int, float)) and math.isfinite(half):
        return Cell(text, f"{half:.{digits}f}")
    return Cell(text)


def kinds_summary(summary: list[dict[str, Any]]) -> list[str]:
    """One bullet per kind of result, naming the methods of that kind."""
    groups: dict[str, list[str]] = {}
    for r in summary:
        names = groups.setdefault(kind_label(r["method"], r.get("kind")), [])
        if r["method"] not in names:  # a method run at its defaults and tuned is named once
            names.append(r["method"])
    words = {
        "baseline": "**baseline**, the untouched model (no unlearning applied, the starting point)",
        "exact (reference)": "**exact (reference)**, retrained from scratch without the forget set",
        "exact": "**exact**, the same model retraining would give",
        "approximate": "**approximate**, weights changed to imitate retraining, with no guarantee",
        "suppression": "**suppression**, outputs filtered while the weights keep the data",
    }
    return [f"{words.get(k, f'**{k}**')}: " + ", ".join(f"`{m}`" for m in ms) for k, ms in groups.items()]


def _loads(meta: dict[str, Any]) -> list[tuple[str, list[float]]]:
    machine = meta.get("machine") or {}
    out = []
    for when, load in (("at the start", machine.get("load_average")), ("at the end", meta.get("load_average"))):
        if load:
            out.append((when, [float(v) for v in load]))
    return out


def busy_caution(meta: dict[str, Any], records: list[dict[str, Any]] | None = None) -> str | None:
    """A caution when the machine was busy: the runner said so, or a 1-minute load exceeded the cores."""
    cores = (meta.get("machine") or {}).get("cores")
    loaded = (meta.get("machine") or {}).get("loaded")
    over = [(when, load[0]) for when, load in _loads(meta) if cores and load[0] > cores]
    if not (loaded or over):
        return None
    has_cpu = any(isinstance(r.get("cpu_s"), (int, float)) for r in records or [])
    if over:
        what = "; ".join(f"1-minute load average {v:.1f} on {cores} cores {when}" for when, v in over)
    else:
        what = "the runner marked the machine loaded"
    return (f"**Busy machine** ({what}): wall times and time ratios include time spent waiting for other "
            "work, so they overstate the methods' cost and may not rank them fairly. Re-run on a quiet "
            "machine before quoting them" + ("; CPU times (`cpu_s`) are less affected." if has_cpu else "."))


def time_cautions(meta: dict[str, Any], records: list[dict[str, Any]]) -> list[str]:
    """The short caution a table with time columns carries (the full text is in the summary)."""
    if busy_caution(meta, records) is None:
        return []
    return ["The time columns come from a **busy machine** (see the caution in the summary): "
            "read `time s` and `time ratio` as upper bounds, not as the methods' cost."]


def cached_cautions(meta: dict[str, Any], records: list[dict[str, Any]], *, reference_name: str) -> list[str]:
    """Say where a cached model's stored training time stands in for a time measured in this run."""
    out = []
    src = meta.get("retrain_cached_from")
    if src:
        out.append(f"The {reference_name}'s time comes from a cached model ({_md_escape(str(src))}): the time "
                   "ratios divide by that stored time, not by a retraining measured in this run.")
    seeds = meta.get("seeds") or {}
    cached_ref = sorted({str(s) for s, m in seeds.items() if m.get("retain_cached") or m.get("retrain_cached")}
                        | {str(r.get("seed")) for r in records if r.get("method") == REFERENCE and r.get("cached")})
    if cached_ref and not src:
        out.append(f"Seed(s) {', '.join(cached_ref)}: the {reference_name} was loaded from the model cache, so its "
                   "time is the stored time of the training that made it, measured under that run's load.")
    return out


def _md_escape(text: str) -> str:
    return text.replace("|", "\\|").replace("*", "\\*").replace("_", "\\_").replace("`", "\\`")


def versions(meta: dict[str, Any], packages: tuple[str, ...]) -> str:
    """Library versions the run recorded (``meta["versions"]``), else those installed now, said as such."""
    recorded = meta.get("versions")
    if recorded:
        return ", ".join(f"{k} {v}" for k, v in recorded.items())
    now = []
    for p in packages:
        try:
            now.append(f"{p} {metadata.version(p)}")
        except metadata.PackageNotFoundError:
            continue
    machine = meta.get("machine") or {}
    run = [f"torch {machine['torch']}" for _ in [0] if machine.get("torch")] + \
          [f"python {machine['python']}" for _ in [0] if machine.get("python")]
    return ("recorded by the run: " + ", ".join(run) + "; " if run else "") + \
        "installed when this report was written (the run did not record them): " + ", ".join(now)


def machine_line(meta: dict[str, Any]) -> str:
    m = meta.get("machine") or {}
    parts = [str(m.get("cpu", "unknown CPU"))]
    if m.get("cores"):
        parts.append(f"{m['cores']} cores")
    if m.get("torch_threads"):
        parts.append(f"torch threads {m['torch_threads']}")
    if m.get("platform"):
        parts.append(str(m["platform"]))
    return ", ".join(parts)


def load_line(meta: dict[str, Any]) -> str:
    loads = _loads(meta)
    if not loads:
        return "not recorded"
    m = meta.get("machine") or {}
    text = "; ".join(f"{when}: " + ", ".join(f"{v:.2f}" for v in load) for when, load in loads)
    text = "load average (1, 5, 15 min) " + text
    if m.get("cores"):
        text += f", on {m['cores']} cores"
    if m.get("loaded") is not None:
        text += "; the runner marked the machine " + ("**loaded**" if m["loaded"] else "quiet")
    return text


def run_times_line(meta: dict[str, Any], records: list[dict[str, Any]]) -> str:
    parts = []
    if meta.get("started"):
        parts.append(f"started {meta['started']}, finished {meta.get('finished')}")
    if isinstance(meta.get("wall_s"), (int, float)):
        parts.append(f"whole run {meta['wall_s']:.1f} s of wall time"
                     + (f", {meta['cpu_s']:.1f} s of CPU time in the main process"
                        if isinstance(meta.get("cpu_s"), (int, float)) else ""))
    wall = sum(float(r.get("wall_s") or 0) for r in records if r.get("method") not in (BASELINE,))
    cpu = [float(r["cpu_s"]) for r in records if isinstance(r.get("cpu_s"), (int, float))]
    parts.append(f"methods and reference together {wall:.1f} s of wall time"
                 + (f" ({sum(cpu):.1f} s of CPU time in the {len(cpu)} records that measured it)" if cpu else ""))
    return "; ".join(parts)


def clean(obj: Any) -> Any:
    """JSON-safe: NaN and infinities become None, numpy scalars Python numbers."""
    if isinstance(obj, (np.floating, np.integer)):
        obj = obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {str(k): clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [clean(v) for v in obj]
    return obj


def resolved_config(config: dict[str, Any], recipe: dict[str, Any] | None) -> str:
    """The configuration as saved, with the recipe the run actually used in place of the unset one."""
    cfg = dict(config)
    if recipe:
        cfg["recipe"] = recipe
    return json.dumps(clean(cfg), indent=2, default=str)


# --------------------------------------------------------------------------- rendering


@lru_cache(maxsize=1)
def _md() -> MarkdownIt:
    return MarkdownIt("commonmark", {"html": False, "typographer": False}).enable("table")


def unwrap(text: str) -> str:
    """Join hard-wrapped lines of a paragraph (a wrapped line starting with '>' or '-' would start a block)."""
    return re.sub(r"(?<!\n)\n(?!\n)", " ", text or "")


def markdown_fragment(text: str) -> Markup:
    """Markdown to HTML (raw HTML in the text is escaped, not passed through)."""
    return Markup(_md().render(text or ""))


def markdown_inline(text: str) -> Markup:
    return Markup(_md().renderInline(unwrap(text)))


@lru_cache(maxsize=1)
def _env() -> jinja2.Environment:
    env = jinja2.Environment(loader=jinja2.PackageLoader("obliviate.report", "templates"),
                             autoescape=jinja2.select_autoescape(["html", "j2"]), trim_blocks=True,
                             lstrip_blocks=True, keep_trailing_newline=True, undefined=jinja2.StrictUndefined)
    env.filters["md"] = lambda text: markdown_fragment(unwrap(text))
    env.filters["unwrap"] = unwrap
    env.filters["mdi"] = markdown_inline
    env.globals["md_table"] = md_table
    return env


@lru_cache(maxsize=1)
def _md_env() -> jinja2.Environment:
    # Markdown output is text, not HTML: rendered without escaping.
    return _env().overlay(autoescape=False)


def _md_cell(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def md_table(t: Table) -> str:
    """A table in Markdown: heading, pipe table, notes."""
    head = [t.first_column, *(["kind"] if t.with_kind else []), *t.columns]
    lines = [f"### {t.title}" + (f" ({t.heading})" if t.heading else ""), "",
             "| " + " | ".join(_md_cell(h) for h in head) + " |", "|" + "---|" * len(head)]
    for row in t.rows:
        cells = [row.method, *([row.kind] if t.with_kind else []), *(c.markdown for c in row.cells)]
        lines.append("| " + " | ".join(_md_cell(c) for c in cells) + " |")
    lines.append("")
    for c in t.cautions:
        lines += ["> Caution: " + unwrap(c), ""]
    for n in t.notes:
        lines += [unwrap(n), ""]
    return "\n".join(lines)


def template(name: str) -> jinja2.Template:
    return _env().get_template(name)


def render_html(report: Report) -> str:
    return template("report.html.j2").render(r=report, config_anchor=Markup(CONFIG_ANCHOR))


def render_markdown(report: Report, *, brief: bool = False) -> str:
    """The report in Markdown; ``brief`` stops after the tables (for a terminal)."""
    return _md_env().get_template("report.md.j2").render(r=report, brief=brief)


def markdown_to_html(text: str, *, title: str = "obliviate report") -> str:
    """A complete HTML page of a Markdown string (tables become real tables), in the reports' style.

    For ``ForgetResult.to_html()``: ``return markdown_to_html(self.to_markdown(), title=...)``.
    """
    return template("markdown_page.html.j2").render(title=title, body=markdown_fragment(text))
