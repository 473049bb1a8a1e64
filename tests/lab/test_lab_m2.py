import numpy as np
import pytest

from obliviate.lab.m2_removal_not_suppression import probe


def test_probe_finds_a_separable_class_and_not_a_random_one():
    rng = np.random.default_rng(0)
    y = np.repeat(np.arange(4), 30)
    centres = 5 * rng.normal(size=(4, 6))
    x = centres[y] + 0.1 * rng.normal(size=(len(y), 6))
    assert probe(x, y, x, y, c=2, shots=3, draws=5, seed=0)["balanced_accuracy"] == pytest.approx(1.0)
    noise = rng.normal(size=(len(y), 6))
    test_noise = rng.normal(size=(len(y), 6))
    assert abs(probe(noise, y, test_noise, y, c=2, shots=3, draws=40, seed=0)["balanced_accuracy"] - 0.5) < 0.1


@pytest.fixture(scope="module")
def result(quick):
    return quick("m2")


def test_the_exact_retrain_never_predicts_the_class_yet_the_probe_finds_it(result):
    m = result.measured
    assert m["predictions"]["retrain_says_c_on_c"] < 0.05  # it never saw the class
    assert m["retrain_features"]["balanced_accuracy"] > 0.6  # well above chance 0.5
    assert 0 <= m["raw_pixels"]["balanced_accuracy"] <= 1
    assert result.kind["retrain (trained from scratch without class 3)"] == "exact"
    for key in ("retrain_features", "retrain_logits", "original_features", "raw_pixels"):
        assert f"{m[key]['balanced_accuracy']:.3f}" in result.claim
    assert f"{m['predictions']['retrain_says_c_on_c']:.0%}" in result.claim
    assert result.figure[:4] == b"\x89PNG"


def _fake(ba_retrain, ba_pixels, ba_untrained=0.7):
    entry = lambda b: {"balanced_accuracy": b, "balanced_accuracy_sd": 0.01, "recall": b,  # noqa: E731
                       "false_positive_rate": 0.0}
    return {"retrain_features": entry(ba_retrain), "retrain_logits": entry(ba_retrain),
            "original_features": entry(0.95), "original_logits": entry(0.95),
            "untrained_network_features": entry(ba_untrained), "raw_pixels": entry(ba_pixels),
            "predictions": {"n_forgotten_train": 10.0, "retrain_says_c_on_c": 0.0}}


def test_the_claim_follows_the_numbers():
    from obliviate.lab.m2_removal_not_suppression import M2Config, _claim

    cfg = M2Config()
    assert "carry little of the class" in _claim(cfg, _fake(0.55, 0.9), "toy")
    assert "less well than raw pixels do" in _claim(cfg, _fake(0.8, 0.9), "toy")
    assert "less well than an untrained network do" in _claim(cfg, _fake(0.8, 0.75, 0.9), "toy")
    assert "at least as well as raw pixels do" in _claim(cfg, _fake(0.92, 0.9), "toy")
    assert "0.920" in _claim(cfg, _fake(0.92, 0.9), "toy")
