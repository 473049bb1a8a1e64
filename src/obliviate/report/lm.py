"""Reporters for language-model bench results: JSON, Markdown and HTML with plots.

The table follows TOFU's layout (forget quality, model utility, then the per-split
numbers), with MUSE's PrivLeak and verbatim memorisation, and the two recovery
attacks. With several seeds a number is the mean with a 95% interval; with one seed, the value.
Works on any object with ``config``, ``records`` and ``meta``, such as ``LMResult``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from obliviate.report import layout, plots
from obliviate.report.aggregate import summarise
from obliviate.report.layout import Cell, Plot, Report, Row, Table
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
METRICS = [c for c, _ in COLUMNS] + EXTRA_METRICS + ["cpu_s"]
VERSIONS = ("obliviate", "torch", "transformers", "tokenizers", "numpy", "scipy")
SPLITS = ("forget", "retain", "holdout", "neighbours", "general", "real_authors", "world_facts")
FQ_GOAL, MU_GOAL = 0.05, 0.9
SIDE_EFFECT_COLUMNS = ("retain_rouge", "holdout_rouge", "neighbours_rouge", "general_rouge")

EXPLAIN = """\
How to read the table. `retrain` is the retain-only model, trained from scratch without the forget set.
Forget quality (TOFU) is the KS-test p-value between the forget-set truth ratios of a model and of
the retain-only model: near 1 = indistinguishable from never having seen the forget set; TOFU treats
p ≥ 0.05 as not rejected. Model utility (TOFU) is the harmonic mean of answer probability, ROUGE-L
recall and truth ratio on the retain and general-knowledge sets; "MU / retain-only" divides by the
retain-only model's. ROUGE columns are ROUGE-L recall of greedy answers. PrivLeak (MUSE) compares the
Min-K% membership AUC (forget vs holdout) with the retain-only model's: 0 ideal, > 0 the forget set
still looks trained on, < 0 over-unlearned. Verbatim ROUGE: greedy continuation of half-given forget
answers. Relearn gap: fine-tune on half of each forget-set person's facts for a few steps, then
ROUGE-L on the held-back half minus what the retain-only model reaches after the same steps
(0 = as if never seen; the original shows what a model trained on the data looks like).
ICL recovery: ROUGE-L gained by putting the forget facts in the prompt; compare with the `retrain`
row: in a model that learns in context, context brings facts back even after exact removal. A
negative value means the context made answers worse: the model cannot read facts from a prompt
(small models trained from scratch here cannot), and the attack says nothing about it."""


def _clean(obj: Any) -> Any:
    return layout.clean(obj)


def _fq_cell(value: tuple[float, float]) -> Cell:
    mean, half = value
    if not np.isfinite(mean):
        return Cell("n/a")
    if mean < 1e-3:
        return Cell(f"{mean:.1e}", f"{half:.1e}" if np.isfinite(half) else "")
    return layout.cell(value)


def _fmt_fq(value: tuple[float, float]) -> str:
    return _fq_cell(value).markdown


def _columns(summary: list[dict[str, Any]]) -> list[tuple[str, str]]:
    """Columns that have a value for at least one method (TOFU has no neighbours; general is per set there)."""
    cols = [(c, label) for c, label in COLUMNS if any(np.isfinite(row[c][0]) for row in summary)]
    if any(np.isfinite(row["cpu_s"][0]) for row in summary):
        cols.insert(cols.index(("wall_ratio", "time ratio")), ("cpu_s", "CPU s"))
    return cols


def _verdict(summary: list[dict[str, Any]]) -> list[str]:
    movers = [r for r in summary if r["method"] not in (layout.BASELINE, layout.REFERENCE)]
    meets = [r for r in movers if r["forget_quality"][0] >= FQ_GOAL and r["model_utility_ratio"][0] >= MU_GOAL]
    bar = (f"TOFU's bar here: forget quality ≥ {FQ_GOAL} (the KS test does not tell the truth ratios apart from "
           f"the retain-only model's) with model utility ≥ {MU_GOAL:.0%} of the retain-only model's.")
    out = []
    orig = next((r for r in summary if r["method"] == layout.BASELINE), None)
    if orig is not None and np.isfinite(orig["forget_quality"][0]):
        out.append(f"The untouched `original` has forget quality {_fq_cell(orig['forget_quality']).text}: "
                   + ("the test tells it apart from the retain-only model." if orig["forget_quality"][0] < FQ_GOAL
                      else "already close to the retain-only model on this test."))
    if meets:
        out.append(bar + " Methods that meet it: " + ", ".join(
            f"**{r['method']}** (FQ {_fq_cell(r['forget_quality']).text}, MU ratio {r['model_utility_ratio'][0]:.3f})"
            for r in sorted(meets, key=lambda r: -r["forget_quality"][0])) + ".")
    elif movers:
        best = max(movers, key=lambda r: r["forget_quality"][0] if np.isfinite(r["forget_quality"][0]) else -1)
        out.append(bar + f" No method meets it; highest forget quality: **{best['method']}** "
                   f"(FQ {_fq_cell(best['forget_quality']).text}, MU ratio {best['model_utility_ratio'][0]:.3f}).")
    out.append(layout.CAVEAT)
    return out


def _recipe(meta: dict[str, Any]) -> dict[str, Any] | None:
    if meta.get("recipe"):
        return meta["recipe"]
    return next((m["recipe"] for m in (meta.get("seeds") or {}).values() if m.get("recipe")), None)


def _model_desc(m: dict[str, Any]) -> str:
    model = m.get("model", {})
    if model.get("kind") == "gpt2":
        return (f"GPT-2 {model.get('n_layer')}x{model.get('n_embd')}, vocab {model.get('vocab_size')}, "
                f"{model.get('parameters')} params")
    return str(model.get("path", "n/a"))


def _title(cfg: dict[str, Any], meta: dict[str, Any]) -> str:
    task = meta.get("task", cfg.get("task"))
    return f"{task}" + (f" {cfg.get('split')}" if cfg.get("split") else "")


def build_report(result: Any) -> Report:
    """The language-model bench's report, from ``result.config``, ``.records`` and ``.meta``."""
    cfg, meta, records = result.config, result.meta, result.records
    summary = summarise(records, METRICS)
    cols = _columns(summary)
    n = layout.n_seeds(summary)
    seeds = meta.get("seeds", {})
    first = next(iter(seeds.values()), {})
    asked = [f"Forget {first.get('n_forget', '?')} question-answer pairs (task `{_title(cfg, meta)}`) from a "
             f"{_model_desc(first)} model trained on {first.get('n_train', '?')} pairs; "
             f"{first.get('n_retain', '?')} retain pairs.",
             f"Seeds: {', '.join(map(str, cfg.get('seeds') or []))}; methods: "
             + ", ".join(f"`{m}`" for m in meta.get("methods", cfg.get("methods", []))) + "."]
    if cfg.get("lora"):
        asked.append(f"Methods update LoRA adapters ({layout._md_escape(json.dumps(cfg['lora']))}).")
    cautions = [c for c in [layout.busy_caution(meta, records)] if c]
    cautions += layout.cached_cautions(meta, records, reference_name="retain-only model")
    def rows(columns: list[tuple[str, str]]) -> list[Row]:
        return [Row(r["method"], layout.kind_label(r["method"], r.get("kind")),
                    [_fq_cell(r[c]) if c == "forget_quality" else layout.cell(r[c]) for c, _ in columns],
                    layout.tint(r["method"])) for r in summary]

    side = [c for c in cols if c[0] in SIDE_EFFECT_COLUMNS]
    main = [c for c in cols if c[0] not in SIDE_EFFECT_COLUMNS]
    tables = [Table("Unlearning results", [label for _, label in main], rows(main), heading=layout.interval_heading(n),
                    cautions=layout.time_cautions(meta, records))]
    if side:
        tables.append(Table("Side effects: answers on the other splits", [label for _, label in side], rows(side),
                            heading=layout.interval_heading(n),
                            notes=["ROUGE-L recall of greedy answers on data the methods should leave alone "
                                   "(retain), never trained on (holdout), people sharing attributes with the "
                                   "forget-set people (neighbours) and general facts."]))
    recipe = _recipe(meta)
    return Report(
        title=f"Language-model unlearning benchmark: {_title(cfg, meta)}",
        asked=asked, kinds=layout.kinds_summary(summary), verdict=_verdict(summary), cautions=cautions,
        tables=tables,
        explain=[EXPLAIN], plots=_plots(summary, n),
        environment=[
            ("recipe (resolved)", ", ".join(f"{k} {v}" for k, v in recipe.items()) if recipe else "not recorded"),
            ("library versions", layout.versions(meta, VERSIONS)),
            ("machine", layout.machine_line(meta)),
            ("load", layout.load_line(meta)),
            ("run times", layout.run_times_line(meta, records)),
        ],
        extra_tables=[_seed_table(seeds)] if seeds else [],
        config_json=layout.resolved_config(cfg, recipe),
    )


