"""Memorisation scores (Feldman's in/out estimator) and the memorized:* forget specs."""

from __future__ import annotations

import numpy as np
import pytest

import obliviate.removal  # noqa: F401  (registers the forget specs)
from obliviate.audit.memorization import (MemorizationConfig, complementary_halves, feldman_estimate,
                                          memorization_scores)
from obliviate.data.dataset import ArrayDataset
from obliviate.data.forget import split_forget
from obliviate.errors import ConfigError, ForgetSetError, ShapeError


def _blobs(n: int, *, flip: int = 0, seed: int = 0) -> tuple[ArrayDataset, np.ndarray]:
    """Three well-separated Gaussian classes in 8-D; the first ``flip`` rows get a wrong label."""
    rng = np.random.default_rng(seed)
    centers = np.random.default_rng(7).normal(0, 4.0, size=(3, 8))
    y = rng.integers(0, 3, size=n)
    x = (centers[y] + rng.normal(size=(n, 8))).astype(np.float32)
    flipped = np.arange(flip)
    y = y.copy()
    y[flipped] = (y[flipped] + 1) % 3
    return ArrayDataset(x=x, y=y, ids=np.arange(n).astype(str), name=f"blobs{n}"), flipped


def test_feldman_estimate_is_in_minus_out():
    member = np.array([[True, False], [False, True], [True, False], [False, True]])
    correct = np.array([[1, 1], [0, 1], [1, 0], [0, 1]], dtype=float)
    # example 0: in models 0, 2 (both right), out of 1, 3 (both wrong) -> 1
    # example 1: in models 1, 3 (both right), out of 0, 2 (one right) -> 0.5
    np.testing.assert_allclose(feldman_estimate(correct, member), [1.0, 0.5])
    with pytest.raises(ShapeError):
        feldman_estimate(correct, np.ones_like(member))  # nobody is ever left out


def test_complementary_halves_put_every_example_in_half_the_models():
    member = complementary_halves(11, 6, seed=3)
    assert member.shape == (6, 11)
    assert (member.sum(axis=0) == 3).all()
    np.testing.assert_array_equal(member[0], ~member[1])
    np.testing.assert_array_equal(member, complementary_halves(11, 6, seed=3))


def test_mislabelled_examples_score_higher_than_typical_ones():
    data, flipped = _blobs(120, flip=4)
    cfg = MemorizationConfig(n_models=8, hidden=(128,), epochs=30, batch_size=32, lr=2e-2)
    scores = memorization_scores(data, seed=0, config=cfg, use_cache=False)
    typical = np.setdiff1d(np.arange(len(data)), flipped)
    assert scores.score[flipped].mean() > scores.score[typical].mean() + 0.5
    assert (scores.prob_score[flipped] > np.median(scores.prob_score[typical])).all()
    # the most memorised examples are the mislabelled ones
    assert set(scores.order(0)[-len(flipped):]) == set(flipped)


def test_scores_are_cached_on_disk_by_data_and_seed():
    data, _ = _blobs(90)
    a = memorization_scores(data, seed=1)
    b = memorization_scores(data, seed=1)   # read back
    np.testing.assert_array_equal(a.score, b.score)
    assert a.key == b.key and a.key != memorization_scores(data, seed=2).key


def test_specs_select_the_right_sizes():
    data, _ = _blobs(150)
    top = split_forget(data, "memorized:0.1", seed=0)
    assert len(top.forget) == 15
    order = memorization_scores(data, seed=0).order(0)
    assert set(top.forget_index) == set(order[-15:])
    seen = set()
    for stratum, tercile in zip(("low", "mid", "high"), (order[:50], order[50:100], order[100:])):
        part = split_forget(data, f"memorized-stratum:{stratum}", seed=0)
        assert len(part.forget) == 15 and set(part.forget_index) <= set(tercile)
        seen |= set(part.forget_index)
        assert len(split_forget(data, f"memorized-stratum:{stratum}:0.2", seed=0).forget) == 30
        assert len(split_forget(data, f"memorized-stratum:{stratum}:all", seed=0).forget) == 50
    assert len(seen) == 45


@pytest.mark.parametrize("spec", ["memorized:abc", "memorized:0", "memorized:1.5", "memorized:0.001",
                                  "memorized-stratum:top", "memorized-stratum:", "memorized-stratum:high:0.5",
                                  "memorized-stratum:low:x"])
def test_malformed_specs_raise_forget_set_errors(spec):
    data, _ = _blobs(150)
    with pytest.raises(ForgetSetError):
        split_forget(data, spec, seed=0)


def test_bad_config_names_the_parameter():
    with pytest.raises(ConfigError, match="n_models"):
        MemorizationConfig(n_models=3)


def _entries(root, key):
    return [p for p in root.rglob("*") if p.is_file() and key in str(p)]


def test_cache_dir_and_no_cache_are_honoured(tmp_path, monkeypatch):
    from obliviate.audit import memorization
    from obliviate.training.cache import ModelCache, default_cache_dir

    data, _ = _blobs(60, seed=3)
    own = ModelCache(tmp_path / "own")
    a = memorization_scores(data, seed=4, cache=own)
    assert _entries(tmp_path / "own", a.key) and not _entries(default_cache_dir(), a.key)
    # a hit trains nothing
    monkeypatch.setattr("obliviate.engine.replicas.train_replicas", lambda *a, **k: pytest.fail("retrained"))
    np.testing.assert_array_equal(memorization_scores(data, seed=4, cache=own).score, a.score)
    monkeypatch.undo()
    off = ModelCache(tmp_path / "off", enabled=False)
    with memorization.using_cache(off):  # what a run with --no-cache sets for the memorized:* specs
        b = split_forget(data, "memorized:0.1", seed=4)
    assert len(b.forget) == 6 and not (tmp_path / "off").exists()
    with memorization.using_cache(ModelCache(tmp_path / "flag")):  # --cache-dir
        split_forget(data, "memorized:0.1", seed=4)
    assert _entries(tmp_path / "flag", a.key)


def test_a_corrupt_cache_entry_is_a_miss_with_a_warning(caplog):
    from obliviate.training.cache import default_cache_dir

    data, _ = _blobs(70, seed=5)
    a = memorization_scores(data, seed=6)
    files = _entries(default_cache_dir(), a.key)
    assert files
    for p in files:
        p.write_bytes(b"\x00not a cache entry")
    with caplog.at_level("WARNING"):
        b = memorization_scores(data, seed=6)
    np.testing.assert_array_equal(a.score, b.score)
    assert any(r.levelname == "WARNING" and a.key in r.getMessage() for r in caplog.records)
    np.testing.assert_array_equal(memorization_scores(data, seed=6).prob_score, a.prob_score)  # rewritten, usable
