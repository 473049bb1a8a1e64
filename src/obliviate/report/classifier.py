"""Classifier bench results as a report (the sections of :mod:`obliviate.report.layout`), plus files.

Works on any object with ``config`` (dict), ``records`` (one flat dict per method and seed)
and ``meta`` (dict), such as ``BenchResult``.
"""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path
from typing import Any

from obliviate.report import layout, plots
from obliviate.report.aggregate import summarise
from obliviate.report.layout import Plot, Report, Row, Table
from obliviate.training.checkpoint import atomic_write_bytes, atomic_write_json

log = logging.getLogger(__name__)

COLUMNS = [
    ("ua", "UA"), ("ra", "RA"), ("ta", "TA"), ("tow", "ToW"), ("tow_gap_closed", "ToW gap closed"),
    ("js_to_retrain", "JS→retrain"), ("mia_auc", "MIA AUC"), ("mia_efficacy", "MIA-eff (SVC)"),
    ("wall_s", "time s"), ("wall_ratio", "time ratio"),
]
METRICS = [c for c, _ in COLUMNS] + ["forget_acc", "retain_acc", "test_acc", "mia_loss_efficacy", "cpu_s",
                                     "pred_changed", "collapsed"]
STRATA = ("low", "mid", "high")
STRATUM_COLUMNS = [(f"ua_{s}", f"UA {s}") for s in STRATA] + [(f"gap_closed_{s}", f"gap closed {s}") for s in STRATA]
VERSIONS = ("obliviate", "torch", "numpy", "scipy", "scikit-learn", "matplotlib")
EXPLAIN_STRATA = """\
Forget set by memorisation tercile (Feldman's in/out estimate; `obliviate.audit.memorization`).
UA per tercile of the *training set's* memorisation ranking, and the share of the original's
forget-accuracy gap to retrain that each method closed in it: 1 - |UA_s - UA_s(retrain)| /
|UA_s(original) - UA_s(retrain)|. High-memorisation examples are where the original differs most
from retrain, and where approximate methods usually fall short."""

EXPLAIN = """\
How to read the table. UA = 1 − forget accuracy, RA = retain accuracy, TA = test accuracy.
ToW (Zhao et al.) = (1−|ΔUA|)(1−|ΔRA|)(1−|ΔTA|) against retrain; 1 is indistinguishable accuracy.
"ToW gap closed" = (ToW − ToW_original)/(1 − ToW_original): the share of the original's gap a method
closed (1 = all of it, 0 = nothing, negative = made it worse). JS→retrain is the Jensen–Shannon
divergence (bits) between the method's and retrain's outputs on the forget set. MIA AUC is a
population loss attack separating forget from test examples (0.5 = forget looks unseen);
MIA-eff is SalUn's SVC confidence attack: the share of forget examples called non-members,
to be compared with retrain's value, not with 1. These are *weak* attacks: passing them is not
evidence of removal (Hayes et al. 2024); `obliviate audit` runs the strong ones. "time ratio" is a
method's wall time over retrain's."""


def _has_strata(result: Any) -> bool:
    return any("ua_high" in r for r in result.records)


def stratum_summary(result: Any) -> list[dict[str, Any]]:
    return summarise(result.records, [c for c, _ in STRATUM_COLUMNS]) if _has_strata(result) else []


def _clean(obj: Any) -> Any:
    return layout.clean(obj)


def _columns(result: Any) -> list[tuple[str, str]]:
    cols = list(COLUMNS)
    if any(isinstance(r.get("cpu_s"), (int, float)) for r in result.records):
        cols.insert(cols.index(("wall_ratio", "time ratio")), ("cpu_s", "CPU s"))
    return cols


def _rows(summary: list[dict[str, Any]], cols: list[tuple[str, str]]) -> list[Row]:
    return [Row(r["method"], layout.kind_label(r["method"], r.get("kind")), [layout.cell(r[c]) for c, _ in cols],
                layout.tint(r["method"])) for r in summary]


def _by(summary: list[dict[str, Any]], method: str) -> dict[str, Any] | None:
    return next((r for r in summary if r["method"] == method), None)


