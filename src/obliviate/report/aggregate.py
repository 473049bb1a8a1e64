"""Aggregate per-seed records into per-method summaries (mean and 95% interval)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from obliviate.audit.metrics import mean_ci


def summarise(records: Sequence[dict[str, Any]], metrics: Sequence[str]) -> list[dict[str, Any]]:
    """One row per (method, tuned) pair in first-seen order: ``{metric: (mean, half_width)}``, plus ``n``.

    A method run at its defaults and tuned (``bench --tune``: rows with ``tuned`` true) gives two
    rows; ``row["tuned"]`` tells them apart and :func:`label` names them.
    """
    order: dict[tuple[str, bool], list[dict[str, Any]]] = {}
    for r in records:
        order.setdefault((r["method"], bool(r.get("tuned", False))), []).append(r)
    rows = []
    for (method, tuned), recs in order.items():
        row: dict[str, Any] = {"method": method, "tuned": tuned, "n": len(recs), "kind": recs[0].get("kind", "")}
        for m in metrics:
            vals = np.array([r.get(m, np.nan) for r in recs], dtype=float)
            row[m] = mean_ci(vals)
        rows.append(row)
    return rows


def fmt(value: tuple[float, float], digits: int = 3) -> str:
    mean, half = value
    if not np.isfinite(mean):
        return "n/a"
    if not np.isfinite(half):
        return f"{mean:.{digits}f}"
    return f"{mean:.{digits}f} ± {half:.{digits}f}"


def label(row: dict[str, Any]) -> str:
    """A summary row's display name: the method, with " (tuned)" for an oracle-free tuned row."""
    return f"{row['method']} (tuned)" if row.get("tuned") else str(row["method"])
