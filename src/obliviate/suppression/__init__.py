"""Suppression: keep protected content out of a system's *outputs* with guards around the model.

A forget request compiles into a :class:`ProtectedSet` (:func:`compile_request`);
guards registered in :data:`GUARDS` detect protected content in prompts and
outputs; a :class:`GuardedGenerator` wraps any generator (a Hugging Face causal LM,
obliviate's LM tasks, a plain callable) and applies each guard's on-fail action.

Suppression is not removal: the model's weights still hold everything a guard keeps
out of its outputs. Every result here is labelled ``suppression``.

>>> from obliviate.suppression import compile_request, GuardedGenerator, GuardSpec, GUARDS
"""

from obliviate.suppression import guards as _guards  # noqa: F401  (registers the guards)
from obliviate.suppression.base import GUARDS, KIND, Decision, Guard, GuardContext, GuardSpec, OnFail
from obliviate.suppression.generators import (CallableGenerator, Generator, HFGenerator, QAGenerator,
                                              ReplayGenerator, as_generator)
from obliviate.suppression.pipeline import GuardedGenerator, GuardedOutput, pipeline
from obliviate.suppression.protect import ProtectedFact, ProtectedSet, compile_persons, compile_request

__all__ = ["GUARDS", "KIND", "Decision", "Guard", "GuardContext", "GuardSpec", "OnFail", "Generator",
           "CallableGenerator", "HFGenerator", "QAGenerator", "ReplayGenerator", "as_generator",
           "GuardedGenerator", "GuardedOutput", "pipeline", "ProtectedFact", "ProtectedSet", "compile_request",
           "compile_persons"]
