import json

import numpy as np
import pytest
import torch
from torch import nn

import obliviate
from obliviate.errors import ConfigError, DataError, ForgetSetError
from obliviate.training import Recipe, train_classifier


@pytest.fixture(scope="module")
def trained(digits):
    model = nn.Sequential(nn.Flatten(), nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 10))
    recipe = Recipe(epochs=15, batch_size=64, lr=3e-3)
    train_classifier(model, digits.train, recipe, seed=0)
    return model, recipe


def test_forget_with_audit_moves_toward_retrain(trained, digits):
    model, recipe = trained
    before = [p.clone() for p in model.parameters()]
    res = obliviate.forget(model, train=digits.train, forget="class:3", method="graddiff", test=digits.test,
                           audit=True, recipe=recipe,
                           method_config={"epochs": 10, "lr": 1e-3, "forget_weight": 1.0, "schedule": "constant"})
    for p, q in zip(model.parameters(), before, strict=True):
        assert torch.equal(p, q), "the user's model must not be modified"
    m = res.metrics
    assert set(m) == {"original", "retrain", "graddiff"}
    assert m["retrain"]["tow"] == 1.0
    assert m["graddiff"]["tow"] > m["original"]["tow"]
    assert m["graddiff"]["forget_acc"] < 0.5 * m["original"]["forget_acc"]
    assert res.retrain_s > 0 and res.record.wall_s > 0
    assert "| graddiff |" in res.to_markdown() and "time ratio" in res.to_markdown()
    assert json.loads(res.to_json())["metrics"]["graddiff"]["tow"] == pytest.approx(m["graddiff"]["tow"])


def test_forget_by_ids_and_arrays_without_audit(trained, digits, tmp_path):
    model, _ = trained
    x, y = digits.train.x, digits.train.y
    res = obliviate.forget(model, train=(x, y), forget=[0, 5, 9], method="finetune",
                           method_config={"epochs": 0.2})
    assert res.n_forget == 3 and res.metrics == {}
    paths = res.save(tmp_path / "out")
    assert (paths["model"] / "model.safetensors").exists()
    assert "No audit" in paths["markdown"].read_text()


def test_forget_bad_inputs(trained, digits):
    model, _ = trained
    with pytest.raises(ForgetSetError, match="not in"):
        obliviate.forget(model, train=digits.train, forget=["nope"])
    with pytest.raises(DataError, match="tuple"):
        obliviate.forget(model, train="train.csv", forget="random:0.1")
    with pytest.raises(DataError, match="mask"):
        obliviate.forget(model, train=digits.train, forget=np.zeros(3, dtype=bool))
    with pytest.raises(ConfigError, match="test data"):
        obliviate.forget(model, train=digits.train, forget="class:1", method="finetune",
                         method_config={"epochs": 0.1}, audit=True)
    with pytest.raises(ConfigError, match="nn.Module"):
        obliviate.forget(object(), train=digits.train, forget="class:1")
    with pytest.raises(ForgetSetError, match="whole training set"):
        obliviate.forget(model, train=digits.train, forget=np.ones(len(digits.train), dtype=bool))


def test_forget_leaves_the_callers_rng_alone_and_takes_a_request(trained, digits):
    from obliviate.data.request import ForgetRequest

    model, _ = trained
    torch.manual_seed(1234)
    expected = torch.rand(3)
    torch.manual_seed(1234)
    res = obliviate.forget(model, train=digits.train, forget=ForgetRequest(classes=["3"]), method="random_label",
                           method_config={"epochs": 1})
    assert torch.equal(torch.rand(3), expected), "obliviate.forget must not reseed the caller's generator"
    assert res.n_forget == int((digits.train.y == 3).sum())
    again = obliviate.forget(model, train=digits.train, forget={"classes": ["3"]}, method="random_label",
                             method_config={"epochs": 1})
    assert all(torch.equal(a, b) for a, b in zip(res.model.parameters(), again.model.parameters(), strict=True))
    assert "forgot" not in res.to_markdown() and "approximate" in res.to_markdown()
