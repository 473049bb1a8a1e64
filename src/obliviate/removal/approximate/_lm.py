"""Helpers for the language-model-only methods (npo, simnpo, idk, whp, lm_layer_reset)."""

from __future__ import annotations

from obliviate.errors import ConfigError
from obliviate.removal.base import UnlearningTask
from obliviate.removal.lm_objective import CausalLMObjective


def require_lm(task: UnlearningTask, method: str) -> CausalLMObjective:
    """The task's objective, if it is a causal LM's; otherwise a ConfigError saying why."""
    if not isinstance(task.objective, CausalLMObjective):
        raise ConfigError(
            f"method {method!r} works on answer sequences of a causal language model (a "
            f"CausalLMObjective); this task's objective is {type(task.objective).__name__}. "
            "Use it with 'obliviate bench --task persons' or 'tofu', or pick a classifier method."
        )
    return task.objective
