"""The reports' content and figures, on synthetic results (no training): each test fails on a
defect seen in the reports before the shared layout (issue 19)."""

from __future__ import annotations

import html
import io
import re
from html.parser import HTMLParser
from itertools import combinations

import numpy as np
import pytest
import synthetic
from matplotlib.collections import LineCollection
from PIL import Image

from obliviate.report import audit, classifier, layout, lm, plots
from obliviate.report.aggregate import summarise


class _Text(HTMLParser):
    """The page's visible text (outside <pre>, <style>), and the tags that enclose each <table>."""

    def __init__(self) -> None:
        super().__init__()
        self.stack: list[str] = []
        self.text: list[str] = []
        self.table_parents: list[list[str]] = []

    def handle_starttag(self, tag, attrs):
        if tag == "table":
            self.table_parents.append(list(self.stack))
        if tag not in ("img", "meta", "br", "hr", "link", "input"):
            self.stack.append(tag)

    def handle_endtag(self, tag):
        if tag in self.stack:
            while self.stack.pop() != tag:
                pass

    def handle_data(self, data):
        if not {"pre", "style", "code"} & set(self.stack):
            self.text.append(data)


def _parse(page: str) -> _Text:
    p = _Text()
    p.feed(page)
    return p


def _all_pages() -> dict[str, tuple[str, str]]:
    c = synthetic.classifier_result(seeds=1, load=3.8)
    m = synthetic.lm_result(seeds=1)
    a = synthetic.audit_dict()
    return {"classifier": (classifier.to_markdown(c), classifier.to_html(c)),
            "lm": (lm.to_markdown(m), lm.to_html(m)),
            "audit": (audit.audit_markdown(a), audit.audit_html(a))}


@pytest.fixture(scope="module")
def pages() -> dict[str, tuple[str, str]]:
    return _all_pages()


# --------------------------------------------------------------------------- HTML is real HTML


def test_no_markdown_leaks_into_html(pages):
    for kind, (_, page) in pages.items():
        text = "".join(_parse(page).text)
        assert "`" not in text, f"{kind}: backticks shown literally"
        assert "**" not in text and not re.search(r"(^|\s)\*\w", text), f"{kind}: asterisks shown literally"
        assert "<code>original</code>" in page and ("<strong>" in page or "<em>" in page)


def test_tables_are_tables_not_preformatted_text(pages):
    for kind, (_, page) in pages.items():
        parsed = _parse(page)
        assert parsed.table_parents, kind
        assert all("pre" not in parents for parents in parsed.table_parents), kind
        assert "| method |" not in page


def test_markdown_to_html_renders_an_api_result_as_a_page():
    page = layout.markdown_to_html(synthetic.api_markdown(), title="obliviate.forget: graddiff")
    parsed = _parse(page)
    assert page.startswith("<!doctype html>") and "<table>" in page and "<pre>" not in page
    assert parsed.table_parents and all("pre" not in p for p in parsed.table_parents)
    assert "<td>graddiff</td>" in page
    assert "| model |" not in page


def test_markdown_to_html_escapes_raw_html():
    page = layout.markdown_to_html("hello <script>alert(1)</script> **bold**")
    assert "<script>" not in page and "&lt;script&gt;" in page and "<strong>bold</strong>" in page


def test_templates_escape_method_names():
    r = synthetic.classifier_result(seeds=1, methods=["finetune"])
    for rec in r.records:
        if rec["method"] == "finetune":
            rec["method"] = "<b>evil</b>"
    page = classifier.to_html(r)
    assert "<b>evil</b>" not in page and "&lt;b&gt;evil&lt;/b&gt;" in page


# --------------------------------------------------------------------------- one layout, kinds, references


@pytest.mark.parametrize("kind", ["classifier", "lm"])
def test_layout_summary_then_tables_then_plots_then_environment(pages, kind):
    md, page = pages[kind]
    order = [page.index(h) for h in ("<h2>Summary</h2>", "<h2>Results</h2>", "<h2>Plots</h2>",
                                     "<h2>Configuration and environment</h2>")]
    assert order == sorted(order)
    md_order = [md.index(h) for h in ("## Summary", "## Results", "## Configuration and environment")]
    assert md_order == sorted(md_order)
    for part in ("What was asked", "What kind of result each method gave", "Verdict"):
        assert part in page


