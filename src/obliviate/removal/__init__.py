"""Removal methods behind one protocol: ``method.unlearn(model, task, budget=...)``.

Importing this package registers every built-in method in :data:`METHODS`.
"""

from obliviate.removal.base import (METHODS, Budget, MethodConfig, RemovalMethod, RemovalRecord, UnlearningTask,
                                    get_method, register)
from obliviate.removal.objective import ClassificationObjective, Objective
from obliviate.removal import exact as _exact  # noqa: F401  (registers)
from obliviate.removal import approximate as _approximate  # noqa: F401  (registers)

__all__ = [
    "METHODS",
    "Budget",
    "ClassificationObjective",
    "MethodConfig",
    "Objective",
    "RemovalMethod",
    "RemovalRecord",
    "UnlearningTask",
    "get_method",
    "register",
]
