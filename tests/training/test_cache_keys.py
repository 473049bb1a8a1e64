"""The model cache must never serve weights trained under different code, options or runtime."""

import hashlib
import importlib
import json
import os
import sys
import textwrap
import threading

import numpy as np
import pytest
import torch

from obliviate.data import ArrayDataset
from obliviate.errors import ConfigError
from obliviate.models import ModelSpec
from obliviate.training import ModelCache, Recipe, train_cached
from obliviate.training.cache import CACHE_FORMAT, cache_key, canonical, code_fingerprint

FACTORY = """
from torch import nn


def make(input_shape, n_classes, **options):
    return nn.Sequential(nn.Flatten(), nn.Linear(input_shape[0], 8), nn.{act}(), nn.Linear(8, n_classes))
"""


@pytest.fixture
def tiny():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(48, 4)).astype(np.float32)
    return ArrayDataset(x, (x[:, 0] > 0).astype(int), np.arange(48), name="tiny")


@pytest.fixture
def user_module(tmp_path, monkeypatch):
    """A user's model factory in its own importable file, which the test can edit."""
    name = f"userzoo_{os.getpid()}_{abs(hash(tmp_path)) % 10**8}"
    path = tmp_path / f"{name}.py"
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(sys, "dont_write_bytecode", True)

    def write(act):
        path.write_text(FACTORY.format(act=act))
        later = path.stat().st_mtime + 10  # a same-size edit must still look newer to import and linecache
        os.utime(path, (later, later))
        if name in sys.modules:
            importlib.reload(sys.modules[name])
        else:
            importlib.import_module(name)
        return f"{name}:make"

    yield write
    sys.modules.pop(name, None)


RECIPE = Recipe(epochs=1, batch_size=16)


def test_editing_the_factory_code_retrains(tiny, tmp_path, user_module):
    cache = ModelCache(tmp_path / "cache")
    relu = train_cached(ModelSpec(user_module("ReLU")), tiny, RECIPE, seed=0, n_classes=2, cache=cache)
    tanh = train_cached(ModelSpec(user_module("Tanh")), tiny, RECIPE, seed=0, n_classes=2, cache=cache)
    assert not relu.cached and not tanh.cached, "a Tanh factory was served the cached ReLU weights"
    assert relu.key != tanh.key
    assert isinstance(tanh.model[2], torch.nn.Tanh)
    again = train_cached(ModelSpec(user_module("Tanh")), tiny, RECIPE, seed=0, n_classes=2, cache=cache)
    assert again.cached and again.key == tanh.key  # unchanged code still hits


def test_option_arrays_are_keyed_by_content(tiny, tmp_path, user_module):
    cache = ModelCache(tmp_path / "cache")
    name = user_module("ReLU")
    a = np.zeros(2000)
    b = a.copy()
    b[1000] = 1.0
    assert str(a) == str(b)  # what the old key used: numpy elides the middle of large arrays
    first = train_cached(ModelSpec(name, {"w": a}), tiny, RECIPE, seed=0, n_classes=2, cache=cache)
    other = train_cached(ModelSpec(name, {"w": b}), tiny, RECIPE, seed=0, n_classes=2, cache=cache)
    assert not other.cached and other.key != first.key
    as_f32 = train_cached(ModelSpec(name, {"w": a.astype(np.float32)}), tiny, RECIPE, seed=0, n_classes=2,
                          cache=cache)
    assert not as_f32.cached  # same values, other dtype
    same = train_cached(ModelSpec(name, {"w": a.copy()}), tiny, RECIPE, seed=0, n_classes=2, cache=cache)
    assert same.cached and same.key == first.key
    json.dumps(first.manifest)  # the manifest holds the digest, not the array


