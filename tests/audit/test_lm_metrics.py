"""Hand-computed checks of the TOFU metric math."""

from __future__ import annotations

import math

import numpy as np
import pytest

from obliviate.audit.lm_metrics import (
    bootstrap_ci,
    forget_quality,
    length_normalised_prob,
    model_utility,
    relative_answer_prob,
    rouge_l_recall,
    truth_ratio,
    truth_ratio_forget_stat,
    truth_ratio_utility_stat,
)
from obliviate.errors import ConfigError, DataError


def test_length_normalised_prob_is_geometric_mean_of_token_probs() -> None:
    assert length_normalised_prob([math.log(0.5), math.log(0.125)]) == pytest.approx(0.25)
    assert length_normalised_prob([0.0]) == 1.0
    assert length_normalised_prob([-np.inf, -1.0]) == 0.0


@pytest.mark.parametrize("bad", [[], [0.5, -1.0], [np.nan], [[-1.0, -2.0]]])
def test_length_normalised_prob_rejects_bad_input(bad: list) -> None:
    with pytest.raises(DataError):
        length_normalised_prob(bad)


def test_truth_ratio_hand_values() -> None:
    # geometric mean of 0.1 and 0.4 is 0.2; arithmetic mean is 0.25
    assert truth_ratio([0.1, 0.4], 0.5) == pytest.approx(0.4)
    assert truth_ratio([0.1, 0.4], 0.5, mean="arithmetic") == pytest.approx(0.5)
    batch = truth_ratio([[0.1, 0.4], [0.3, 0.3]], [0.5, 0.3])
    np.testing.assert_allclose(batch, [0.4, 1.0])


def test_truth_ratio_matches_official_code_formula() -> None:
    """locuslab/tofu: exp(mean(perturbed avg loss) - paraphrased avg loss) is 1/R."""
    rng = np.random.default_rng(0)
    para_tokens = -rng.uniform(0.1, 2.0, size=7)
    pert_tokens = [-rng.uniform(0.1, 3.0, size=n) for n in (4, 6, 9)]
    para_loss = -para_tokens.mean()
    pert_loss = np.array([-t.mean() for t in pert_tokens])
    official = np.exp(pert_loss.mean() - para_loss)
    ours = truth_ratio([length_normalised_prob(t) for t in pert_tokens], length_normalised_prob(para_tokens))
    assert ours == pytest.approx(1.0 / official)


def test_truth_ratio_validation() -> None:
    with pytest.raises(DataError, match="paraphrased"):
        truth_ratio([0.1, 0.2], 0.0)
    with pytest.raises(DataError, match="one paraphrased probability per row"):
        truth_ratio([[0.1], [0.2]], [0.5, 0.5, 0.5])
    with pytest.raises(ConfigError, match="'mean'"):
        truth_ratio([0.1], 0.5, mean="median")  # type: ignore[arg-type]
    with pytest.raises(DataError, match="probabilities"):
        truth_ratio([1.5], 0.5)


def test_truth_ratio_summary_statistics() -> None:
    # forget: mean(min(R, 1/R)) = (0.5 + 0.5 + 1) / 3
    assert truth_ratio_forget_stat([0.5, 2.0, 1.0]) == pytest.approx(2 / 3)
    assert truth_ratio_forget_stat([0.0]) == 0.0
    # utility: mean(max(0, 1 - R)) = (0.5 + 0 + 0.75) / 3
    assert truth_ratio_utility_stat([0.5, 2.0, 0.25]) == pytest.approx(1.25 / 3)


def test_forget_quality_identical_vs_shifted() -> None:
    a = np.linspace(0.1, 1.0, 50)
    assert forget_quality(a, a.copy()) == pytest.approx(1.0)
    shifted = forget_quality(a, a + 5.0)
    assert shifted < 1e-20  # exact KS p-value for fully separated 50 vs 50 samples is 2/C(100,50)
    assert shifted == pytest.approx(2 / math.comb(100, 50), rel=1e-6)
    # rank-based: using 1/R (as the official code does) gives the same p-value
    rng = np.random.default_rng(1)
    x, y = rng.uniform(0.2, 2, 40), rng.uniform(0.3, 2.5, 40)
    assert forget_quality(x, y) == pytest.approx(forget_quality(1 / x, 1 / y))
    with pytest.raises(DataError):
        forget_quality([], [1.0])


def test_relative_answer_prob() -> None:
    assert relative_answer_prob(0.5, [0.1, 0.4]) == pytest.approx(0.5)
    np.testing.assert_allclose(relative_answer_prob([0.5, 0.2], [[0.1, 0.4], [0.2, 0.4]]), [0.5, 0.25])


def test_model_utility_is_harmonic_mean_and_zero_if_any_zero() -> None:
    assert model_utility([0.5, 0.25, 1.0]) == pytest.approx(3 / 7)
    assert model_utility([0.9, 0.0, 0.8]) == 0.0
    assert model_utility([0.4]) == pytest.approx(0.4)
    with pytest.raises(DataError):
        model_utility([])
    with pytest.raises(DataError):
        model_utility([0.5, -0.1])


def test_rouge_l_recall_hand_strings() -> None:
    # LCS = the cat on the mat (5 of the 6 reference tokens)
    assert rouge_l_recall("The cat sat on the mat", "the cat was on the mat") == pytest.approx(5 / 6)
    assert rouge_l_recall("Paris.", "paris") == 1.0  # case and punctuation ignored
    assert rouge_l_recall("mat the on", "the mat") == pytest.approx(0.5)  # order matters
    assert rouge_l_recall("", "the mat") == 0.0
    assert rouge_l_recall("the answer is Zoë Müller", "Zoë Müller") == 1.0
    with pytest.raises(DataError, match="no word tokens"):
        rouge_l_recall("x", "...")


def test_bootstrap_ci_is_seeded_and_sane() -> None:
    values = np.random.default_rng(3).normal(loc=2.0, scale=1.0, size=200)
    ci = bootstrap_ci(values, n_boot=500, seed=0)
    assert ci == bootstrap_ci(values, n_boot=500, seed=0)
    assert ci != bootstrap_ci(values, n_boot=500, seed=1)
    assert ci.low < ci.estimate < ci.high and ci.level == 0.95
    assert ci.estimate == pytest.approx(values.mean())
    # about 1.96 standard errors either side
    assert (ci.high - ci.low) / 2 == pytest.approx(1.96 / math.sqrt(200), rel=0.2)
    const = bootstrap_ci([0.3] * 10, stat=np.median, n_boot=50)
    assert const.low == const.high == pytest.approx(0.3)
    with pytest.raises(ConfigError) as err:
        bootstrap_ci([], n_boot=0, level=1.5)
    assert len(err.value.problems) == 3