@pytest.mark.parametrize("kind", ["classifier", "lm", "audit"])
def test_every_table_has_a_kind_column_and_the_reference_rows_are_explained(pages, kind):
    md, page = pages[kind]
    assert "<th>kind</th>" in page
    assert re.search(r"\| original \| baseline \|", md) and re.search(r"\| retrain \| exact \(reference\) \|", md)
    assert re.search(r"\| \w+ \| approximate \|", md)
    assert "Shaded rows" in md or "Reference rows" in md
    assert 'class="ref"' in page and ("untouched" in page)


def test_html_shows_everything_report_md_shows():
    r = synthetic.classifier_result(seeds=2)
    md, page = classifier.to_markdown(r), classifier.to_html(r)
    for needle in ("recipe (resolved)", "library versions", "scikit-learn 1.5.2", "machine", "AMD EPYC", "load",
                   "run times", "2026-12-03 14:10:22", "Per seed", "1294", "original train acc"):
        assert needle in md and needle in page, needle


def test_resolved_configuration_shows_the_recipe_used_not_nulls():
    r = synthetic.classifier_result(seeds=1)
    assert all(v is None for v in r.config["recipe"].values())
    page = classifier.to_html(r)
    config = html.unescape(page.split("Resolved configuration")[1])
    assert '"epochs": 30' in config and '"lr": 0.001' in config and '"epochs": null' not in config
    m = synthetic.lm_result(seeds=1)
    assert '"warmup_fraction": 0.03' in html.unescape(lm.to_html(m).split("Resolved configuration")[1])


def test_approximate_methods_are_never_said_to_forget_or_remove(pages):
    for kind, (md, page) in pages.items():
        for text in (md, page):
            assert not re.search(r"\b(forgot|forgets|forgotten|removed|erased)\b", text, re.I), kind


# --------------------------------------------------------------------------- seeds and intervals


def test_single_seed_tables_do_not_claim_an_interval():
    r = synthetic.classifier_result(seeds=1)
    for text in (classifier.to_markdown(r), classifier.to_html(r)):
        assert "mean ± 95% interval" not in text and "one seed" in text
        assert "±" not in text.split("Unlearning results")[1].split("Reference rows")[0]
    m = synthetic.lm_result(seeds=1)
    assert "mean ± 95% interval" not in lm.to_markdown(m) and "one seed" in lm.to_markdown(m)


def test_several_seeds_tables_say_mean_and_interval():
    r = synthetic.classifier_result(seeds=3)
    md = classifier.to_markdown(r)
    assert "mean ± 95% interval over 3 seeds" in md and "±" in md.split("| original |")[1]
    assert "mean ± 95% interval over 3 seeds" in lm.to_markdown(synthetic.lm_result(seeds=3))


def _errorbar_lines(fig) -> int:
    return sum(len(c.get_segments()) for ax in fig.axes for c in ax.collections if isinstance(c, LineCollection))


def test_error_bars_only_with_several_seeds():
    one = summarise(synthetic.classifier_result(seeds=1).records, classifier.METRICS)
    three = summarise(synthetic.classifier_result(seeds=3).records, classifier.METRICS)
    assert _errorbar_lines(plots.tradeoff_scatter(one)) == 0
    assert _errorbar_lines(plots.tradeoff_scatter(three)) > 0
    assert _errorbar_lines(plots.dot_panels(one, ["tow"], ["ToW"], title="t")) == 0
    assert _errorbar_lines(plots.dot_panels(three, ["tow"], ["ToW"], title="t")) > 0


# --------------------------------------------------------------------------- plots


def _lm_summary(seeds: int = 1):
    return summarise(synthetic.lm_result(seeds=seeds).records, lm.METRICS)