def _seed_table(seeds: dict[str, Any]) -> Table:
    def num(v: Any, d: int) -> str:
        return f"{v:.{d}f}" if isinstance(v, (int, float)) else "n/a"

    rows = [Row(str(s), "", [Cell(_model_desc(m)), Cell(str(m.get("n_train", "n/a"))),
                              Cell(str(m.get("n_forget", "n/a"))), Cell(str(m.get("n_retain", "n/a"))),
                              Cell(num(m.get("original_train_exact"), 3)), Cell(num(m.get("retain_train_exact"), 3)),
                              Cell(num(m.get("original_train_s"), 0)
                                   + (" (cached)" if m.get("original_cached") else "")),
                              Cell(num(m.get("retain_train_s"), 0) + (" (cached)" if m.get("retain_cached") else "")),
                              Cell(num(m.get("seed_wall_s"), 0))])
            for s, m in seeds.items()]
    return Table("Per seed", ["model", "train", "forget", "retain", "original exact (train)",
                              "retain-only exact (retain)", "original s", "retain-only s", "seed wall s"], rows,
                 with_kind=False, first_column="seed")


def to_markdown(result: Any) -> str:
    return layout.render_markdown(build_report(result))


def summary_markdown(result: Any) -> str:
    """Summary and tables only, without the environment and configuration (for a terminal)."""
    return layout.render_markdown(build_report(result), brief=True)


