"""Conformance suite for language-model removal methods (every method with "lm" in its tasks).

Setting: the tiny persons model of ``conftest.py`` (6 people, one forgotten), where the
original answers every training question and the retain-only model gives the forget
answers low probability. A method passes when the forget answers' mean
length-normalised probability moves at least half way from the original's to the
retain-only model's, while the retain answers' probability drops by at most 0.15.
Method defaults are the papers' (billion-parameter models); each method gets
small-model settings here. A new LM method adds one line.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

import obliviate.removal  # noqa: F401  (registers)
from obliviate.audit.lm_eval import token_logprobs
from obliviate.errors import ConfigError
from obliviate.removal import METHODS, Budget, UnlearningTask
from obliviate.removal.base import methods_for
from obliviate.removal.lm_objective import CausalLMObjective
from obliviate.training.lm import encode_dataset

SMALL_MODEL = {
    "gradient_ascent": {"epochs": 2, "lr": 1.2e-3, "batch_size": 8},
    "graddiff": {"epochs": 6, "lr": 2e-3, "batch_size": 8},
    "kl": {"epochs": 4, "lr": 1.2e-3, "batch_size": 8},
    "finetune": {"epochs": 8, "lr": 1e-2, "batch_size": 16},
    "npo": {"epochs": 3, "lr": 5e-4, "batch_size": 8},
    "simnpo": {"epochs": 4, "lr": 2e-3, "batch_size": 8},
    "idk": {"epochs": 8, "lr": 1e-3, "batch_size": 8, "retain_weight": 3.0},
    "whp": {"epochs": 6, "lr": 1e-3, "batch_size": 8, "reinforce_epochs": 2, "alpha": 20, "retain_weight": 1.0},
    "lm_layer_reset": {"epochs": 6, "lr": 6e-3, "batch_size": 16},
    # RMU: the same method as for classifiers, at a named transformer block
    "rmu": {"layer": "transformer.h.0", "steering_coeff": 15, "alpha": 20, "lr": 2e-3, "epochs": 8, "batch_size": 8},
}
MIN_GAP_CLOSED = 0.5
MAX_RETAIN_DROP = 0.15

LM_METHODS = methods_for("lm")


def _prob(model, fmt, data) -> float:
    lps = token_logprobs(model, encode_dataset(fmt, data), pad_id=fmt.pad_id)
    return float(np.mean([np.exp(lp.mean()) for lp in lps]))


def _task(setup, seed: int = 0) -> UnlearningTask:
    return UnlearningTask(forget=setup["forget"], retain=setup["retain"], objective=CausalLMObjective(setup["fmt"]),
                          recipe=setup["recipe"], seed=seed)


@pytest.fixture(scope="module")
def baseline(tiny_lm):
    fmt = tiny_lm["fmt"]
    return {"forget": _prob(tiny_lm["original"], fmt, tiny_lm["forget"]),
            "retain": _prob(tiny_lm["original"], fmt, tiny_lm["retain"]),
            "forget_ref": _prob(tiny_lm["retained"], fmt, tiny_lm["forget"])}


def test_every_lm_method_has_small_model_settings():
    assert {"gradient_ascent", "graddiff", "kl", "finetune", "npo", "simnpo", "idk", "whp",
            "lm_layer_reset", "rmu"} <= set(LM_METHODS)
    assert set(LM_METHODS) <= set(SMALL_MODEL), "add the new method to SMALL_MODEL"


@pytest.mark.parametrize("name", LM_METHODS)
def test_lm_method_moves_forget_toward_retain_only_and_keeps_retain(name, tiny_lm, baseline):
    fmt, original = tiny_lm["fmt"], tiny_lm["original"]
    before = {k: v.clone() for k, v in original.state_dict().items()}
    method = METHODS.get(name)(**SMALL_MODEL[name])
    unlearned, record = method.unlearn(original, _task(tiny_lm))

    f0, r0, f_ref = baseline["forget"], baseline["retain"], baseline["forget_ref"]
    assert f0 - f_ref > 0.5, "the setting must have a gap to close"
    f1, r1 = _prob(unlearned, fmt, tiny_lm["forget"]), _prob(unlearned, fmt, tiny_lm["retain"])
    closed = (f0 - f1) / (f0 - f_ref)
    assert closed >= MIN_GAP_CLOSED, f"{name} closed only {closed:.2f} of the forget-probability gap"
    assert r1 >= r0 - MAX_RETAIN_DROP, f"{name} dropped retain probability from {r0:.3f} to {r1:.3f}"
    for k, v in original.state_dict().items():
        assert torch.equal(v, before[k]), f"{name} modified the original model ({k})"
    assert record.method == name and record.steps > 0 and record.wall_s > 0
    assert record.config == method.config.to_dict()


@pytest.mark.parametrize("name", LM_METHODS)
def test_lm_method_is_deterministic_under_seed(name, tiny_lm):
    method = METHODS.get(name)(**SMALL_MODEL[name])
    runs = [method.unlearn(tiny_lm["original"], _task(tiny_lm), budget=Budget(max_steps=3))[0] for _ in range(2)]
    a, b = (r.state_dict() for r in runs)
    assert all(torch.equal(a[k], b[k]) for k in a), f"{name} is not deterministic under a fixed seed"


@pytest.mark.parametrize("name", [m for m in LM_METHODS if METHODS.get(m).tasks == ("lm",)])
def test_lm_only_methods_refuse_classifier_objectives(name, digits):
    from obliviate.models import ModelSpec, build_model
    from obliviate.removal import ClassificationObjective
    from obliviate.training.recipe import Recipe

    model = build_model(ModelSpec("mlp", {"hidden": [8]}), digits.train.input_shape, 10, seed=0)
    task = UnlearningTask(forget=digits.train, retain=digits.train, objective=ClassificationObjective(10),
                          recipe=Recipe(), seed=0)
    with pytest.raises(ConfigError, match="CausalLMObjective"):
        METHODS.get(name)().unlearn(model, task, budget=Budget(max_steps=1))


def test_rmu_auto_layer_is_a_quarter_deep_and_masks_padding(tiny_lm):
    from obliviate.removal.approximate.rmu import activation_mse, resolve_layer

    name, _ = resolve_layer(tiny_lm["original"], "auto")
    assert name == f"transformer.h.{tiny_lm['original'].config.n_layer // 4}"
    h = torch.zeros(1, 3, 2)
    h[0, 2] = 5.0                                  # a padding position far from the target
    batch = {"attention_mask": torch.tensor([[1, 1, 0]])}
    assert float(activation_mse(h, torch.zeros(2), batch)) == 0.0
    assert float(activation_mse(h, torch.zeros(2), {})) == pytest.approx(25.0 / 3)
