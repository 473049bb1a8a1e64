"""Hand-computed checks of the language-model membership scores."""

from __future__ import annotations

import math
import zlib

import numpy as np
import pytest

from obliviate.audit.lm_mia import (
    loss_score,
    mia_auc,
    min_k_plus_plus_score,
    min_k_score,
    next_token_stats,
    privleak,
    tpr_at_fpr,
    zlib_length,
    zlib_score,
)
from obliviate.errors import ConfigError, DataError

LOGPROBS = [-0.1, -2.0, -0.5, -3.0, -0.2]


def test_loss_score_is_mean_logprob() -> None:
    assert loss_score(LOGPROBS) == pytest.approx(-5.8 / 5)


def test_min_k_hand_example() -> None:
    assert min_k_score(LOGPROBS, k=0.4) == pytest.approx(-2.5)  # floor(0.4*5)=2 lowest: -3, -2
    assert min_k_score(LOGPROBS, k=0.5) == pytest.approx(-2.5)  # floor(2.5) = 2, as in the reference code
    assert min_k_score(LOGPROBS, k=0.2) == pytest.approx(-3.0)
    assert min_k_score(LOGPROBS, k=0.1) == pytest.approx(-3.0)  # at least one token
    assert min_k_score(LOGPROBS, k=1.0) == pytest.approx(loss_score(LOGPROBS))
    with pytest.raises(ConfigError, match="'k'"):
        min_k_score(LOGPROBS, k=0.0)


def test_min_k_plus_plus_hand_example() -> None:
    lp = [-1.0, -2.0, -3.0, -0.5]
    mu = [-1.5, -1.0, -2.0, -1.0]
    sigma = [0.5, 1.0, 2.0, 0.25]
    # z = [1, -1, -0.5, 2]; the 2 lowest are -1 and -0.5
    assert min_k_plus_plus_score(lp, mu, sigma, k=0.5) == pytest.approx(-0.75)
    assert min_k_plus_plus_score(lp, mu, sigma, k=0.25) == pytest.approx(-1.0)
    with pytest.raises(DataError, match="one value per token"):
        min_k_plus_plus_score(lp, mu[:3], sigma, k=0.5)


def test_next_token_stats_hand_example() -> None:
    ln2 = math.log(2)
    vocab = np.log([[0.5, 0.25, 0.25], [1 / 3, 1 / 3, 1 / 3]])
    mu, sigma = next_token_stats(vocab)
    # p = (1/2, 1/4, 1/4): E[log p] = -1.5 ln2, E[(log p)^2] = 2.5 ln2^2, var = 0.25 ln2^2
    np.testing.assert_allclose(mu, [-1.5 * ln2, -math.log(3)])
    np.testing.assert_allclose(sigma, [0.5 * ln2, 0.0], atol=1e-7)
    with pytest.raises(DataError, match="log_softmax"):
        next_token_stats([[0.0, 0.0]])


def test_min_k_plus_plus_with_model_stats_prefers_likely_tokens() -> None:
    vocab = np.log(np.array([[0.7, 0.2, 0.1]] * 3))
    mu, sigma = next_token_stats(vocab)
    likely = min_k_plus_plus_score(vocab[:, 0], mu, sigma, k=1.0)
    unlikely = min_k_plus_plus_score(vocab[:, 2], mu, sigma, k=1.0)
    assert likely > 0 > unlikely


def test_zlib_score_is_loss_over_compressed_length() -> None:
    text = "Question: Where was Ana Silva born?\nAnswer: Porto"
    length = len(zlib.compress(text.encode("utf-8")))
    assert zlib_length(text) == length
    assert zlib_score([-1.0, -3.0], text) == pytest.approx(-2.0 / length)
    # same loss: the repetitive (more compressible) text looks less like a member
    assert zlib_score([-1.0], "ab" * 50) < zlib_score([-1.0], "the quick brown fox jumps over a lazy dog")
    with pytest.raises(DataError):
        zlib_score([-1.0], "")


def test_scores_reject_logits() -> None:
    with pytest.raises(DataError, match="log-probabilities"):
        loss_score([1.2, -0.3])
    with pytest.raises(DataError):
        min_k_score([])


def test_mia_auc() -> None:
    assert mia_auc([3, 4, 5], [1, 2]) == 1.0
    assert mia_auc([1, 2], [3, 4, 5]) == 0.0
    assert mia_auc([1, 1], [1, 1]) == 0.5
    assert mia_auc([1, 3], [2]) == 0.5
    with pytest.raises(DataError, match="nonmember_scores"):
        mia_auc([1.0], [])


def test_tpr_at_fpr() -> None:
    members, nonmembers = [5, 4, 1], [3, 2, 0]
    assert tpr_at_fpr(members, nonmembers, fpr=0.0) == pytest.approx(2 / 3)
    assert tpr_at_fpr(members, nonmembers, fpr=1.0) == 1.0


def test_privleak() -> None:
    assert privleak(0.6, 0.5) == pytest.approx(0.2)
    assert privleak(0.5, 0.5) == 0.0
    assert privleak(0.4, 0.5) == pytest.approx(-0.2)
    with pytest.raises(DataError, match="undefined"):
        privleak(0.5, 0.0)
    with pytest.raises(DataError, match="auc_unlearned"):
        privleak(1.5, 0.5)