def test_forget_quality_below_the_axis_is_marked_not_floored():
    fig = plots.fq_mu_scatter(_lm_summary())
    ax = fig.axes[0]
    lo, hi = ax.get_xlim()
    assert hi <= 1.0 + 1e-12, "a p-value axis must stop at 1"
    assert lo > 1e-30
    texts = [t.get_text() for t in ax.texts]
    for method, fq in synthetic.LM_FQ.items():
        if fq < lo:
            label = next((t for t in texts if t.startswith(method + " ")), "")
            assert plots.fmt_value(fq) in label and "off the axis" in label, (method, texts)
    assert "9.7e-150" in " ".join(texts)  # the original, not 1e-30
    assert any("0.05" in t for t in texts), "the 0.05 line is labelled on the plot"
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert any("0.05" in t and "threshold" in t for t in legend)


def test_lm_plot_draws_original_and_retrain_as_reference_lines():
    ax = plots.fq_mu_scatter(_lm_summary()).axes[0]
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert any(t.startswith("original") for t in legend) and any(t.startswith("retrain") for t in legend)


def test_tradeoff_draws_original_as_a_line_and_every_method_gets_a_label():
    summary = summarise(synthetic.classifier_result(seeds=1).records, classifier.METRICS)
    ax = plots.tradeoff_scatter(summary).axes[0]
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert any("original" in t and "0.992" in t for t in legend)
    assert any(t.startswith("retrain") for t in legend)
    labels = {t.get_text() for t in ax.texts}
    assert set(synthetic.CLASSIFIER_METHODS) | {"retrain"} <= labels


def test_direct_labels_do_not_overlap():
    summary = summarise(synthetic.classifier_result(seeds=1).records, classifier.METRICS)
    for fig in (plots.tradeoff_scatter(summary), plots.fq_mu_scatter(_lm_summary())):
        ax = fig.axes[0]
        renderer = fig.canvas.get_renderer()
        boxes = [t.get_window_extent(renderer) for t in ax.texts if t.get_text() and "p =" not in t.get_text()]
        assert len(boxes) >= 10
        for a, b in combinations(boxes, 2):
            assert not a.overlaps(b), (a, b)


def test_legends_stay_off_the_data():
    fig = plots.roc_curves([("retrain", np.array([0, .5, 1.]), np.array([0, .5, 1.]), "retrain"),
                            ("kl", np.array([0, .1, 1.]), np.array([0, .6, 1.]), "kl")], floor=1e-3, title="t")
    renderer = fig.canvas.get_renderer()
    ax = fig.axes[0]
    assert ax.get_legend().get_window_extent(renderer).x0 >= ax.get_window_extent(renderer).x1
    summary = _lm_summary()
    fig = plots.dot_panels(summary, ["forget_rouge", "retain_rouge"], ["forget", "retain"], title="ROUGE")
    renderer = fig.canvas.get_renderer()
    leg = fig.legends[0].get_window_extent(renderer)
    assert all(leg.y1 <= a.get_window_extent(renderer).y0 for a in fig.axes if a.get_visible())


def test_eighteen_methods_get_eighteen_colours():
    names = ["original", "retrain", *synthetic.CLASSIFIER_METHODS, "extra1", "extra2", "x3", "x4", "x5", "x6",
             "x7", "x8", "x9"]
    assert len(set(plots.colours(names).values())) == len(names)


def test_every_plot_fits_a_1280_px_page():
    figs = classifier.figures(synthetic.classifier_result(seeds=3)) + lm.figures(synthetic.lm_result(seeds=1))
    for title, png in figs:
        w, h = Image.open(io.BytesIO(png)).size
        assert 300 < w <= 1150, (title, w)
    assert 'img { max-width: 100%; height: auto;' in classifier.to_html(synthetic.classifier_result())


# --------------------------------------------------------------------------- cautions


def test_busy_machine_flags_time_ratios():
    busy = synthetic.classifier_result(seeds=1, load=3.8)
    quiet = synthetic.classifier_result(seeds=1, load=0.4)
    flagged = synthetic.classifier_result(seeds=1, load=0.4, loaded=True)
    for r in (busy, flagged):
        md, page = classifier.to_markdown(r), classifier.to_html(r)
        assert "Busy machine" in md and 'class="caution"' in page and "busy machine" in page.lower()
        assert "time ratio" in md.split("Unlearning results")[1].split("Reference rows")[0]
    assert "Busy machine" not in classifier.to_markdown(quiet) and 'class="caution"' not in classifier.to_html(quiet)
    # the LM runner's end-of-run load average (meta["load_average"]) counts as well
    m = synthetic.lm_result(seeds=1, load=3.8)
    m.meta["machine"].pop("load_average")
    assert "Busy machine" in lm.to_markdown(m)


