"""Attack sizes follow the features' scale (issue 17).

On standardised table columns the image-pixel radius meant something else; the adversarial
methods now measure radii in each feature's standard deviation. Setting: sklearn's breast
cancer table (569 rows, 30 numeric columns), standardised, an MLP, a random 10% forget set.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from obliviate.data import split_forget
from obliviate.data.dataset import ArrayDataset
from obliviate.models import ModelSpec
from obliviate.removal import METHODS, ClassificationObjective, UnlearningTask
from obliviate.removal.approximate import boundary_shrink
from obliviate.removal.approximate._adversarial import feature_scale, pgd
from obliviate.tasks.classification import RecipeConfig
from obliviate.training import train_cached
from obliviate.training.trainer import predict_logits


def _table(scale: np.ndarray | float = 1.0):
    from sklearn.datasets import load_breast_cancer

    x, y = load_breast_cancer(return_X_y=True)
    rng = np.random.default_rng(0)
    order = rng.permutation(len(y))
    x, y = x[order], y[order]
    n_test = 170
    mu, sd = x[n_test:].mean(0), x[n_test:].std(0)
    x = ((x - mu) / sd * scale).astype(np.float32)
    make = lambda s, name: ArrayDataset(x=x[s], y=y[s], ids=np.array([f"r{i}" for i in order[s]]), name=name)  # noqa: E731
    return make(slice(n_test, None), "train"), make(slice(0, n_test), "test")


@pytest.fixture(scope="module")
def table_setup():
    train, test = _table()
    recipe = RecipeConfig().resolve("digits")
    model = train_cached(ModelSpec("mlp", {"hidden": [64]}), train, recipe, seed=0, n_classes=2).model
    split = split_forget(train, "random:0.1", seed=0)
    task = UnlearningTask(forget=split.forget, retain=split.retain, objective=ClassificationObjective(2),
                          recipe=recipe, seed=0)
    return {"model": model, "split": split, "task": task, "test": test, "recipe": recipe}


def _acc(model, data):
    return float((predict_logits(model, data.x).argmax(1) == data.y).mean())


def _scaled_copy(model, c: float):
    """The same function of inputs multiplied by ``c`` (first Linear's weights divided by ``c``)."""
    import copy

    out = copy.deepcopy(model)
    first = next(m for m in out.modules() if isinstance(m, torch.nn.Linear))
    with torch.no_grad():
        first.weight.div_(c)
    return out


def test_feature_scale_is_each_columns_std_and_range(table_setup):
    fs = feature_scale(table_setup["task"])
    assert fs.std.shape == (30,)
    assert torch.allclose(fs.std, torch.ones(30), atol=0.15)   # standardised on the training rows
    rows = np.concatenate([table_setup["split"].forget.x, table_setup["split"].retain.x])
    assert torch.allclose(fs.low, torch.from_numpy(rows.min(0))) and torch.allclose(fs.high, torch.from_numpy(rows.max(0)))


def test_boundary_shrink_radius_scales_with_the_features(table_setup):
    """Multiply the features by 10 (and the model's first layer by 1/10): the same labels, 10x the step."""
    s = table_setup
    cfg = boundary_shrink.BoundaryShrinkConfig()
    x, y = s["split"].forget.tensors()
    adv, labels = boundary_shrink.nearest_wrong_labels(s["model"], x, y, cfg, task=s["task"])
    c = 10.0
    forget10 = ArrayDataset(x=s["split"].forget.x * c, y=s["split"].forget.y, ids=s["split"].forget.ids)
    retain10 = ArrayDataset(x=s["split"].retain.x * c, y=s["split"].retain.y, ids=s["split"].retain.ids)
    task10 = UnlearningTask(forget=forget10, retain=retain10, objective=ClassificationObjective(2),
                            recipe=s["recipe"], seed=0)
    adv10, labels10 = boundary_shrink.nearest_wrong_labels(_scaled_copy(s["model"], c), x * c, y, cfg, task=task10)
    assert torch.equal(labels, labels10)
    step, step10 = (adv - x).abs().max(), (adv10 - x * c).abs().max()
    assert step > 0 and torch.isclose(step10, c * step, rtol=1e-3)
    # in raw input units the same radius would not scale: the wider features would barely move
    raw = boundary_shrink.BoundaryShrinkConfig(units="input")
    adv_raw, _ = boundary_shrink.nearest_wrong_labels(_scaled_copy(s["model"], c), x * c, y, raw, task=task10)
    assert (adv_raw - x * c).abs().max() <= raw.bound + 1e-5 < float(step10)


def test_boundary_shrink_on_a_standardised_table_keeps_the_model_sane(table_setup):
    """At its defaults, on a binary table: most labels are kept and test accuracy stays above the majority rate."""
    s = table_setup
    out, record = METHODS.get("boundary_shrink")().unlearn(s["model"], s["task"])
    test = s["test"]
    majority = max(float(test.y.mean()), 1 - float(test.y.mean()))
    assert record.extra["boundary_crossed"] < 0.5, record.extra
    assert _acc(out, test) > majority + 0.1
    assert _acc(out, s["split"].retain) >= _acc(s["model"], s["split"].retain) - 0.05


def test_constant_features_are_never_perturbed(table_setup):
    s = table_setup
    x, y = s["split"].forget.tensors()
    scale = torch.ones(30)
    scale[:5] = 0.0
    adv = pgd(s["model"], x, y, eps=0.5, steps=3, step_size=0.2, scale=scale)
    assert torch.equal(adv[:, :5], x[:, :5]) and not torch.equal(adv[:, 5:], x[:, 5:])


@pytest.mark.parametrize("name", ["amun", "aru"])
def test_other_adversarial_methods_run_in_std_units_on_a_table(table_setup, name):
    s = table_setup
    out, record = METHODS.get(name)(epochs=1).unlearn(s["model"], s["task"])
    test = s["test"]
    majority = max(float(test.y.mean()), 1 - float(test.y.mean()))
    assert _acc(out, test) > majority + 0.1 and record.steps > 0
