"""ROC utilities: known AUCs, hand-computed TPR at FPR, agreement with scikit-learn."""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy.stats import norm

from obliviate.audit.attacks import AttackResult, auc, plot_roc, roc_curve, tpr_at_fpr
from obliviate.errors import ConfigError, DataError, ShapeError

HAND_SCORES = np.array([0.9, 0.8, 0.7, 0.6, 0.5, 0.4])
HAND_LABELS = np.array([1, 1, 0, 1, 0, 0])


@pytest.mark.parametrize("d", [0.0, 0.5, 1.0, 2.0])
def test_auc_of_two_unit_gaussians_matches_phi_d_over_sqrt2(d):
    rng = np.random.default_rng(1)
    n = 20_000
    scores = np.r_[rng.normal(d, 1.0, n), rng.normal(0.0, 1.0, n)]
    labels = np.r_[np.ones(n, bool), np.zeros(n, bool)]
    assert auc(scores, labels) == pytest.approx(norm.cdf(d / np.sqrt(2)), abs=0.01)


def test_hand_case_auc_and_tpr_at_fpr():
    # members 0.9, 0.8, 0.6 vs non-members 0.7, 0.5, 0.4: 8 of 9 pairs ordered
    assert auc(HAND_SCORES, HAND_LABELS) == pytest.approx(8 / 9)
    assert tpr_at_fpr(HAND_SCORES, HAND_LABELS, 0.0) == pytest.approx(2 / 3)
    assert tpr_at_fpr(HAND_SCORES, HAND_LABELS, 0.3) == pytest.approx(2 / 3)
    assert tpr_at_fpr(HAND_SCORES, HAND_LABELS, 1 / 3) == pytest.approx(1.0)
    fpr, tpr, thr = roc_curve(HAND_SCORES, HAND_LABELS)
    np.testing.assert_allclose(fpr, [0, 0, 0, 1 / 3, 1 / 3, 2 / 3, 1])
    np.testing.assert_allclose(tpr, [0, 1 / 3, 2 / 3, 2 / 3, 1, 1, 1])
    assert thr[0] == np.inf


def test_higher_score_means_member_so_negating_flips_auc():
    assert auc(-HAND_SCORES, HAND_LABELS) == pytest.approx(1 - 8 / 9)


def test_ties_are_one_threshold():
    fpr, tpr, _ = roc_curve(np.zeros(6), HAND_LABELS)
    np.testing.assert_allclose(fpr, [0, 1])
    np.testing.assert_allclose(tpr, [0, 1])
    assert auc(np.zeros(6), HAND_LABELS) == 0.5


def test_matches_sklearn_on_random_data_with_ties():
    sk = pytest.importorskip("sklearn.metrics")
    rng = np.random.default_rng(3)
    scores = np.round(rng.normal(size=500), 1)  # many ties
    labels = rng.random(500) < 0.3
    fpr, tpr, thr = roc_curve(scores, labels)
    sk_fpr, sk_tpr, sk_thr = sk.roc_curve(labels, scores, drop_intermediate=False)
    np.testing.assert_allclose(fpr, sk_fpr)
    np.testing.assert_allclose(tpr, sk_tpr)
    np.testing.assert_allclose(thr[1:], sk_thr[1:])
    assert auc(scores, labels) == pytest.approx(sk.roc_auc_score(labels, scores))


def test_attack_result_fields_and_json():
    rng = np.random.default_rng(4)
    scores = np.r_[rng.normal(1, 1, 3000), rng.normal(0, 1, 3000)]
    labels = np.r_[np.ones(3000), np.zeros(3000)].astype(int)
    r = AttackResult.from_scores("loss", scores, labels)
    assert (r.n_members, r.n_nonmembers) == (3000, 3000)
    assert r.auc == pytest.approx(auc(scores, labels))
    assert r.tpr_at_1pct == pytest.approx(tpr_at_fpr(scores, labels, 0.01))
    assert r.tpr_at_0_1pct <= r.tpr_at_1pct
    d = json.loads(json.dumps(r.to_dict()))
    assert d["name"] == "loss" and len(d["fpr"]) == len(r.fpr)


def test_plot_roc_log_log_and_saves(tmp_path):
    rng = np.random.default_rng(5)
    labels = np.r_[np.ones(500), np.zeros(500)]
    results = [
        AttackResult.from_scores(name, np.r_[rng.normal(d, 1, 500), rng.normal(0, 1, 500)], labels)
        for name, d in (("weak", 0.2), ("strong", 2.0))
    ]
    fig = plot_roc(results, title="test")
    ax = fig.axes[0]
    assert ax.get_xscale() == "log" and ax.get_yscale() == "log"
    assert len(ax.get_lines()) == 3  # chance + two attacks
    fig.savefig(tmp_path / "roc.png")
    assert (tmp_path / "roc.png").stat().st_size > 0


@pytest.mark.parametrize(
    "scores, labels, err",
    [
        (np.ones(4), np.ones(4), DataError),  # one class only
        (np.array([0.1, np.nan, 0.2, 0.3]), np.array([0, 1, 0, 1]), DataError),
        (np.ones(4), np.array([0, 1, 0]), ShapeError),
        (np.ones(4), np.array([0, 1, 2, 1]), DataError),
        (np.ones((2, 2)), np.ones((2, 2)), ShapeError),
    ],
)
def test_bad_inputs_raise_typed_errors(scores, labels, err):
    with pytest.raises(err):
        auc(scores, labels)


def test_bad_fpr_and_empty_plot():
    with pytest.raises(ConfigError, match="'fpr'"):
        tpr_at_fpr(HAND_SCORES, HAND_LABELS, 1.5)
    with pytest.raises(ConfigError):
        plot_roc([])
