"""Aggregate per-seed records into per-method summaries (mean and 95% interval)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from obliviate.audit.metrics import mean_ci


def summarise(records: Sequence[dict[str, Any]], metrics: Sequence[str]) -> list[dict[str, Any]]:
    """One row per method (in first-seen order): ``{metric: (mean, half_width)}``, plus ``n``."""
    order: dict[str, list[dict[str, Any]]] = {}
    for r in records:
        order.setdefault(r["method"], []).append(r)
    rows = []
    for method, recs in order.items():
        row: dict[str, Any] = {"method": method, "n": len(recs), "kind": recs[0].get("kind", "")}
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
