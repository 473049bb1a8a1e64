"""Reporters: render result objects as JSON, Markdown and HTML with plots.

:mod:`~obliviate.report.layout` is the one layout every report shares (summary, tables,
plots, configuration and environment; jinja2 templates in ``templates/``);
:mod:`~obliviate.report.classifier` and :mod:`~obliviate.report.lm` build its sections from a
bench result, :mod:`~obliviate.report.audit` the strong-audit section, and
:mod:`~obliviate.report.plots` draws the figures.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

from obliviate.errors import ConfigError

# Which module renders a task's results; a new task adds one line.
PROVIDERS = {"classification": "obliviate.report.classifier", "persons": "obliviate.report.lm",
             "tofu": "obliviate.report.lm"}


def provider(result: Any) -> Any:
    """The report module for ``result``'s task (``meta["task"]``, else ``config["task"]``)."""
    task = (result.meta or {}).get("task") or (result.config or {}).get("task") or "classification"
    if task not in PROVIDERS:
        raise ConfigError(f"No reporter for task {task!r}; known tasks: {', '.join(sorted(PROVIDERS))}.")
    return importlib.import_module(PROVIDERS[task])


def write_reports(result: Any, out: str | Path) -> dict[str, Path]:
    """results.json, config.json, meta.json, report.md and report.html for a result of any task."""
    return provider(result).write_reports(result, out)


def to_markdown(result: Any) -> str:
    """The Markdown report of a result of any task."""
    return provider(result).to_markdown(result)


def summary_markdown(result: Any) -> str:
    """The summary and tables of a result of any task (what the terminal shows)."""
    return provider(result).summary_markdown(result)