def _verdict(summary: list[dict[str, Any]]) -> list[str]:
    orig = _by(summary, layout.BASELINE)
    movers = [r for r in summary if r["method"] not in (layout.BASELINE, layout.REFERENCE)
              and r["tow"][0] == r["tow"][0]]
    out = []
    if orig is not None and orig["tow"][0] == orig["tow"][0]:
        gap = 1 - orig["tow"][0]
        out.append(f"The untouched `original` already has ToW {orig['tow'][0]:.3f} against `retrain`"
                   + (": there is little to close, so read every row against it." if gap < 0.02 else "."))
    if movers:
        best = max(movers, key=lambda r: r["tow"][0])
        ratio = best["wall_ratio"][0]
        gap_closed = best["tow_gap_closed"][0]
        out.append(f"Closest to `retrain` by ToW: **{best['method']}** ({best['kind'] or 'unknown'}; ToW "
                   f"{best['tow'][0]:.3f}" + (f", ToW gap closed {gap_closed:.2f}" if gap_closed == gap_closed
                                               else "") + (f", {ratio:.3g}× retrain's time" if ratio == ratio else "")
                   + ").")
        still = [r["method"] for r in movers if r.get("pred_changed", (float("nan"),))[0] == 0]
        if still:
            out.append(f"**Changed nothing**: {', '.join(f'`{m}`' for m in still)} left every prediction of the "
                       "original as it was (forget, retain and test): read them as the original under another name.")
        fell = [r["method"] for r in movers if r.get("collapsed", (0.0,))[0] > 0]
        if fell:
            out.append(f"**Collapsed**: {', '.join(f'`{m}`' for m in fell)} ended at or below the majority-class "
                       "test accuracy in at least one seed.")
        worse = [r["method"] for r in movers if r["tow_gap_closed"][0] < 0]
        if worse:
            out.append(f"{len(worse)} of {len(movers)} methods end further from `retrain` than the untouched original: "
                       + ", ".join(f"`{m}`" for m in worse) + ".")
    out.append(layout.CAVEAT)
    return out


def build_report(result: Any) -> Report:
    """The classifier bench's report, from ``result.config``, ``.records`` and ``.meta``."""
    cfg, meta, records = result.config, result.meta, result.records
    summary = summarise(records, METRICS)
    cols = _columns(result)
    n = layout.n_seeds(summary)
    seeds = meta.get("seeds", {})
    dataset = meta.get("dataset", cfg.get("dataset"))
    forget_counts = sorted({m.get("n_forget") for m in seeds.values()} - {None})
    asked = [
        f"Forget `{cfg.get('forget')}` from a `{cfg.get('model')}` model"
        + (f" ({layout._md_escape(json.dumps(cfg.get('model_options')))})" if cfg.get("model_options") else "")
        + f" trained on {dataset} ({meta.get('n_train', '?')} training / {meta.get('n_test', '?')} test examples)"
        + (f"; {', '.join(map(str, forget_counts))} forget examples" if forget_counts else "") + ".",
        f"Seeds: {', '.join(map(str, cfg.get('seeds') or []))}; methods: "
        + ", ".join(f"`{m}`" for m in meta.get("methods", cfg.get("methods", []))) + ".",
    ]
    budget = cfg.get("budget") or {}
    if any(v is not None for v in budget.values()):
        asked.append("Budget per method: " + ", ".join(f"{k} {v}" for k, v in budget.items() if v is not None) + ".")
    cautions = [c for c in [layout.busy_caution(meta, records)] if c]
    cautions += layout.cached_cautions(meta, records, reference_name="retrained model")
    main = Table("Unlearning results", [label for _, label in cols], _rows(summary, cols),
                 heading=layout.interval_heading(n), cautions=layout.time_cautions(meta, records))
    tables = [main]
    strata = stratum_summary(result)
    if strata:
        counts = [m.get("forget_per_stratum") for m in seeds.values() if m.get("forget_per_stratum")]
        notes = []
        if counts:
            notes.append("Forget examples per tercile (per seed): "
                         + "; ".join(", ".join(f"{k} {v}" for k, v in c.items()) for c in counts) + ".")
        notes.append(EXPLAIN_STRATA)
        tables.append(Table("By memorisation stratum", [label for _, label in STRATUM_COLUMNS],
                            _rows(strata, STRATUM_COLUMNS), heading=layout.interval_heading(layout.n_seeds(strata)),
                            notes=notes))
    recipe = meta.get("recipe")
    return Report(
        title=f"Unlearning benchmark: {dataset}",
        asked=asked, kinds=layout.kinds_summary(summary), verdict=_verdict(summary), cautions=cautions,
        tables=tables, explain=[EXPLAIN], plots=_plots(summary, meta, records, n),
        environment=_environment(cfg, meta, records, recipe),
        extra_tables=[_seed_table(seeds)] if seeds else [],
        config_json=layout.resolved_config(cfg, recipe),
    )


