"""Conformance suite: every registered classifier method must pass these checks.

Setting: digits, an MLP, class 3 forgotten. The original predicts class 3 well and
the retrained model never does, so there is a large, unambiguous gap to close.
Defaults are sized for datasets of tens of thousands of examples; here the forget
set has ~145 examples (2 minibatches), so each method gets small-data settings
below. A new method adds one line here.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

import obliviate.removal  # noqa: F401
from obliviate.audit.metrics import accuracy
from obliviate.removal import METHODS, Budget, ClassificationObjective, UnlearningTask
from obliviate.removal.base import methods_for
from obliviate.training import train_cached
from obliviate.training.trainer import predict_logits

SMALL_DATA = {
    "retrain": {},
    "finetune": {"epochs": 3, "lr": 3e-3, "schedule": "constant"},
    "gradient_ascent": {"epochs": 5, "lr": 1e-3, "schedule": "constant"},
    "graddiff": {"epochs": 10, "lr": 1e-3, "forget_weight": 1.0, "schedule": "constant"},
    "kl": {"epochs": 10, "lr": 1e-3, "forget_weight": 1.0, "schedule": "constant"},
    "random_label": {"epochs": 5, "lr": 1e-3, "schedule": "constant"},
    "l1_sparse": {},
    "prune_finetune": {"epochs": 3},
    "layer_reset": {"epochs": 5},
    "noise": {},
    "ssd": {},
    "scrub": {"lr": 1e-2},
    "salun": {},
    "boundary_shrink": {"lr": 1e-3, "bound": 0.8},   # digits are 8x8 with 17 grey levels: 0.1 pixel flips only half; 0.2 pixel = 0.8 std
    "amun": {},
    "aru": {"epochs": 3},
    "rmu": {"lr": 3e-3, "epochs": 10, "batch_size": 32, "alpha": 1.0, "steering_coeff": 10.0},  # c ~ activation norm
}
# Methods that cannot close half the class-3 gap with honest settings, and why (reported, not hidden).
KNOWN_GAPS = {
    "amun": "AMUN keeps forget examples at their true labels; it targets random subsets, not whole classes",
}
MIN_GAP_CLOSED = 0.5      # forget accuracy must move at least half way to retrain's
MAX_RETAIN_DROP = 0.10    # retain accuracy may fall at most 10 points below the original's

CLASSIFIER_METHODS = methods_for("classification")


def _task(setup):
    split, recipe, spec = setup["split"], setup["recipe"], setup["spec"]

    def fit(data):
        tm = train_cached(spec, data, recipe, seed=0, n_classes=10)
        return tm.model, tm.wall_s, {"steps": tm.manifest["steps"]}

    return UnlearningTask(forget=split.forget, retain=split.retain, objective=ClassificationObjective(10),
                          recipe=recipe, seed=0, fit_from_scratch=fit)


def _acc(model, data):
    return accuracy(predict_logits(model, data.x), data.y)


def test_every_method_has_small_data_settings():
    assert set(CLASSIFIER_METHODS) <= set(SMALL_DATA), "add the new method to SMALL_DATA"


@pytest.mark.parametrize("name", [pytest.param(m, marks=pytest.mark.xfail(reason=KNOWN_GAPS[m], strict=True))
                                  if m in KNOWN_GAPS else m for m in CLASSIFIER_METHODS])
def test_method_moves_forget_toward_retrain_and_keeps_retain(name, digits_class_setup):
    setup = digits_class_setup
    original, split = setup["original"].model, setup["split"]
    before = {k: v.clone() for k, v in original.state_dict().items()}
    method = METHODS.get(name)(**SMALL_DATA[name])
    unlearned, record = method.unlearn(original, _task(setup))

    f0, r0 = _acc(original, split.forget), _acc(original, split.retain)
    f_ref = _acc(setup["retrained"].model, split.forget)
    f1, r1 = _acc(unlearned, split.forget), _acc(unlearned, split.retain)
    assert f0 - f_ref > 0.5, "the setting must have a gap to close"
    closed = (f0 - f1) / (f0 - f_ref)
    assert closed >= MIN_GAP_CLOSED, f"{name} closed only {closed:.2f} of the forget-accuracy gap"
    assert r1 >= r0 - MAX_RETAIN_DROP, f"{name} dropped retain accuracy from {r0:.3f} to {r1:.3f}"

    # the original is untouched; the record says what happened
    for k, v in original.state_dict().items():
        assert torch.equal(v, before[k]), f"{name} modified the original model ({k})"
    assert record.method == name and record.wall_s > 0 and record.steps > 0
    assert record.config == method.config.to_dict()


@pytest.mark.parametrize("name", CLASSIFIER_METHODS)
def test_method_is_deterministic_under_seed(name, digits_class_setup):
    setup = digits_class_setup
    a, _ = METHODS.get(name)(**SMALL_DATA[name]).unlearn(setup["original"].model, _task(setup))
    b, _ = METHODS.get(name)(**SMALL_DATA[name]).unlearn(setup["original"].model, _task(setup))
    for k, v in a.state_dict().items():
        assert torch.equal(v, b.state_dict()[k]), f"{name}: {k} differs between identical runs"


@pytest.mark.parametrize("name", [m for m in CLASSIFIER_METHODS if m != "retrain"])
def test_budget_caps_steps(name, digits_class_setup):
    setup = digits_class_setup
    _, record = METHODS.get(name)(**SMALL_DATA[name]).unlearn(setup["original"].model, _task(setup),
                                                               budget=Budget(max_steps=3))
    assert record.steps == 3 and record.stopped_by == "max_steps"


def test_methods_differ_from_each_other(digits_class_setup):
    """No two methods may be one algorithm under two names: their outputs must differ."""
    setup = digits_class_setup
    names = [m for m in CLASSIFIER_METHODS if m != "retrain"]
    common = {"epochs": 2, "lr": 1e-3}
    outs = {}
    for name in names:
        fields = {f.name for f in dataclasses.fields(METHODS.get(name).Config)}  # ssd has no epochs/lr
        model, _ = METHODS.get(name)(**{k: v for k, v in common.items() if k in fields}).unlearn(
            setup["original"].model, _task(setup))
        outs[name] = predict_logits(model, setup["split"].forget.x)
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            assert not np.allclose(outs[a], outs[b], atol=1e-6), f"{a} and {b} produce the same model"


def test_unknown_config_key_names_nearest():
    from obliviate.errors import ConfigError

    with pytest.raises(ConfigError, match="did you mean 'lr'"):
        METHODS.get("graddiff")(lrr=1.0)
