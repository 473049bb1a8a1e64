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
from obliviate.report.aggregate import label, summarise
from obliviate.report.layout import Plot, Report, Row, Table
from obliviate.training.checkpoint import atomic_write_bytes, atomic_write_json

log = logging.getLogger(__name__)

COLUMNS = [
    ("ua", "UA"), ("ra", "RA"), ("ta", "TA"), ("tow", "ToW"), ("tow_gap_closed", "ToW gap closed"),
    ("js_to_retrain", "JS→retrain"), ("mia_auc", "MIA AUC"), ("mia_efficacy", "MIA-eff (SVC)"),
    ("wall_s", "time s"), ("wall_ratio", "time ratio"),
]
METRICS = [c for c, _ in COLUMNS] + ["forget_acc", "retain_acc", "test_acc", "mia_loss_efficacy", "cpu_s",
                                     "pred_changed", "forget_pred_changed", "collapsed", "tuning_s"]
#: a method "changed nothing" when it changed fewer than this share of the forget set's predictions
#: (mean over seeds; ``forget_pred_changed``, else ``pred_changed`` of all splits for older records)
CHANGED_NOTHING = 0.01
EXPLAIN_FLAGS = f"""\
Flags. **changed nothing**: fewer than {CHANGED_NOTHING:.0%} of the forget set's predictions differ from the
original's (mean over seeds): read the row as the original under another name (compare with `retrain`'s
share, which is small too when the original already generalises to the forget set). **collapsed**: test
accuracy at or below the majority-class rate in at least one seed."""
EXPLAIN_TUNED = """\
Defaults and tuned. Each approximate method ran twice: at its defaults ("defaults") and with an
oracle-free selection ("tuned", `--tune`; `obliviate.tasks.classifier_tuning`): a small search over
its `tuning_space` with early stopping on targets a user can compute without the retrained model
(forget accuracy down to held-out accuracy, a loss-attack AUC of forget against held-out examples
near 0.5, retain and held-out accuracy kept). The held-out examples are a selection split ("val") of
the test set; every row's test metrics use the rest of it. A tuned row's time and time ratio include
the whole selection (every trial and measurement); "tuning s" is that time."""
ORACLE_NOTE = """\
These rows were tuned against the retrained model (their settings were scored with it), which nobody
who must honour a deletion request has: they show what a method can reach, not what a user gets, and
are kept out of the main table and the verdict."""
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
    records = [r for r in result.records if not r.get("oracle_tuned")]
    return summarise(records, [c for c, _ in STRATUM_COLUMNS]) if _has_strata(result) else []


def _clean(obj: Any) -> Any:
    return layout.clean(obj)


def _columns(result: Any) -> list[tuple[str, str]]:
    cols = list(COLUMNS)
    if any(isinstance(r.get("cpu_s"), (int, float)) for r in result.records):
        cols.insert(cols.index(("wall_ratio", "time ratio")), ("cpu_s", "CPU s"))
    if _has_tuned(result.records):
        cols.insert(cols.index(("wall_ratio", "time ratio")), ("tuning_s", "tuning s"))
    return cols


def _has_tuned(records: list[dict[str, Any]]) -> bool:
    return any(r.get("tuned") for r in records)


def _share_changed(r: dict[str, Any]) -> float:
    v = r.get("forget_pred_changed", r.get("pred_changed", (float("nan"),)))[0]
    return float(v)


def flags(r: dict[str, Any]) -> list[str]:
    """A summary row's flags: "changed nothing" and "collapsed" (see ``EXPLAIN_FLAGS``)."""
    if r["method"] in (layout.BASELINE, layout.REFERENCE):
        return []
    out = []
    if _share_changed(r) < CHANGED_NOTHING:
        out.append("changed nothing")
    if r.get("collapsed", (0.0,))[0] > 0:
        out.append("collapsed")
    return out


def _rows(summary: list[dict[str, Any]], cols: list[tuple[str, str]], *, settings: bool = False,
          with_flags: bool = False) -> list[Row]:
    rows = []
    for r in summary:
        cells = [layout.cell(r[c]) for c, _ in cols]
        f = flags(r) if with_flags else []
        if settings:
            cells.insert(0, layout.Cell("" if r["method"] in (layout.BASELINE, layout.REFERENCE)
                                        else "tuned" if r.get("tuned") else "defaults"))
        if with_flags:
            cells.append(layout.Cell(", ".join(f)))
        rows.append(Row(r["method"], layout.kind_label(r["method"], r.get("kind")), cells,
                        layout.tint(r["method"]) or ("flag" if f else "")))
    return rows