def test_thread_count_is_part_of_the_key(tiny, tmp_path):
    cache = ModelCache(tmp_path / "cache")
    spec = ModelSpec("mlp", {"hidden": [8]})
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        one = train_cached(spec, tiny, RECIPE, seed=0, n_classes=2, cache=cache)
        torch.set_num_threads(2)
        two = train_cached(spec, tiny, RECIPE, seed=0, n_classes=2, cache=cache)
    finally:
        torch.set_num_threads(before)
    assert not two.cached and one.key != two.key
    assert one.manifest["runtime"]["threads"] == 1 and two.manifest["runtime"]["threads"] == 2


def test_builtin_model_code_is_in_the_key(tiny, tmp_path, monkeypatch):
    """Editing a built-in class (here: swapping the registered MLP for a Tanh variant) retrains."""
    from torch import nn

    from obliviate.models import zoo

    cache = ModelCache(tmp_path / "cache")
    spec = ModelSpec("mlp", {"hidden": [8]})
    first = train_cached(spec, tiny, RECIPE, seed=0, n_classes=2, cache=cache)
    assert first.manifest["code"]["classes"]  # the MLP's source is recorded

    class MLP(zoo.MLP):  # same name, other code
        def forward(self, x):
            return self.classifier(nn.functional.tanh(self.features(x)))

    monkeypatch.setitem(zoo.MODELS._items, "mlp", MLP)
    changed = train_cached(spec, tiny, RECIPE, seed=0, n_classes=2, cache=cache)
    assert not changed.cached and changed.key != first.key


def test_canonical_identifies_values_by_content():
    assert canonical({"a": [1, 2.5, "x", None, True]}) == {"a": [1, 2.5, "x", None, True]}
    assert canonical({3, 1, 2}) == canonical({2, 3, 1})
    assert canonical(np.arange(3)) != canonical(np.arange(3).astype(np.int32))
    assert canonical(np.arange(6).reshape(2, 3)) != canonical(np.arange(6).reshape(3, 2))
    assert canonical(torch.ones(3)) != canonical(torch.ones(3, dtype=torch.float64))
    assert canonical(np.float32(0.1)) != canonical(np.float64(0.1))
    with pytest.raises(ConfigError, match=r"value.lock \(of type lock\).*--no-cache"):
        canonical({"lock": threading.Lock()})


def test_code_fingerprint_follows_the_source():
    def f(x):
        return x + 1

    def g(x):
        return x + 2

    g.__qualname__ = f.__qualname__
    assert code_fingerprint(f) != code_fingerprint(g)
    assert code_fingerprint(f) == code_fingerprint(f)


def test_keys_of_plain_values_are_unchanged():
    """Other caches (language models, audits) key on plain values; their keys must stay valid."""
    old = hashlib.sha256(json.dumps({"format": CACHE_FORMAT, "kind": "k", "seed": 3, "x": [1, "a"]},
                                    sort_keys=True, default=str).encode()).hexdigest()[:24]
    assert cache_key(kind="k", seed=3, x=[1, "a"]) == old
    assert cache_key(kind="k", seed=3, x=(1, "a")) == old


def test_factory_state_outside_its_source_is_keyed():
    """Two factories with the same source differ by a closure value, a default or a module option's weights."""
    def make_factory(width):
        def factory(input_shape, n_classes):
            return torch.nn.Linear(input_shape[0], width)

        return factory

    assert code_fingerprint(make_factory(4)) != code_fingerprint(make_factory(8))
    assert code_fingerprint(make_factory(4)) == code_fingerprint(make_factory(4))

    def with_default(input_shape, n_classes, width=4):
        return torch.nn.Linear(input_shape[0], width)

    other = with_default
    before = code_fingerprint(with_default)
    other.__defaults__ = (8,)
    assert code_fingerprint(with_default) != before

    torch.manual_seed(0)
    a = torch.nn.Linear(3, 2)
    torch.manual_seed(1)
    b = torch.nn.Linear(3, 2)
    assert canonical({"backbone": a}) != canonical({"backbone": b})  # same class, other weights


def test_recursive_closures_terminate():
    def outer():
        def walk(n):
            return 0 if n == 0 else walk(n - 1)

        return walk

    fp = code_fingerprint(outer())
    assert fp["state"]["closure"]["walk"]["__code__"]["recursive"] is True
