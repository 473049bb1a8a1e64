"""Matplotlib figures for reports (Agg backend, returned as figures or PNG bytes)."""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402


def to_png(fig: Figure) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    return buf.getvalue()


def scatter_tradeoff(summary: Sequence[dict[str, Any]], x: str, y: str, *, xlabel: str, ylabel: str,
                     title: str, logx: bool = False) -> Figure:
    """One point per method with 95% interval error bars (e.g. ToW against time ratio)."""
    fig, ax = plt.subplots(figsize=(6.4, 4.4))
    for row in summary:
        (mx, hx), (my, hy) = row[x], row[y]
        if not (np.isfinite(mx) and np.isfinite(my)):
            continue
        if logx and mx <= 0:
            continue
        ax.errorbar(mx, my, xerr=hx if np.isfinite(hx) else None, yerr=hy if np.isfinite(hy) else None,
                    fmt="o", capsize=3)
        ax.annotate(row["method"], (mx, my), textcoords="offset points", xytext=(5, 4), fontsize=8)
    if logx:
        ax.set_xscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    return fig


def grouped_bars(summary: Sequence[dict[str, Any]], metrics: Sequence[str], labels: Sequence[str],
                 *, title: str, ylabel: str) -> Figure:
    """Bars per method for several metrics side by side, with 95% interval whiskers."""
    fig, ax = plt.subplots(figsize=(max(6.4, 0.9 * len(summary) + 2), 4.2))
    width = 0.8 / max(1, len(metrics))
    xs = np.arange(len(summary))
    for i, (m, lab) in enumerate(zip(metrics, labels, strict=True)):
        means = [row[m][0] for row in summary]
        errs = [row[m][1] if np.isfinite(row[m][1]) else 0.0 for row in summary]
        ax.bar(xs + i * width - 0.4 + width / 2, means, width, yerr=errs, capsize=2, label=lab)
    ax.set_xticks(xs, [row["method"] for row in summary], rotation=30, ha="right")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.legend(fontsize=8)
    ax.grid(axis="y", alpha=0.3)
    return fig