def _plots(summary: list[dict[str, Any]], n: int) -> list[Plot]:
    bars = "Intervals are 95% over seeds." if n > 1 else "One seed: no intervals."
    splits = [s for s in SPLITS if any(np.isfinite(row.get(f"{s}_rouge", (np.nan, np.nan))[0]) for row in summary)]
    out = [Plot("Forget quality against model utility",
                lambda: plots.to_png(plots.fq_mu_scatter(summary, threshold=FQ_GOAL)),
                "Forget quality is a p-value: the axis stops at 1, and values below its left end are drawn at the "
                "edge (◀) with the true value in their label, not floored in silence. The red line is TOFU's 0.05; "
                f"`retrain` and `original` utility are the dashed and dotted lines. {bars}")]
    if splits:
        out.append(Plot("ROUGE-L per split", lambda: plots.to_png(plots.dot_panels(
            summary, [f"{s}_rouge" for s in splits], [s.replace("_", " ") for s in splits],
            title="ROUGE-L recall of greedy answers")),
            f"Vertical lines: `retrain` (dashed) and the original (dotted). {bars}"))
    mia = [("mia_auc_loss", "LOSS"), ("mia_auc_zlib", "zlib"), ("mia_auc_min_k", "Min-K%"),
           ("mia_auc_min_k_pp", "Min-K%++")]
    mia = [(k, v) for k, v in mia if any(np.isfinite(r[k][0]) for r in summary)]
    if mia:
        out.append(Plot("Membership attacks", lambda: plots.to_png(plots.dot_panels(
            summary, [k for k, _ in mia], [v for _, v in mia], title="Membership AUC, forget vs holdout",
            chance={k: 0.5 for k, _ in mia})), f"0.5 is chance; compare each row with `retrain`'s line. {bars}"))
    rec = [("relearn_rouge_gain", "relearning gain"), ("icl_recovery", "facts in context"),
           ("icl_related_recovery", "related facts in context")]
    rec = [(k, v) for k, v in rec if any(np.isfinite(r[k][0]) for r in summary)]
    if rec:
        out.append(Plot("Recovery attacks", lambda: plots.to_png(plots.dot_panels(
            summary, [k for k, _ in rec], [v for _, v in rec], title="How much comes back (ROUGE-L gain)")),
            f"Compare with `retrain`'s line: what context or relearning brings back without the forget data. {bars}"))
    return out


def figures(result: Any) -> list[tuple[str, bytes]]:
    return [(p.title, p.png) for p in build_report(result).plots]


def to_html(result: Any) -> str:
    return layout.render_html(build_report(result))


def write_reports(result: Any, out: str | Path) -> dict[str, Path]:
    """Write results.json, config.json, meta.json, report.md and report.html into ``out``."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"results": out / "results.json", "config": out / "config.json", "meta": out / "meta.json",
             "markdown": out / "report.md", "html": out / "report.html"}
    report = build_report(result)
    atomic_write_json(paths["results"], _clean(result.records))
    atomic_write_json(paths["config"], _clean(result.config))
    atomic_write_json(paths["meta"], _clean(result.meta))
    atomic_write_bytes(paths["markdown"], layout.render_markdown(report).encode())
    atomic_write_bytes(paths["html"], layout.render_html(report).encode())
    return paths