def _plots(summary: list[dict[str, Any]], meta: dict[str, Any], records: list[dict[str, Any]], n: int) -> list[Plot]:
    busy = layout.busy_caution(meta, records)
    caution = "Caution: busy machine, time ratios overstate costs" if busy else None
    bars = "Intervals are 95% over seeds." if n > 1 else "One seed: no intervals."
    return [
        Plot("ToW against time ratio", lambda: plots.to_png(plots.tradeoff_scatter(
            summary, title="Quality against cost (one point per method)", caution=caution)),
             "ToW against retrain on the vertical axis, wall time over retrain's on a log axis; `retrain` and "
             "the untouched `original` are the dashed and dotted lines (the original costs nothing, so it is a line, "
             f"not a point). Marker shape = kind. {bars}" + (" **The machine was busy: read the times with care.**"
                                                             if busy else "")),
        Plot("Accuracy per split", lambda: plots.to_png(plots.dot_panels(
            summary, ["forget_acc", "retain_acc", "test_acc"], ["forget accuracy", "retain accuracy", "test accuracy"],
            title="Accuracy by split")),
             f"One row per method; vertical lines at `retrain`'s (dashed) and the original's (dotted) values. {bars}"),
        Plot("Membership attacks", lambda: plots.to_png(plots.dot_panels(
            summary, ["mia_auc", "mia_efficacy"], ["loss attack AUC (forget vs test)", "SVC MIA-efficacy"],
            title="Population membership attacks (weak)", chance={"mia_auc": 0.5})),
             "Compare each row with `retrain`'s line, not with an ideal value; 0.5 AUC is chance. " + bars),
    ]


def _environment(cfg: dict[str, Any], meta: dict[str, Any], records: list[dict[str, Any]],
                 recipe: dict[str, Any] | None) -> list[tuple[str, str]]:
    env = [
        ("recipe (resolved)", ", ".join(f"{k} {v}" for k, v in recipe.items()) if recipe else "not recorded"),
        ("library versions", layout.versions(meta, VERSIONS)),
        ("machine", layout.machine_line(meta)),
        ("load", layout.load_line(meta)),
        ("run times", layout.run_times_line(meta, records)),
        ("model cache", "used" if cfg.get("use_cache", True) else "off (every model retrained)"),
    ]
    if meta.get("retrain_cached_from"):
        env.append(("retrain time from", layout._md_escape(str(meta["retrain_cached_from"]))))
    return env


def _seed_table(seeds: dict[str, Any]) -> Table:
    def num(v: Any, d: int) -> str:
        return f"{v:.{d}f}" if isinstance(v, (int, float)) else "n/a"

    rows = [Row(str(s), "", [layout.Cell(str(m.get("n_forget", "n/a"))), layout.Cell(str(m.get("n_retain", "n/a"))),
                              layout.Cell(num(m.get("original_train_acc"), 4)),
                              layout.Cell(num(m.get("original_train_s"), 1)),
                              layout.Cell("yes" if m.get("original_cached") else "no"),
                              layout.Cell(num(m.get("retrain_s"), 1))])
            for s, m in seeds.items()]
    return Table("Per seed", ["forget", "retain", "original train acc", "original train s", "original cached",
                              "retrain time s"], rows, with_kind=False, first_column="seed")


def to_markdown(result: Any) -> str:
    return layout.render_markdown(build_report(result))


def summary_markdown(result: Any) -> str:
    """Summary and tables only, without the environment and configuration (for a terminal)."""
    return layout.render_markdown(build_report(result), brief=True)


def figures(result: Any) -> list[tuple[str, bytes]]:
    return [(p.title, p.png) for p in build_report(result).plots]


def to_html(result: Any) -> str:
    return layout.render_html(build_report(result))


def write_reports(result: Any, out: str | Path) -> dict[str, Path]:
    """Write results.json, config.json, meta.json, report.md and report.html into ``out``."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    paths = {
        "results": out / "results.json",
        "config": out / "config.json",
        "meta": out / "meta.json",
        "markdown": out / "report.md",
        "html": out / "report.html",
    }
    report = build_report(result)
    atomic_write_json(paths["results"], _clean(result.records))
    atomic_write_json(paths["config"], _clean(result.config))
    atomic_write_json(paths["meta"], _clean(result.meta))
    atomic_write_bytes(paths["markdown"], layout.render_markdown(report).encode())
    atomic_write_bytes(paths["html"], layout.render_html(report).encode())
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
