"""Matplotlib figures for reports (Agg canvas, no pyplot state), returned as figures or PNG bytes.

Every figure follows the same rules: sized to fit a 1280 px page (the HTML scales it down
further), labels placed so they do not cover each other or the data (leader lines to a
column beside the axes when there is no room), `original` and `retrain` drawn as reference
lines, values outside an axis marked at its edge with the true value in their label, and
error bars only where a method has several seeds.
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import FuncFormatter, NullFormatter
from matplotlib.transforms import Bbox

BASELINE, REFERENCE = "original", "retrain"
DPI = 100
MAX_WIDTH_IN = 10.5  # 1050 px at DPI: fits a 1280 px window with the page's margins
MARKERS = {"exact": "*", "approximate": "o", "suppression": "s", "baseline": "D"}
REF_STYLE = {REFERENCE: dict(color="#111111", ls="--", lw=1.2), BASELINE: dict(color="#888888", ls=":", lw=1.4)}
_PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#17becf",
            "#bcbd22", "#aec7e8", "#ffbb78", "#98df8a", "#ff9896", "#c5b0d5", "#c49c94", "#f7b6d2",
            "#9edae5", "#dbdb8d", "#393b79", "#637939", "#8c6d31", "#843c39", "#7b4173", "#3182bd"]


def kind_of(row: dict[str, Any]) -> str:
    """The kind a report shows: baseline (the untouched original), exact, approximate or suppression."""
    method, kind = row.get("method"), row.get("kind")
    if method == BASELINE or kind in ("none", "baseline"):
        return "baseline"
    if method == REFERENCE:
        return "exact"
    return str(kind) if kind else "unknown"


def colours(methods: Sequence[str]) -> dict[str, str]:
    """One colour per method, the same in every figure of a report; the references are black and grey."""
    out: dict[str, str] = {}
    others = [m for m in methods if m not in (BASELINE, REFERENCE)]
    for i, m in enumerate(others):
        # Past the palette a method gets a darker shade of a colour, never the same one.
        base = _PALETTE[i % len(_PALETTE)]
        out[m] = base if i < len(_PALETTE) else _shade(base, 0.6)
    out[BASELINE] = REF_STYLE[BASELINE]["color"]
    out[REFERENCE] = REF_STYLE[REFERENCE]["color"]
    return out


def _shade(hex_colour: str, factor: float) -> str:
    r, g, b = (int(hex_colour[i:i + 2], 16) for i in (1, 3, 5))
    return "#" + "".join(f"{int(c * factor):02x}" for c in (r, g, b))


def new_figure(width: float, height: float) -> Figure:
    fig = Figure(figsize=(min(width, MAX_WIDTH_IN), height), dpi=DPI)
    FigureCanvasAgg(fig)
    return fig


def to_png(fig: Figure) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI, bbox_inches="tight", pad_inches=0.12)
    return buf.getvalue()


def fmt_value(v: float) -> str:
    if v == 0:
        return "0"
    if abs(v) < 1e-3 or abs(v) >= 1e4:
        return f"{v:.1e}"
    return f"{v:.3g}"


def _finite(v: Any) -> bool:
    return isinstance(v, (int, float, np.floating)) and math.isfinite(float(v))


def _err(half: float, n: int) -> float | None:
    """An error-bar half-width only where there are several seeds to make an interval from."""
    return float(half) if n > 1 and _finite(half) else None


# --------------------------------------------------------------------------- label placement


@dataclass
class Point:
    x: float
    y: float
    text: str
    colour: str


def place_labels(ax: Any, points: Sequence[Point], *, fontsize: float = 8.0) -> list[Any]:
    """Label each point without overlapping another label, a marker or the axes' edge.

    Each label tries a few spots around its point; one that finds none goes to a column
    right of the axes, sorted by height, joined to its point by a thin leader line.
    Returns the text artists.
    """
    fig = ax.figure
    renderer = fig.canvas.get_renderer()
    ax_box = ax.get_window_extent(renderer)
    to_px = ax.transData.transform
    px_per_pt = fig.dpi / 72.0
    marks = []
    for p in points:
        cx, cy = to_px((p.x, p.y))
        r = 4.5 * px_per_pt
        marks.append(Bbox.from_extents(cx - r, cy - r, cx + r, cy + r))
    placed: list[Bbox] = []
    texts, leftover = [], []
    offsets = [(6, 0, "left", "center"), (-6, 0, "right", "center"), (0, 7, "center", "bottom"),
               (0, -7, "center", "top"), (6, 7, "left", "bottom"), (6, -7, "left", "top"),
               (-6, 7, "right", "bottom"), (-6, -7, "right", "top"), (6, 14, "left", "bottom"),
               (6, -14, "left", "top")]
    order = sorted(range(len(points)), key=lambda i: (-points[i].y, points[i].x))
    for i in order:
        p = points[i]
        for dx, dy, ha, va in offsets:
            t = ax.annotate(p.text, (p.x, p.y), xytext=(dx, dy), textcoords="offset points", ha=ha, va=va,
                            fontsize=fontsize, color=_darker(p.colour), annotation_clip=False, zorder=4,
                            bbox=dict(boxstyle="square,pad=0.1", fc="white", ec="none", alpha=0.75))
            box = t.get_window_extent(renderer).expanded(1.04, 1.15)
            inside = ax_box.contains(box.x0, box.y0) and ax_box.contains(box.x1, box.y1)
            others = [m for j, m in enumerate(marks) if j != i]
            if inside and not any(box.overlaps(b) for b in placed + others):
                placed.append(box)
                texts.append(t)
                break
            t.remove()
        else:
            leftover.append(p)
    texts += _callout_column(ax, leftover, fontsize=fontsize)
    return texts


def _callout_column(ax: Any, points: Sequence[Point], *, fontsize: float) -> list[Any]:
    if not points:
        return []
    fig = ax.figure
    height_pt = ax.get_window_extent(fig.canvas.get_renderer()).height * 72.0 / fig.dpi
    gap = fontsize * 1.35 / height_pt  # one line, in axes fraction
    inv = ax.transAxes.inverted()
    targets = sorted(((float(inv.transform(ax.transData.transform((p.x, p.y)))[1]), p) for p in points),
                     key=lambda t: t[0])
    ys = [min(max(y, 0.0), 1.0) for y, _ in targets]
    for k in range(1, len(ys)):
        ys[k] = max(ys[k], ys[k - 1] + gap)
    overshoot = ys[-1] - 1.0
    if overshoot > 0:  # push the column down, but never below the bottom unless it must be taller
        ys = [y - min(overshoot, max(0.0, ys[0])) for y in ys]
        for k in range(1, len(ys)):
            ys[k] = max(ys[k], ys[k - 1] + gap)
    out = []
    for y, (_, p) in zip(ys, targets, strict=True):
        out.append(ax.annotate(p.text, (p.x, p.y), xytext=(1.03, y), textcoords="axes fraction", ha="left",
                               va="center", fontsize=fontsize, color=_darker(p.colour), annotation_clip=False,
                               arrowprops=dict(arrowstyle="-", color=p.colour, lw=0.6, alpha=0.7,
                                               shrinkA=0, shrinkB=3)))
    return out


def _darker(colour: str) -> str:
    return _shade(colour, 0.75) if colour.startswith("#") and len(colour) == 7 else colour


def _legend_below(ax: Any, handles: list[Any], *, ncol: int = 3) -> None:
    if handles:
        ax.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, -0.13), ncol=ncol, fontsize=8,
                  frameon=False)


def _kind_handles(kinds: Sequence[str]) -> list[Any]:
    names = {"exact": "exact", "approximate": "approximate", "suppression": "suppression",
             "baseline": "baseline (untouched)"}
    return [Line2D([], [], marker=MARKERS.get(k, "o"), ls="", color="#555555", markersize=7, label=names.get(k, k))
            for k in dict.fromkeys(kinds) if k]


# --------------------------------------------------------------------------- figures


def tradeoff_scatter(summary: Sequence[dict[str, Any]], *, x: str = "wall_ratio", y: str = "tow",
                     xlabel: str = "wall time / retrain's wall time (log)", ylabel: str = "ToW against retrain",
                     title: str = "Quality against cost", caution: str | None = None) -> Figure:
    """Methods as points: a score that is 1 at retrain (ToW) against the time ratio, both on log axes.

    The vertical axis is the distance from retrain, 1 − ToW, on a log scale (upside down, ticks
    labelled in ToW), so methods a hair apart near ToW 0.99 do not pile into one smear. Retrain
    (distance 0) is the top edge; another method at distance 0 is drawn there as a triangle with
    its value in the label. The original costs nothing (ratio 0 cannot sit on a log axis), so it
    is a horizontal line, not a point; a method without a positive time is listed above the axes
    instead of dropped in silence.
    """
    col = colours([r["method"] for r in summary])
    fig = new_figure(8.6, max(4.2, 2.4 + 0.17 * len(summary)))
    ax = fig.add_subplot(1, 1, 1)
    gaps = [1.0 - float(r[y][0]) for r in summary if _finite(r[y][0])]
    positive = [g for g in gaps if g > 0]
    floor = 10 ** math.floor(math.log10(min(positive) / 2)) if positive else 1e-3
    floor = max(floor, 1e-6)
    edge = floor / 2  # where retrain (distance 0) and anything closer than ``floor`` are drawn
    handles: list[Any] = []
    points, skipped = [], []
    for row in summary:
        (mx, hx), (my, hy) = row[x], row[y]
        m = row["method"]
        if not _finite(my):
            skipped.append(m)
            continue
        gap = 1.0 - float(my)
        if m == BASELINE:
            handles.append(ax.axhline(max(gap, edge), **REF_STYLE[BASELINE],
                                      label=f"original (untouched): {ylabel} {my:.3f}"))
            continue
        if m == REFERENCE:
            handles.append(ax.axhline(max(gap, edge), **REF_STYLE[REFERENCE],
                                      label=f"retrain (exact reference): {my:.3f}, the top edge"))
        if not _finite(mx) or mx <= 0:
            skipped.append(m)
            continue
        n = int(row.get("n", 1))
        at_edge = gap < floor
        yv = edge if at_edge else gap
        err = _err(hy, n)
        if err is not None or _err(hx, n) is not None:
            yerr = None if err is None else [[yv - max(yv - err, edge)], [min(yv + err, 1.0) - yv]]
            ax.errorbar(mx, yv, xerr=_err(hx, n), yerr=yerr, fmt="none", ecolor=col[m], elinewidth=0.8, zorder=2)
        marker = "^" if at_edge and m != REFERENCE else MARKERS.get(kind_of(row), "o")
        ax.plot([mx], [yv], marker=marker, ls="", color=col[m], markersize=9 if m == REFERENCE else 6,
                clip_on=False, zorder=3)
        text = f"{m} (ToW {my:.4f}, at the edge)" if at_edge and m != REFERENCE else m
        points.append(Point(mx, yv, text, col[m]))
    handles.append(ax.axvline(1.0, color="#bbbbbb", ls="-.", lw=1, label="cost of retraining (ratio 1)"))
    ax.set_xscale("log")
    xs = [p.x for p in points] + [1.0]
    ax.set_xlim(min(xs) / 2.5, max(xs) * 2.5)
    ax.set_yscale("log")
    ax.set_ylim(min(1.0, max(gaps + [floor * 10]) * 2), edge)  # upside down: closer to retrain is higher
    ax.yaxis.set_major_formatter(FuncFormatter(_tow_tick))
    ax.yaxis.set_minor_formatter(NullFormatter())
    ax.set_xlabel(xlabel)
    ax.set_ylabel(f"{ylabel} (log scale of 1 − ToW)")
    ax.set_title(title, fontsize=11)
    ax.grid(alpha=0.3)
    notes = []
    if caution:
        notes.append(caution)
    if skipped:
        notes.append("not plotted (no positive time ratio): " + ", ".join(skipped))
    if notes:
        ax.text(0.0, 1.02, "\n".join(notes), transform=ax.transAxes, fontsize=8, color="#a33", va="bottom")
        ax.set_title(title, fontsize=11, pad=14 + 11 * len(notes))
    place_labels(ax, points)
    _legend_below(ax, handles + _kind_handles([kind_of(r) for r in summary if r["method"] != BASELINE]))
    return fig


def _tow_tick(gap: float, _pos: Any = None) -> str:
    if gap <= 0:
        return ""
    digits = max(0, -math.floor(math.log10(gap) + 1e-9))
    return f"{1 - gap:.{digits}f}"


def fq_mu_scatter(summary: Sequence[dict[str, Any]], *, floor: float = 1e-12, threshold: float = 0.05,
                  title: str = "Forget quality against model utility (TOFU)") -> Figure:
    """Forget quality (a KS p-value: log axis, capped at 1) against model utility, one point per model.

    A p-value below ``floor`` is drawn as a left-pointing triangle on the axis edge and its
    label carries the true value; TOFU's 0.05 line is labelled.
    """
    col = colours([r["method"] for r in summary])
    fig = new_figure(8.6, max(4.4, 2.6 + 0.17 * len(summary)))
    ax = fig.add_subplot(1, 1, 1)
    rows = [r for r in summary if _finite(r["forget_quality"][0]) and _finite(r["model_utility"][0])]
    fqs = [float(r["forget_quality"][0]) for r in rows]
    in_range = [v for v in fqs if v >= floor]
    lo = floor if len(in_range) < len(fqs) else 10 ** math.floor(math.log10(max(min(in_range or [floor]), floor)))
    lo = min(lo, threshold / 10)
    handles: list[Any] = []
    points, off = [], []
    for r in rows:
        m = r["method"]
        fq, (mu, mu_h) = float(r["forget_quality"][0]), r["model_utility"]
        n = int(r.get("n", 1))
        if m in REF_STYLE:
            label = "retrain (exact reference)" if m == REFERENCE else "original (untouched)"
            handles.append(ax.axhline(mu, **REF_STYLE[m], label=f"{label}: utility {mu:.3f}"))
        below = fq < lo
        xv = lo if below else min(fq, 1.0)
        marker = "<" if below else MARKERS.get(kind_of(r), "o")
        if _err(mu_h, n) is not None:  # the interval is clipped by the axes, the marker on the edge is not
            ax.errorbar(xv, mu, yerr=_err(mu_h, n), fmt="none", ecolor=col[m], capsize=0, elinewidth=0.8, zorder=2)
        ax.plot([xv], [mu], marker=marker, ls="", color=col[m], markersize=9 if m == REFERENCE else 6,
                clip_on=False, zorder=3)
        text = f"{m} (FQ {fmt_value(fq)}, off the axis)" if below else m
        if below:
            off.append(m)
        points.append(Point(xv, mu, text, col[m]))
    ax.set_xscale("log")
    ax.set_xlim(lo, 1.0)
    handles.append(ax.axvline(threshold, color="#c0392b", ls="--", lw=1, label=f"{threshold:g}: TOFU's threshold"))
    ax.text(threshold, 1.005, f" p = {threshold:g}", transform=ax.get_xaxis_transform(), color="#c0392b",
            fontsize=8, ha="center", va="bottom")
    mus = [float(r["model_utility"][0]) for r in rows]
    if mus:
        pad = max(0.03 * (max(mus) - min(mus)), 0.005)
        ax.set_ylim(min(mus) - 3 * pad, max(mus) + 3 * pad)
    ax.set_xlabel("forget quality: KS p-value against the retain-only model (log, at most 1)")
    ax.set_ylabel("model utility")
    ax.set_title(title, fontsize=11, pad=16)
    ax.grid(alpha=0.3)
    if off:
        handles.append(Line2D([], [], marker="<", ls="", color="#555555",
                              label=f"below {fmt_value(lo)}: drawn at the edge, true value in the label"))
    place_labels(ax, points)
    _legend_below(ax, handles + _kind_handles([kind_of(r) for r in rows if r["method"] != BASELINE]), ncol=2)
    return fig


def dot_panels(summary: Sequence[dict[str, Any]], metrics: Sequence[str], labels: Sequence[str], *, title: str,
               chance: dict[str, float] | None = None, limits: tuple[float, float] | None = None) -> Figure:
    """One small panel per metric: a row per method (dots, intervals with several seeds), retrain's
    and the original's values as vertical lines, an optional chance level."""
    rows = list(summary)
    col = colours([r["method"] for r in rows])
    ncols = min(len(metrics), 4)
    nrows = math.ceil(len(metrics) / ncols)
    fig = new_figure(1.6 + 2.2 * ncols, nrows * (0.9 + 0.2 * len(rows)) + 0.6)
    axes = fig.subplots(nrows, ncols, squeeze=False, sharey=True)
    ys = np.arange(len(rows))[::-1]
    handles: dict[str, Any] = {}
    for k, (metric, label) in enumerate(zip(metrics, labels, strict=True)):
        ax = axes[k // ncols][k % ncols]
        values = []
        for yv, r in zip(ys, rows, strict=True):
            mean, half = r[metric]
            if not _finite(mean):
                ax.text(0.02, yv, "n/a", transform=ax.get_yaxis_transform(), fontsize=7, color="#999", va="center")
                continue
            values.append(float(mean))
            ax.errorbar(mean, yv, xerr=_err(half, int(r.get("n", 1))), fmt=MARKERS.get(kind_of(r), "o"),
                        color=col[r["method"]], markersize=6, capsize=0, elinewidth=0.9, zorder=3)
            if r["method"] in REF_STYLE:
                name = "retrain (exact reference)" if r["method"] == REFERENCE else "original (untouched)"
                handles[name] = ax.axvline(mean, **REF_STYLE[r["method"]], label=name, zorder=1)
        if chance and metric in chance:
            handles["chance"] = ax.axvline(chance[metric], color="#c0392b", lw=0.9, ls="-", alpha=0.5,
                                           label="chance", zorder=1)
            values.append(chance[metric])
        if limits:
            ax.set_xlim(*limits)
        elif values:
            lo, hi = min(values), max(values)
            pad = max(0.06 * (hi - lo), 0.01)
            ax.set_xlim(lo - pad, hi + pad)
        ax.set_title(label, fontsize=9)
        ax.grid(axis="x", alpha=0.3)
        ax.tick_params(labelsize=8)
        ax.set_ylim(-0.7, len(rows) - 0.3)
        if k % ncols == 0:
            ax.set_yticks(ys, [r["method"] for r in rows])
    for k in range(len(metrics), nrows * ncols):
        axes[k // ncols][k % ncols].set_visible(False)
    fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    kinds = _kind_handles([kind_of(r) for r in rows])
    fig.legend(handles=list(handles.values()) + kinds, loc="lower center", bbox_to_anchor=(0.5, -0.02 - 0.04 * nrows),
               ncol=4, fontsize=8, frameon=False)
    return fig


def roc_curves(curves: Sequence[tuple[str, np.ndarray, np.ndarray, str]], *, floor: float, title: str) -> Figure:
    """Log-log ROC curves, one per method (name, fpr, tpr, legend label), with chance and
    retrain drawn as references and the legend beside the axes, not over the curves.

    Zero rates cannot sit on a log axis: they are drawn at ``floor`` (half the smallest
    resolvable rate), which the axis label says.
    """
    col = colours([c[0] for c in curves])
    fig = new_figure(8.8, 4.6)
    ax = fig.add_subplot(1, 1, 1)
    ax.plot([floor, 1.0], [floor, 1.0], color="#c0392b", ls="--", lw=1, label="chance (TPR = FPR)")
    for name, fpr, tpr, label in curves:
        style = dict(color="#111111", lw=2.2, ls="--") if name == REFERENCE else \
            dict(color=col[name], lw=1.4, ls=":" if name == BASELINE else "-")
        ax.plot(np.maximum(fpr, floor), np.maximum(tpr, floor), label=label, **style)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlim(floor, 1.0)
    ax.set_ylim(floor, 1.0)
    ax.set_aspect("equal")
    ax.set_xlabel(f"false positive rate (log; 0 drawn at {floor:.0e})", fontsize=9)
    ax.set_ylabel("true positive rate (log)", fontsize=9)
    ax.set_title(title, fontsize=10)
    ax.grid(True, which="major", alpha=0.3)
    ax.legend(loc="upper left", bbox_to_anchor=(1.03, 1.0), fontsize=8, frameon=False)
    return fig


# --------------------------------------------------------------------------- kept for older callers


def scatter_tradeoff(summary: Sequence[dict[str, Any]], x: str, y: str, *, xlabel: str, ylabel: str,
                     title: str, logx: bool = True) -> Figure:
    """Deprecated name of :func:`tradeoff_scatter` (always a log x axis)."""
    return tradeoff_scatter(summary, x=x, y=y, xlabel=xlabel, ylabel=ylabel, title=title)


def grouped_bars(summary: Sequence[dict[str, Any]], metrics: Sequence[str], labels: Sequence[str],
                 *, title: str, ylabel: str = "") -> Figure:
    """Deprecated: bars per method became one dot panel per metric (:func:`dot_panels`)."""
    return dot_panels(summary, metrics, labels, title=title)
