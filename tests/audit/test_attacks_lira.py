"""LiRA: stable logit scaling, Gaussian fits, and a strong attack at low FPR."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.special import softmax
from scipy.stats import norm

from obliviate.audit.attacks import (
    fit_gaussians,
    lira_offline,
    lira_online,
    logit_scale,
    logit_scale_from_logits,
    tpr_at_fpr,
)
from obliviate.errors import DataError, ShapeError


def test_logit_scale_values_and_clipping():
    np.testing.assert_allclose(logit_scale([0.5, 0.9, 0.1]), [0.0, np.log(9), -np.log(9)])
    out = logit_scale([0.0, 1.0])
    assert np.isfinite(out).all() and out[0] < -30 and out[1] > 30
    with pytest.raises(DataError):
        logit_scale([1.2])


def test_logit_scale_from_logits_matches_probabilities_and_stays_exact_when_confident():
    rng = np.random.default_rng(0)
    z = rng.normal(size=(50, 5))
    y = rng.integers(0, 5, size=50)
    p = softmax(z, axis=1)[np.arange(50), y]
    np.testing.assert_allclose(logit_scale_from_logits(z, y), np.log(p) - np.log1p(-p), rtol=1e-10)
    # p_y rounds to 1 in float64, but the log-odds are exactly 100 - log(2)
    assert logit_scale_from_logits(np.array([[100.0, 0.0, 0.0]]), np.array([0]))[0] == pytest.approx(100 - np.log(2))
    with pytest.raises(DataError):
        logit_scale_from_logits(z, y + 5)
    with pytest.raises(ShapeError):
        logit_scale_from_logits(z, y[:10])


def test_fit_gaussians_per_example_and_global():
    scores = np.array([[1.0, 10.0], [3.0, 12.0], [5.0, 20.0]])
    mask = np.array([[1, 1], [1, 1], [1, 0]], bool)
    mean, std = fit_gaussians(scores, mask)
    np.testing.assert_allclose(mean, [3.0, 11.0])
    np.testing.assert_allclose(std, [2.0, np.sqrt(2.0)])
    # global: squared deviations 4+0+4 and 1+1 over (5 values - 2 means) dof
    mean_g, std_g = fit_gaussians(scores, mask, fix_variance=True)
    np.testing.assert_allclose(std_g, [np.sqrt(10 / 3)] * 2)
    with pytest.raises(DataError, match="fix_variance"):
        fit_gaussians(scores, np.array([[1, 1], [0, 0], [0, 0]], bool))


def test_online_is_the_gaussian_log_likelihood_ratio():
    shadow = np.array([[2.0], [4.0], [0.0], [1.0]])
    mask = np.array([[1], [1], [0], [0]], bool)
    t = np.array([3.0])
    mu_in, sd_in = 3.0, np.sqrt(2.0)
    mu_out, sd_out = 0.5, np.sqrt(0.5)
    want = norm.logpdf(3.0, mu_in, sd_in) - norm.logpdf(3.0, mu_out, sd_out)
    assert lira_online(t, shadow, mask)[0] == pytest.approx(want)
    # offline: -log of the one-sided p-value under the out Gaussian
    assert lira_offline(t, shadow, mask)[0] == pytest.approx(-norm.logsf(3.0, mu_out, sd_out))
    # several target models at once
    assert lira_online(np.array([[3.0], [0.0]]), shadow, mask).shape == (2, 1)
    with pytest.raises(ShapeError):
        lira_online(np.zeros(3), shadow, mask)


def _simulate(rng, n, m):
    """Per-example score distributions that differ a lot between examples.

    Example i has out-mean mu_i ~ N(0, 3^2), spread sd_i ~ U(0.2, 1), and a
    membership shift: large for 10% of examples (memorised), small otherwise.
    Each example is in exactly half of the m shadow models (the paper's design).
    """
    mu = rng.normal(0, 3, n)
    sd = rng.uniform(0.2, 1.0, n)
    shift = np.where(rng.random(n) < 0.1, 3.0, 0.2) * sd * 2
    mask = np.argsort(rng.random((m, n)), axis=0) < m // 2
    shadow = mu + shift * mask + sd * rng.normal(size=(m, n))
    member = rng.random(n) < 0.5
    target = mu + shift * member + sd * rng.normal(size=n)
    return target, shadow, mask, member


def test_lira_beats_global_threshold_at_low_fpr():
    rng = np.random.default_rng(7)
    target, shadow, mask, member = _simulate(rng, n=5000, m=32)
    baseline = tpr_at_fpr(target, member, 0.01)  # one global threshold on the raw score
    online = tpr_at_fpr(lira_online(target, shadow, mask), member, 0.01)
    offline = tpr_at_fpr(lira_offline(target, shadow, mask), member, 0.01)
    assert baseline < 0.03  # the raw score is nearly useless at 1% FPR here
    assert online > 3 * baseline and online > 0.05
    assert offline > 3 * baseline


def test_global_variance_rescues_few_shadows():
    rng = np.random.default_rng(8)
    target, shadow, mask, member = _simulate(rng, n=5000, m=4)  # 2 in, 2 out per example
    per_example = tpr_at_fpr(lira_online(target, shadow, mask), member, 0.01)
    pooled = tpr_at_fpr(lira_online(target, shadow, mask, fix_variance=True), member, 0.01)
    assert pooled > per_example
    assert pooled > 2 * tpr_at_fpr(target, member, 0.01)
