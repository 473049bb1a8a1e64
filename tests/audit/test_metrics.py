import numpy as np
import pytest

from obliviate.audit.metrics import accuracy, gap_closed, js_divergence, mean_ci, tug_of_war
from obliviate.audit.mia import auc, loss_threshold_attack, svc_confidence_attack
from obliviate.errors import ShapeError


def test_accuracy_from_labels_and_logits():
    assert accuracy(np.array([1, 0, 2, 2]), np.array([1, 1, 2, 0])) == 0.5
    assert accuracy(np.array([[0.1, 0.9], [0.8, 0.2]]), np.array([1, 1])) == 0.5
    with pytest.raises(ShapeError):
        accuracy(np.array([1, 2]), np.array([1]))


def test_tow_hand_computed():
    # (1-|0.90-0.88|)(1-|0.99-0.98|)(1-|0.88-0.89|) = 0.98 * 0.99 * 0.99
    assert tug_of_war((0.90, 0.99, 0.88), (0.88, 0.98, 0.89)) == pytest.approx(0.98 * 0.99 * 0.99)
    assert tug_of_war((0.5, 0.5, 0.5), (0.5, 0.5, 0.5)) == 1.0
    assert tug_of_war((1.0, 1.0, 1.0), (0.0, 1.0, 1.0)) == 0.0


def test_gap_closed():
    assert gap_closed(0.98, 0.90) == pytest.approx(0.8)
    assert gap_closed(0.85, 0.90) == pytest.approx(-0.5)
    assert np.isnan(gap_closed(1.0, 1.0))


def test_js_divergence_hand_computed():
    p = np.array([[1.0, 0.0]])
    q = np.array([[0.0, 1.0]])
    assert js_divergence(p, q) == pytest.approx(1.0)  # disjoint supports: 1 bit
    assert js_divergence(p, p) == pytest.approx(0.0)
    # p=(1/2,1/2), q=(1,0): m=(3/4,1/4); JS = 0.5*KL(p||m) + 0.5*KL(q||m)
    p2, q2 = np.array([[0.5, 0.5]]), np.array([[1.0, 0.0]])
    kl_pm = 0.5 * np.log2(0.5 / 0.75) + 0.5 * np.log2(0.5 / 0.25)
    kl_qm = np.log2(1 / 0.75)
    assert js_divergence(p2, q2) == pytest.approx(0.5 * kl_pm + 0.5 * kl_qm)
    assert js_divergence(p2, q2) == pytest.approx(js_divergence(q2, p2))
    with pytest.raises(ShapeError):
        js_divergence(p, np.ones((2, 2)) / 2)


def test_auc_hand_computed():
    # members {3, 1}, non-members {2, 0}: pairs (3>2, 3>0, 1<2, 1>0) -> 3/4
    assert auc(np.array([3.0, 1.0]), np.array([2.0, 0.0])) == pytest.approx(0.75)
    assert auc(np.array([1.0]), np.array([1.0])) == pytest.approx(0.5)


def test_loss_threshold_attack():
    members = np.array([0.1, 0.2, 0.3])
    non = np.array([1.0, 2.0, 3.0])
    # best threshold sits at 0.3: targets above it are called non-members
    assert loss_threshold_attack(members, non, np.array([0.05, 0.5, 2.5, 0.3])) == pytest.approx(0.5)


def test_svc_attack_separates_confidences():
    rng = np.random.default_rng(0)
    mem = rng.uniform(0.95, 1.0, 300)
    non = rng.uniform(0.3, 0.7, 300)
    assert svc_confidence_attack(mem, non, rng.uniform(0.3, 0.7, 100)) > 0.95
    assert svc_confidence_attack(mem, non, rng.uniform(0.95, 1.0, 100)) < 0.05


def test_mean_ci():
    mean, half = mean_ci(np.array([1.0, 2.0, 3.0]))
    # t_{0.975, 2} = 4.3027; sd = 1; half = 4.3027 / sqrt(3)
    assert mean == 2.0 and half == pytest.approx(4.302653 / np.sqrt(3), rel=1e-5)
    assert np.isnan(mean_ci(np.array([5.0]))[1])
