"""Every registered attack: runs on small synthetic arrays, chance looks like chance, a shift either way is caught."""

from __future__ import annotations

import json
from dataclasses import MISSING, fields

import numpy as np
import pytest

from obliviate.audit.attacks import (ATTACKS, AttackInput, GroupScores, RelearnAccuracies, Thresholds,
                                     attack_names, parse_attacks)
from obliviate.audit.attacks.population import replicas_loss_auc
from obliviate.audit.verdicts import method_verdict
from obliviate.errors import ConfigError

N_MODELS, N_FORGET, N_TEST = 8, 100, 60
OFFSETS = np.random.default_rng(99).normal(0, 2.0, size=N_FORGET)  # per-example difficulty, shared by all groups


def _group(rng: np.random.Generator, shift: float) -> GroupScores:
    """N models' logit-scaled confidences: forget examples shifted by ``shift`` from unseen ones."""
    forget = OFFSETS[None, :] + shift + rng.normal(size=(N_MODELS, N_FORGET))
    test = rng.normal(size=(N_MODELS, N_TEST))
    retain = 0.5 + rng.normal(size=(N_MODELS, N_TEST))
    acc = np.full(N_MODELS, 0.9)
    return GroupScores(forget=forget, test=test, forget_acc=acc, retain_acc=acc, test_acc=acc, retain=retain)


def _relearn(rng: np.random.Generator, gap: float) -> RelearnAccuracies:
    cb = np.full(N_MODELS, 0.3)
    ca = 0.5 + rng.normal(0, 0.01, N_MODELS)
    return RelearnAccuracies(before=cb.copy(), after=np.clip(ca + gap + rng.normal(0, 0.01, N_MODELS), 0, 1),
                             control_before=cb, control_after=ca, steps=5, lr=1e-3, relearn_examples=20,
                             held_back_examples=20)


def _inputs(kind: str, seed: int = 0) -> AttackInput:
    """``chance``: the method's models look retrained; ``separable``/``reversed``: shifted up/down by 3."""
    rng = np.random.default_rng(seed)
    shift = {"chance": 0.0, "separable": 3.0, "reversed": -3.0}[kind]
    trained, retrained = _group(rng, 3.0), _group(rng, 0.0)
    target = _group(rng, shift)
    gap = {"chance": 0.0, "separable": 0.3, "reversed": -0.3}[kind]
    return AttackInput(method=kind, seed=seed, run_row={"mia_auc": replicas_loss_auc(target)}, target=target,
                       trained=trained, retrained=retrained, relearn=_relearn(rng, gap))


@pytest.fixture(scope="module")
def reference_inputs() -> AttackInput:
    return _inputs("chance", seed=1)  # the retrain oracle: other retrained models


@pytest.mark.parametrize("name", attack_names())
def test_attack_declares_what_the_registry_promises(name):
    cls = ATTACKS.get(name)
    assert cls.name == name and cls.paper and cls.strength in ("weak", "strong")
    cfg = cls.Config()
    assert set(cfg.to_dict()) == {f.name for f in fields(cls.Config)}
    assert all(f.default is not MISSING for f in fields(cls.Config))  # every parameter has a default
    assert isinstance(cls.threshold_text(Thresholds()), str)
    with pytest.raises(ConfigError, match="not a parameter"):
        cls(no_such_parameter=1)


@pytest.mark.parametrize("name", attack_names())
def test_chance_passes_and_a_shift_either_way_is_caught(name, reference_inputs):
    attack = ATTACKS.get(name)()
    th = Thresholds()
    ref = attack.run(reference_inputs)
    verdicts = {}
    for kind in ("chance", "separable", "reversed"):
        result = attack.run(_inputs(kind))
        assert isinstance(result, dict) and result
        json.dumps(result)  # audit.json-ready
        verdicts[kind] = attack.verdict(result, ref, th)
        assert attack.passes(result, ref, th) is (verdicts[kind] is None)
        row = method_verdict({name: attack}, {name: result}, {name: ref}, th)
        assert set(row) >= {"weak_passes", "caught_by", "caught_text", "flagged"}
    assert verdicts["chance"] is None, verdicts["chance"]
    assert isinstance(verdicts["separable"], str) and verdicts["separable"]
    assert isinstance(verdicts["reversed"], str) and verdicts["reversed"]


def test_parse_attacks_uses_the_registry():
    assert parse_attacks("all") == tuple(attack_names())
    assert parse_attacks("relearn, lira") == ("relearn", "lira")
    with pytest.raises(ConfigError, match="did you mean 'ulira'"):
        parse_attacks("ulria")
    with pytest.raises(ConfigError, match="No attack selected"):
        parse_attacks(" , ")


def test_attack_config_typos_get_the_nearest_name():
    with pytest.raises(ConfigError, match="did you mean 'repeats'"):
        ATTACKS.get("ulira")(repeat=3)
    assert ATTACKS.get("ulira")(repeats=3).config.repeats == 3
