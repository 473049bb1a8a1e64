"""Guarded generation for a deployment: its guards, fitted on the content of its completed requests.

Suppression only: the guards filter what the generator says; the generator's weights are unchanged.
The protected set is compiled over the deployment's persons corpus (its settings: ``n_people``,
``forget_fraction``, ``seed``, ``pipeline``) from every completed request's ids and subjects.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from obliviate.data.request import ForgetRequest
from obliviate.policy import Deployment, PolicyRequest


def guarded_generator(dep: Deployment, generate: Callable[[str], str], requests: Sequence[PolicyRequest]) -> Any:
    """A GuardedGenerator around ``generate`` for ``dep`` (no guard to fit: a pass-through)."""
    from obliviate.data.persons import make_persons_corpus
    from obliviate.suppression import GuardedGenerator, compile_persons
    from obliviate.suppression.evaluate import PIPELINES
    from obliviate.suppression.pipeline import pipeline

    if not requests:
        return GuardedGenerator(generate, [])
    s = dep.settings
    corpus = make_persons_corpus(int(s.get("n_people", 20)), float(s.get("forget_fraction", 0.1)),
                                 seed=int(s.get("seed", 0)))
    merged = ForgetRequest(ids=tuple(i for r in requests for i in r.what.ids),
                           subjects=tuple(x for r in requests for x in r.what.subjects), source="service")
    protected = compile_persons(merged, corpus)
    spec = PIPELINES[str(s.get("pipeline", "lexical"))]
    return pipeline([(g, stage) for g, stage, _ in spec], protected, generator=generate,
                    config={g: o for g, _, o in spec if o})


__all__ = ["guarded_generator"]
