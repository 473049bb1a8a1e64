"""Tasks: what the model is, how it is trained, how its data splits, how a method is scored.

``TASKS`` maps a task name (``obliviate bench --task NAME``) to its :class:`Task`
class; the modules are imported on first lookup, so naming a task costs nothing
until it runs. Adding a task: one module with a config, a ``Task`` and a
``SeedRun`` (see :mod:`obliviate.tasks.base`), and one line below.
"""

from __future__ import annotations

from typing import Any

from obliviate.config import validate
from obliviate.registry import Registry
from obliviate.tasks.base import BASELINE, REFERENCE, RunConfig, SeedRun, Task

TASKS: Registry[type[Task]] = Registry("bench task")
TASKS.register_lazy("classification", "obliviate.tasks.classification")
TASKS.register_lazy("persons", "obliviate.tasks.causal_lm")
TASKS.register_lazy("tofu", "obliviate.tasks.causal_lm")


def config_for(data: dict[str, Any], *, source: str = "bench configuration") -> RunConfig:
    """Validate a run's configuration (a dict from flags and files) against its task's config class."""
    import obliviate.removal  # noqa: F401  (registers the methods a preflight resolves)

    task_cls = TASKS.get(str(data.get("task", "classification")))
    return validate(task_cls.Config, data, source=source)


__all__ = ["BASELINE", "REFERENCE", "TASKS", "RunConfig", "SeedRun", "Task", "config_for"]
