"""U-LiRA: chance when unlearned == retrained, high accuracy when unlearning leaves a trace."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import norm

from obliviate.audit.attacks import ulira, ulira_llr
from obliviate.errors import ConfigError, DataError, ShapeError


@pytest.mark.parametrize("protocol", ["split", "loo"])
def test_identical_distributions_give_chance(protocol):
    rng = np.random.default_rng(0)
    mu = rng.normal(0, 3, 400)  # examples differ, the two groups do not
    unlearned = mu + rng.normal(size=(32, 400))
    retrained = mu + rng.normal(size=(32, 400))
    res = ulira(unlearned, retrained, protocol=protocol, seed=1, n_repeats=3)
    assert res.mean_accuracy == pytest.approx(0.5, abs=0.03)
    assert res.per_example_accuracy.shape == (400,)


@pytest.mark.parametrize("protocol", ["split", "loo"])
def test_leftover_memorisation_is_detected(protocol):
    rng = np.random.default_rng(1)
    retrained = rng.normal(size=(32, 300))
    unlearned = 2.0 + rng.normal(size=(32, 300))  # still 2 sd more confident after "unlearning"
    res = ulira(unlearned, retrained, protocol=protocol)
    # the Bayes-optimal test between N(2,1) and N(0,1) is right with probability Phi(1)
    assert res.mean_accuracy == pytest.approx(norm.cdf(1.0), abs=0.04)
    strong = ulira(4.0 + rng.normal(size=(32, 300)), retrained, protocol=protocol)
    assert strong.mean_accuracy > 0.95


def test_per_example_accuracy_tells_exposed_examples_apart():
    rng = np.random.default_rng(2)
    retrained = rng.normal(size=(40, 200))
    unlearned = rng.normal(size=(40, 200))  # same distribution as retrained...
    unlearned[:, :50] += 5.0  # ...except the first 50 examples, which were not forgotten
    acc = ulira(unlearned, retrained, n_repeats=4).per_example_accuracy
    assert acc[:50].min() > 0.9
    assert abs(acc[50:].mean() - 0.5) < 0.05


def test_split_is_deterministic_under_seed_and_balanced_for_unequal_counts():
    rng = np.random.default_rng(3)
    unlearned, retrained = rng.normal(size=(10, 50)), rng.normal(size=(30, 50))
    a = ulira(unlearned, retrained, seed=5)
    b = ulira(unlearned, retrained, seed=5)
    c = ulira(unlearned, retrained, seed=6)
    np.testing.assert_array_equal(a.per_example_accuracy, b.per_example_accuracy)
    assert not np.array_equal(a.per_example_accuracy, c.per_example_accuracy)
    # balanced accuracy: a test that always answers "retrained" would score 0.75 on
    # raw accuracy here; the balanced score stays near chance
    assert abs(a.mean_accuracy - 0.5) < 0.1


def test_llr_sign():
    unl = np.array([[2.0], [3.0], [4.0]])
    ret = np.array([[-1.0], [0.0], [1.0]])
    assert ulira_llr(np.array([3.0]), unl, ret)[0] > 0
    assert ulira_llr(np.array([0.0]), unl, ret)[0] < 0


def test_errors():
    x = np.zeros((5, 4))
    with pytest.raises(DataError, match="at least 3"):
        ulira(x[:2], x)
    with pytest.raises(ShapeError):
        ulira(x, np.zeros((5, 3)))
    with pytest.raises(ConfigError) as err:
        ulira(x, x, protocol="bogus", n_repeats=0)
    assert len(err.value.problems) == 2
