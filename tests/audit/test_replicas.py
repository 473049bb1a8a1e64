"""Batched replica training: learns, respects masks, deterministic, matches the plain loop."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from obliviate.engine.replicas import (
    ReplicaRecipe,
    StackedReplicas,
    predict_logits,
    train_one_at_a_time,
    train_replicas,
)
from obliviate.errors import ConfigError, DataError, ShapeError

D, C = 16, 4


def _blobs(seed: int, n: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    centers = np.random.default_rng(99).normal(0, 2.0, size=(C, D))
    y = rng.integers(0, C, size=n)
    x = centers[y] + rng.normal(size=(n, D))
    return x.astype(np.float32), y.astype(np.int64)


def _factory() -> nn.Module:
    return nn.Sequential(nn.Linear(D, 32), nn.ReLU(), nn.Linear(32, C))


X, Y = _blobs(0, 600)
XT, YT = _blobs(1, 400)
RECIPE = ReplicaRecipe(epochs=3, batch_size=32, lr=0.05)


@pytest.fixture(scope="module")
def trained() -> StackedReplicas:
    mask = np.random.default_rng(2).random((4, X.shape[0])) < 0.5
    mask[3] = Y != 3  # replica 3 never sees class 3
    return train_replicas(_factory, X, Y, mask, [10, 11, 12, 13], recipe=RECIPE)


def test_replicas_learn(trained):
    acc = (trained.predict_logits(XT).argmax(-1) == YT).mean(axis=1)
    assert acc[:3].min() > 0.85  # chance is 0.25


def test_replica_only_sees_its_own_examples(trained):
    logits = predict_logits(trained, XT[YT == 3])
    acc3 = (logits.argmax(-1) == 3).mean(axis=1)
    assert acc3[3] < 0.05
    assert acc3[:3].min() > 0.8


def test_deterministic_under_seeds_and_leaves_global_rng_alone(trained):
    mask = np.random.default_rng(2).random((4, X.shape[0])) < 0.5
    mask[3] = Y != 3
    state = torch.get_rng_state()
    again = train_replicas(_factory, X, Y, mask, [10, 11, 12, 13], recipe=RECIPE)
    assert torch.equal(state, torch.get_rng_state())
    for a, b in zip(trained.state_dicts(), again.state_dicts()):
        assert all(torch.equal(a[k], b[k]) for k in a)
    other = train_replicas(_factory, X, Y, mask, [10, 11, 12, 14], recipe=RECIPE)
    assert not torch.equal(other.params["0.weight"][3], trained.params["0.weight"][3])
    assert torch.equal(other.params["0.weight"][0], trained.params["0.weight"][0])


@pytest.mark.parametrize("optimizer, lr, schedule", [("sgd", 0.05, "constant"), ("adam", 0.01, "constant"),
                                                     ("sgd", 0.05, "cosine"), ("adam", 0.01, "cosine")])
def test_batched_matches_one_at_a_time(optimizer, lr, schedule):
    rng = np.random.default_rng(4)
    x, y = X[:200], Y[:200]
    mask = rng.random((3, 200)) < np.array([[0.3], [0.6], [0.9]])  # unequal sizes
    recipe = ReplicaRecipe(epochs=2, batch_size=16, lr=lr, optimizer=optimizer, weight_decay=1e-3,
                           schedule=schedule)
    batched = train_replicas(_factory, x, y, mask, [0, 1, 2], recipe=recipe)
    plain = train_one_at_a_time(_factory, x, y, mask, [0, 1, 2], recipe=recipe)
    for sd, module in zip(batched.state_dicts(), plain):
        for k, v in module.state_dict().items():
            torch.testing.assert_close(sd[k], v, atol=1e-5, rtol=1e-4)
    stacked = StackedReplicas.from_modules(plain, model_factory=_factory, seeds=[0, 1, 2])
    np.testing.assert_allclose(stacked.predict_logits(x), batched.predict_logits(x), atol=1e-4)


def test_state_dicts_load_into_ordinary_modules(trained):
    module = trained.module(1).eval()
    with torch.no_grad():
        out = module(torch.from_numpy(XT[:10])).numpy()
    np.testing.assert_allclose(out, trained.predict_logits(XT[:10])[1], atol=1e-5)


def test_bad_inputs():
    mask = np.ones((2, X.shape[0]), bool)
    with pytest.raises(ConfigError) as err:
        train_replicas(_factory, X, Y, mask, [0, 1], recipe=ReplicaRecipe(lr=-1, optimizer="lbfgs"))
    assert len(err.value.problems) == 2
    with pytest.raises(ShapeError):
        train_replicas(_factory, X, Y, mask[:, :10], [0, 1])
    empty = mask.copy()
    empty[1] = False
    with pytest.raises(DataError, match=r"\[1\]"):
        train_replicas(_factory, X, Y, empty, [0, 1])
    with pytest.raises(DataError, match="classes"):
        train_replicas(lambda: nn.Linear(D, 2), X, Y, mask, [0, 1])
    with pytest.raises(ConfigError, match="BatchNorm"):
        train_replicas(lambda: nn.Sequential(nn.Linear(D, 8), nn.BatchNorm1d(8), nn.Linear(8, C)), X, Y, mask, [0, 1])


def test_replica_chunks_round_trip_through_the_model_cache(trained, tmp_path, caplog):
    from obliviate.engine.replicas.groups import ArchitectureFactory, ReplicaCache
    from obliviate.training.cache import ModelCache

    factory = ArchitectureFactory("mlp", {"hidden": [8]}, (D,), C)
    states = [factory.seeded(s).state_dict() for s in (1, 2, 3)]
    cache = ReplicaCache(ModelCache(tmp_path), factory)
    cache.store("k", states, {"wall_s": 1.5})
    got, manifest = cache.load("k", 3)
    assert manifest["wall_s"] == 1.5
    for a, b in zip(states, got):
        assert all(torch.equal(a[k], b[k]) for k in a)
    assert cache.load("k", 2) is None  # a chunk of another size is a miss
    (tmp_path / "k" / "model.safetensors").write_bytes(b"junk")
    with caplog.at_level("WARNING"):
        assert cache.load("k", 3) is None
    assert any("ignoring unusable" in r.getMessage() for r in caplog.records)
    off = ReplicaCache(ModelCache(tmp_path / "off", enabled=False), factory)
    off.store("k", states, {})
    assert off.load("k", 3) is None and not (tmp_path / "off").exists()


# --------------------------------------------------------------------------- the grouped-matmul MLP kernel
def _mask3(n: int) -> np.ndarray:
    return np.random.default_rng(4).random((3, n)) < np.array([[0.3], [0.6], [0.9]])  # unequal sizes


@pytest.mark.parametrize("optimizer, lr, schedule", [("sgd", 0.05, "cosine"), ("adam", 0.01, "constant")])
def test_mlp_kernel_matches_vmap_and_the_plain_loop(optimizer, lr, schedule):
    x, y = X[:200], Y[:200]
    recipe = ReplicaRecipe(epochs=2, batch_size=16, lr=lr, optimizer=optimizer, weight_decay=1e-3, schedule=schedule)
    fast = train_replicas(_factory, x, y, _mask3(200), [0, 1, 2], recipe=recipe, kernel="mlp")
    slow = train_replicas(_factory, x, y, _mask3(200), [0, 1, 2], recipe=recipe, kernel="vmap")
    plain = train_one_at_a_time(_factory, x, y, _mask3(200), [0, 1, 2], recipe=recipe)
    for a, b, module in zip(fast.state_dicts(), slow.state_dicts(), plain):
        for k, v in module.state_dict().items():
            torch.testing.assert_close(a[k], v, atol=1e-5, rtol=1e-4)
            torch.testing.assert_close(a[k], b[k], atol=1e-5, rtol=1e-4)
    moved = (fast.params["0.weight"] - slow.params["0.weight"]).abs().max()
    assert moved < 1e-5 and not torch.equal(fast.params["0.weight"][0], fast.params["0.weight"][1])


def test_mlp_kernel_is_used_only_for_plain_mlps():
    from obliviate.engine.replicas.training import _mlp_layers

    x = torch.from_numpy(X[:8])
    nested = nn.Sequential(nn.Flatten(), nn.Sequential(nn.Linear(D, 8), nn.ReLU()), nn.Linear(8, C, bias=False))
    layers = _mlp_layers(nested, x)
    assert [(la.weight, la.bias, la.relu) for la in layers] == [("1.0.weight", "1.0.bias", True), ("2.weight", None, False)]

    class Skip(nn.Module):  # the same leaves, wired differently: not a chain
        def __init__(self) -> None:
            super().__init__()
            self.a, self.b = nn.Linear(D, D), nn.Linear(D, C)

        def forward(self, t: torch.Tensor) -> torch.Tensor:
            return self.b(t + self.a(t))

    assert _mlp_layers(Skip(), x) is None
    assert _mlp_layers(nn.Sequential(nn.Linear(D, 8), nn.Tanh(), nn.Linear(8, C)), x) is None
    assert _mlp_layers(nn.Sequential(nn.Linear(D, 8), nn.ReLU(), nn.Dropout(0.5), nn.Linear(8, C)), x) is None
    mask = np.ones((2, X.shape[0]), bool)
    with pytest.raises(ConfigError, match="kernel='mlp' needs a plain MLP"):
        train_replicas(Skip, X, Y, mask, [0, 1], kernel="mlp")
    with pytest.raises(ConfigError, match="'kernel'"):
        train_replicas(_factory, X, Y, mask, [0, 1], kernel="bmm")
    with pytest.raises(ConfigError, match="precision"):
        train_replicas(_factory, X, Y, mask, [0, 1], recipe=ReplicaRecipe(precision="fp16"))


def test_bfloat16_kernel_learns_like_the_bfloat16_reference():
    """bfloat16 runs agree in accuracy, not bit for bit: rounding differs, so trajectories drift apart."""
    recipe = ReplicaRecipe(epochs=3, batch_size=32, lr=0.05, precision="bfloat16")
    mask = np.ones((2, X.shape[0]), bool)
    fast = train_replicas(_factory, X, Y, mask, [5, 6], recipe=recipe)
    plain = train_one_at_a_time(_factory, X, Y, mask, [5, 6], recipe=recipe)
    ref = StackedReplicas.from_modules(plain, model_factory=_factory, seeds=[5, 6])
    acc_fast = (fast.predict_logits(XT).argmax(-1) == YT).mean(axis=1)
    acc_ref = (ref.predict_logits(XT).argmax(-1) == YT).mean(axis=1)
    assert acc_fast.min() > 0.85 and np.abs(acc_fast - acc_ref).max() < 0.03
    assert fast.params["0.weight"].dtype == torch.float32  # master weights stay float32
    f32 = train_replicas(_factory, X, Y, mask, [5, 6], recipe=ReplicaRecipe(epochs=3, batch_size=32, lr=0.05))
    assert not torch.equal(f32.params["0.weight"], fast.params["0.weight"])  # bfloat16 really ran
    vm = train_replicas(_factory, X, Y, mask, [5, 6], recipe=recipe, kernel="vmap")  # autocast in the vmap path
    acc_vm = (vm.predict_logits(XT).argmax(-1) == YT).mean(axis=1)
    assert np.abs(acc_vm - acc_ref).max() < 0.03
