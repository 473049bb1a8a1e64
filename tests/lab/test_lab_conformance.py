"""Every registered experiment, at its quick size, keeps the lab's contract (new ones are checked too)."""

import dataclasses
import json
import re

import pytest

from obliviate.lab import EXPERIMENTS, KINDS, ExperimentResult


@pytest.mark.parametrize("name", EXPERIMENTS.names())
def test_experiment_keeps_the_contract(name, quick):
    exp = EXPERIMENTS.get(name)
    assert dataclasses.is_dataclass(exp.Config) and exp.quick, "a config dataclass and a quick size"
    r = quick(name)
    assert isinstance(r, ExperimentResult) and r.name == name
    assert r.config == dataclasses.asdict(exp.config(quick=True)), "the resolved config is saved with the result"
    assert r.seconds > 0
    assert r.kind and set(r.kind.values()) <= set(KINDS)
    assert all(row["kind"] in KINDS for row in r.rows)
    assert re.search(r"\d", r.claim) and r.claim.strip().endswith("."), "one sentence, with numbers"
    figure = r.figure if isinstance(r.figure, bytes) else open(r.figure, "rb").read()
    assert figure[:8] == b"\x89PNG\r\n\x1a\n"
    json.dumps(r.to_dict(), allow_nan=False)