def _paired(summary: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """original, retrain, then each method's defaults row followed by its tuned row."""
    refs = [r for r in summary if r["method"] in (layout.BASELINE, layout.REFERENCE)]
    rest = [r for r in summary if r["method"] not in (layout.BASELINE, layout.REFERENCE)]
    order = list(dict.fromkeys(r["method"] for r in rest))
    return refs + sorted(rest, key=lambda r: (order.index(r["method"]), bool(r.get("tuned"))))


def _by(summary: list[dict[str, Any]], method: str) -> dict[str, Any] | None:
    return next((r for r in summary if r["method"] == method and not r.get("tuned")), None)


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
        tuned = any(r.get("tuned") for r in movers)
        groups = [("at their defaults", [r for r in movers if not r.get("tuned")]),
                  ("tuned without the retrained model", [r for r in movers if r.get("tuned")])] if tuned \
            else [("", movers)]
        for words, group in groups:
            if not group:
                continue
            best = max(group, key=lambda r: r["tow"][0])
            ratio = best["wall_ratio"][0]
            gap_closed = best["tow_gap_closed"][0]
            out.append(f"Closest to `retrain` by ToW{' ' + words if words else ''}: **{label(best)}** "
                       f"({best['kind'] or 'unknown'}; ToW {best['tow'][0]:.3f}"
                       + (f", ToW gap closed {gap_closed:.2f}" if gap_closed == gap_closed else "")
                       + (f", {ratio:.3g}× retrain's time" + (" selection included" if best.get("tuned") else "")
                          if ratio == ratio else "") + ").")
        still = [label(r) for r in movers if "changed nothing" in flags(r)]
        if still:
            ref = _by(summary, layout.REFERENCE)
            ref_share = _share_changed(ref) if ref is not None else float("nan")
            out.append(f"**Changed nothing**: {', '.join(f'`{m}`' for m in still)} changed fewer than "
                       f"{CHANGED_NOTHING:.0%} of the forget set's predictions"
                       + (f" (`retrain` changed {ref_share:.1%})" if ref_share == ref_share else "")
                       + ": read them as the original under another name.")
        fell = [label(r) for r in movers if "collapsed" in flags(r)]
        if fell:
            out.append(f"**Collapsed**: {', '.join(f'`{m}`' for m in fell)} ended at or below the majority-class "
                       "test accuracy in at least one seed.")
        worse = [label(r) for r in movers if r["tow_gap_closed"][0] < 0]
        if worse:
            out.append(f"{len(worse)} of {len(movers)} rows end further from `retrain` than the untouched original: "
                       + ", ".join(f"`{m}`" for m in worse) + ".")
    out.append(layout.CAVEAT)
    return out


def build_report(result: Any) -> Report:
    """The classifier bench's report, from ``result.config``, ``.records`` and ``.meta``."""
    cfg, meta, all_records = result.config, result.meta, result.records
    records = [r for r in all_records if not r.get("oracle_tuned")]
    oracle = [r for r in all_records if r.get("oracle_tuned")]
    summary = _paired(summarise(records, METRICS))
    tuned = _has_tuned(records)
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
    headers = (["settings"] if tuned else []) + [name for _, name in cols] + ["flags"]
    main = Table("Unlearning results", headers, _rows(summary, cols, settings=tuned, with_flags=True),
                 heading=layout.interval_heading(n), cautions=layout.time_cautions(meta, records),
                 notes=[EXPLAIN_FLAGS] + ([EXPLAIN_TUNED] if tuned else []))
    tables = [main]
    if oracle:
        osum = summarise(oracle, METRICS)
        tables.append(Table("Oracle-tuned (kept apart)", [name for _, name in COLUMNS], _rows(osum, COLUMNS),
                            heading=layout.interval_heading(layout.n_seeds(osum)), notes=[ORACLE_NOTE]))
    strata = stratum_summary(result)
    if strata:
        counts = [m.get("forget_per_stratum") for m in seeds.values() if m.get("forget_per_stratum")]
        notes = []
        if counts:
            notes.append("Forget examples per tercile (per seed): "
                         + "; ".join(", ".join(f"{k} {v}" for k, v in c.items()) for c in counts) + ".")
        notes.append(EXPLAIN_STRATA)
        tables.append(Table("By memorisation stratum", (["settings"] if tuned else [])
                            + [name for _, name in STRATUM_COLUMNS],
                            _rows(_paired(strata), STRATUM_COLUMNS, settings=tuned),
                            heading=layout.interval_heading(layout.n_seeds(strata)), notes=notes))
    recipe = meta.get("recipe")
    return Report(
        title=f"Unlearning benchmark: {dataset}",
        asked=asked, kinds=layout.kinds_summary(summary), verdict=_verdict(summary), cautions=cautions,
        tables=tables, explain=[EXPLAIN], plots=_plots([{**r, "method": label(r)} for r in summary], meta, records, n),
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