def test_cached_reference_time_is_said():
    r = synthetic.classifier_result(seeds=1, cached_retrain=True)
    md = classifier.to_markdown(r)
    assert "cached model (runs/earlier" in md and "time ratios divide by that stored time" in md
    m = synthetic.lm_result(seeds=1, cached_retain=True)
    assert "retain-only model was loaded from the model cache" in lm.to_markdown(m)
    r2 = synthetic.classifier_result(seeds=1)
    r2.records[1]["cached"] = True  # retrain's record says its model came from the cache
    assert "retrained model was loaded from the model cache" in classifier.to_markdown(r2)
    assert "model cache" not in classifier.to_markdown(synthetic.classifier_result(seeds=1)).split("## Results")[0]


def test_cpu_time_column_when_recorded():
    r = synthetic.classifier_result(seeds=1, cpu=True)
    assert "| CPU s |" in classifier.to_markdown(r)
    assert "CPU s" not in classifier.to_markdown(synthetic.classifier_result(seeds=1))


# --------------------------------------------------------------------------- files


def test_write_reports_and_audit_section(tmp_path):
    run = tmp_path / "run"
    classifier.write_reports(synthetic.classifier_result(seeds=1, methods=["finetune", "graddiff", "kl"]), run)
    before = (run / "report.html").read_text()
    audit.write_audit_reports(run, synthetic.audit_dict())
    page = (run / "report.html").read_text()
    assert page.count("<h2>Strong audit</h2>") == 1
    assert page.count("data:image/png;base64,") == before.count("data:image/png;base64,") + 2
    # the audit sits before the configuration, inside the page's main column
    assert page.index("<h2>Strong audit</h2>") < page.index("<h2>Configuration and environment</h2>")
    assert page.index("</main>") > page.index(audit.END)
    audit.write_audit_reports(run, synthetic.audit_dict())
    assert (run / "report.html").read_text().count("<h2>Strong audit</h2>") == 1
    assert 'class="flag"' in page and "tinted red" in page


def test_one_entry_point_picks_the_task_reporter(tmp_path):
    import obliviate.report as report
    from obliviate.errors import ConfigError

    assert report.provider(synthetic.classifier_result()) is classifier
    assert report.provider(synthetic.lm_result(task="tofu")) is lm
    legacy = synthetic.classifier_result()
    del legacy.meta["task"]  # today's BenchResult.meta has no task; its config does
    assert report.provider(legacy) is classifier
    assert "| retrain | exact (reference) |" in report.to_markdown(synthetic.lm_result())
    assert (report.write_reports(synthetic.classifier_result(methods=["finetune"]), tmp_path)["html"]).is_file()
    odd = synthetic.classifier_result()
    odd.meta["task"] = "speech"
    with pytest.raises(ConfigError, match="No reporter for task 'speech'"):
        report.provider(odd)


def test_terminal_summary_stops_after_the_tables():
    r = synthetic.classifier_result(seeds=1)
    brief, full = classifier.summary_markdown(r), classifier.to_markdown(r)
    assert "| retrain | exact (reference) |" in brief and "Resolved configuration" not in brief
    assert full.startswith(brief.rstrip("\n")) and "Resolved configuration" in full
    assert "Resolved configuration" not in lm.summary_markdown(synthetic.lm_result())


def test_report_keeps_oracle_tuned_rows_apart_and_flags():
    from obliviate.report.classifier import to_markdown

    res = synthetic.classifier_result(methods=["graddiff", "ssd"])
    ssd = next(r for r in res.records if r["method"] == "ssd")
    ssd.update(forget_pred_changed=0.001, pred_changed=0.001)
    oracle = {**next(r for r in res.records if r["method"] == "graddiff"), "method": "graddiff_sweep",
              "oracle_tuned": True, "tow": 0.999}
    res.records.append(oracle)
    md = to_markdown(res)
    main, apart = md.split("Oracle-tuned (kept apart)")
    assert "graddiff_sweep" not in main and "graddiff_sweep" in apart
    assert "**Changed nothing**: `ssd`" in main
