import json

import numpy as np
import pytest
import torch

from obliviate.errors import CheckpointError, ConfigError
from obliviate.models import ModelSpec, build_model
from obliviate.progress import Progress, ProgressTask
from obliviate.training import ModelCache, Recipe, load_checkpoint, save_checkpoint, train_cached, train_classifier
from obliviate.training.checkpoint import WEIGHTS


class Recorder(Progress):
    def __init__(self):
        self.events = []

    def task(self, description, total=None):
        import contextlib

        rec = self

        class T(ProgressTask):
            def advance(self, n=1, **info):
                rec.events.append((description, n, info))

        return contextlib.nullcontext(T())


def _train(digits, seed):
    m = build_model(ModelSpec("mlp", {"hidden": [32]}), digits.train.input_shape, 10, seed=seed)
    r = train_classifier(m, digits.train, Recipe(epochs=4, batch_size=32, lr=5e-3), seed=seed)
    return m, r


def test_training_is_deterministic_and_learns(digits):
    a, ra = _train(digits, 0)
    b, rb = _train(digits, 0)
    c, _ = _train(digits, 1)
    for k, v in a.state_dict().items():
        assert torch.equal(v, b.state_dict()[k]), k
    assert ra.history == rb.history
    assert not torch.equal(a.classifier.weight, c.classifier.weight)
    assert ra.history[-1] < ra.history[0]
    acc = (a(torch.from_numpy(digits.test.x)).argmax(1).numpy() == digits.test.y).mean()
    assert acc > 0.8


def test_progress_callbacks_receive_epochs(digits):
    rec = Recorder()
    m = build_model(ModelSpec("mlp", {"hidden": [8]}), digits.train.input_shape, 10, seed=0)
    train_classifier(m, digits.train, Recipe(epochs=2), seed=0, progress=rec)
    assert [e[1] for e in rec.events] == [1, 1] and "loss" in rec.events[0][2]


def test_recipe_validation_collects_all_problems():
    with pytest.raises(ConfigError) as exc:
        Recipe(epochs=0, lr=-1, optimizer="rmsprop")
    assert len(exc.value.problems) == 3


def test_cache_reuses_identical_training(digits, tmp_path):
    cache = ModelCache(tmp_path)
    spec, recipe = ModelSpec("mlp", {"hidden": [16]}), Recipe(epochs=2)
    first = train_cached(spec, digits.train, recipe, seed=0, n_classes=10, cache=cache)
    again = train_cached(spec, digits.train, recipe, seed=0, n_classes=10, cache=cache)
    other = train_cached(spec, digits.train, recipe, seed=1, n_classes=10, cache=cache)
    assert not first.cached and again.cached and not other.cached
    assert again.wall_s == pytest.approx(first.wall_s)
    assert torch.equal(first.model.classifier.weight, again.model.classifier.weight)
    subset = digits.train.subset(np.arange(100))
    assert not train_cached(spec, subset, recipe, seed=0, n_classes=10, cache=cache).cached
    manifest = json.loads((cache.path(first.key) / "manifest.json").read_text())
    assert manifest["seed"] == 0 and manifest["recipe"]["epochs"] == 2


def test_checkpoint_roundtrip_and_corruption(tmp_path):
    m = build_model(ModelSpec("mlp", {"hidden": [4]}), (3,), 2, seed=0)
    save_checkpoint(m, tmp_path / "ck", {"note": "x"})
    m2 = build_model(ModelSpec("mlp", {"hidden": [4]}), (3,), 2, seed=9)
    assert load_checkpoint(m2, tmp_path / "ck")["note"] == "x"
    assert torch.equal(m.classifier.weight, m2.classifier.weight)
    wrong = build_model(ModelSpec("mlp", {"hidden": [5]}), (3,), 2, seed=0)
    with pytest.raises(CheckpointError, match="shape mismatch"):
        load_checkpoint(wrong, tmp_path / "ck")
    w = tmp_path / "ck" / WEIGHTS
    w.write_bytes(w.read_bytes()[:-7] + b"garbage")
    with pytest.raises(CheckpointError, match="corrupt"):
        load_checkpoint(m2, tmp_path / "ck")
    with pytest.raises(CheckpointError, match="No checkpoint"):
        load_checkpoint(m2, tmp_path / "nothing")


def test_corrupt_cache_entry_is_retrained_not_trusted(digits, tmp_path):
    cache = ModelCache(tmp_path)
    spec, recipe = ModelSpec("mlp", {"hidden": [8]}), Recipe(epochs=1)
    first = train_cached(spec, digits.train, recipe, seed=0, n_classes=10, cache=cache)
    (cache.path(first.key) / WEIGHTS).write_bytes(b"not safetensors")
    again = train_cached(spec, digits.train, recipe, seed=0, n_classes=10, cache=cache)
    assert not again.cached
    assert torch.equal(first.model.classifier.weight, again.model.classifier.weight)
