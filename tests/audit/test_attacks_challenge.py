"""NeurIPS 2023 challenge score: per-example epsilon, buckets, F and the final score."""

from __future__ import annotations

import math

import numpy as np
import pytest

from obliviate.audit.attacks import (
    bucket_points,
    default_max_epsilon,
    example_epsilon,
    final_score,
    forget_quality,
)
from obliviate.audit.attacks.challenge import DELTA, EPSILON_CAP
from obliviate.errors import ConfigError, DataError


def test_hand_computed_single_threshold_epsilon():
    # retrained has the larger median, so "score >= t -> retrained". The best
    # threshold is t = 3: FNR = 1/4 (retrained 2), FPR = 1/4 (unlearned 6), so
    # epsilon = log((1 - delta - 1/4) / (1/4)). Thresholds with exactly one zero
    # rate (t <= 2) are discarded.
    unlearned = np.array([0.0, 1.0, 2.5, 6.0])
    retrained = np.array([2.0, 3.0, 4.0, 5.0])
    eps = example_epsilon(unlearned, retrained, rules=("single",))
    assert eps == pytest.approx(math.log((0.75 - DELTA) / 0.25))


def test_perfect_separation_peaky_and_identical_cases():
    assert example_epsilon([0.0, 1.0, 2.0], [5.0, 6.0, 7.0]) == EPSILON_CAP
    # unlearned is a spike (range ratio < 1%) inside the retrained spread
    assert example_epsilon([1.0, 1.0, 1.0, 1.001], [0.0, 1.0, 2.0, 3.0]) == EPSILON_CAP
    assert example_epsilon([2.0, 2.0], [2.0, 2.0]) == 0.0
    assert example_epsilon([2.0, 2.0], [3.0, 3.0]) == EPSILON_CAP
    same = np.random.default_rng(0).normal(size=64)
    assert example_epsilon(same, same.copy()) == 0.0


def test_bucket_points_on_hand_epsilons():
    eps = np.array([0.0, 0.49, 0.5, 0.99, 1.2, 6.9, 7.0, 50.0])
    # buckets [0, .5) -> 1, [.5, 1) -> 1/2, [1, 1.5) -> 1/4, ..., [6.5, 7) -> 2^-13; >= 7 -> 0
    want = [1.0, 1.0, 0.5, 0.5, 0.25, 2.0**-13, 0.0, 0.0]
    np.testing.assert_allclose(bucket_points(eps, max_epsilon=7.0), want)
    assert default_max_epsilon(512) == 7.0  # ceil(ln 511)
    assert default_max_epsilon(3) == 1.0
    np.testing.assert_allclose(bucket_points(np.array([0.2, 0.7, 1.0]), max_epsilon=1.0), [1.0, 0.5, 0.0])
    with pytest.raises(DataError, match="at least 3"):
        default_max_epsilon(2)


def test_forget_quality_identical_null_and_separated():
    rng = np.random.default_rng(1)
    retrained = rng.normal(size=(32, 100))
    # identical score sets: every rule has FPR = TPR, epsilon 0, F = 1
    assert forget_quality(retrained, retrained.copy()).forget_quality == 1.0
    # independent draws from the same distribution: finite-sample epsilons are
    # well above 0 (see the module docstring) but far below a real difference
    null = forget_quality(rng.normal(size=(32, 100)), retrained)
    sep = forget_quality(3.0 + rng.normal(size=(32, 100)), retrained)
    assert np.median(null.epsilons) < 2.5
    assert np.median(sep.epsilons) > np.median(null.epsilons) + 1.0
    assert null.forget_quality > 4 * sep.forget_quality
    assert null.max_epsilon == default_max_epsilon(32)
    np.testing.assert_allclose(null.forget_quality, null.points.mean())


def test_final_score_hand_case():
    assert final_score(0.5, 0.9, 0.8, 0.95, 0.85) == pytest.approx(0.5 * (0.9 / 0.95) * (0.8 / 0.85))
    assert final_score(1.0, 90.0, 80.0, 90.0, 80.0) == pytest.approx(1.0)
    with pytest.raises(ConfigError) as err:
        final_score(1.5, 0.9, 0.8, 0.0, 0.85)
    assert "'F'" in str(err.value)


def test_bad_settings():
    with pytest.raises(ConfigError):
        example_epsilon([0.0, 1.0], [1.0, 2.0], rules=("bogus",))
    with pytest.raises(ConfigError):
        example_epsilon([0.0, 1.0], [1.0, 2.0], delta=2.0)
