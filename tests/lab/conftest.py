"""Each experiment's quick run, computed once per session and shared by its tests and the conformance test."""

from __future__ import annotations

import pytest

_RESULTS: dict[str, object] = {}


def quick_result(name: str):
    from obliviate.lab import EXPERIMENTS

    if name not in _RESULTS:
        _RESULTS[name] = EXPERIMENTS.get(name)(quick=True)
    return _RESULTS[name]


@pytest.fixture(scope="session")
def quick():
    return quick_result
