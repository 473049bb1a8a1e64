import math

import numpy as np
import pytest
import torch

from obliviate.lab.forging import ForgingConfig, _closest_batch, _linear_problem, _params, least_squares_case, sgd


@pytest.fixture(scope="module")
def result(quick):
    return quick("forging")


def test_a_point_on_the_least_squares_fit_leaves_it_unchanged():
    ls = least_squares_case(ForgingConfig())
    assert ls["on_line_residual"] < 1e-9
    assert ls["on_line_coef_change"] < 1e-9
    assert ls["off_line_coef_change"] > 1e-3  # a point off the line does move it


def test_forged_steps_never_use_the_target_and_match_the_gradient_better_than_chance():
    cfg = ForgingConfig(linear_n=96, batch_size=16)
    prob = _linear_problem(cfg)
    params = _params(prob.module)
    honest = torch.arange(16)  # holds the target, row 0
    others = torch.arange(1, 96)
    picked, gap = _closest_batch(prob, params, honest, others, 50, torch.Generator().manual_seed(0))
    assert 0 not in picked.tolist() and len(picked) == 16
    _, gap_one = _closest_batch(prob, params, honest, others, 1, torch.Generator().manual_seed(0))
    assert gap <= gap_one  # the best of 50 random batches is at least as close as one


def test_the_honest_run_is_deterministic_and_the_order_matters():
    cfg = ForgingConfig(linear_n=96)
    prob = _linear_problem(cfg)
    a, b, c = (sgd(prob, seed=s, epochs=1, lr=0.02, batch_size=32).params for s in (0, 0, 1))
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert any(not torch.equal(a[k], c[k]) for k in a)


def test_forging_numbers_and_claim(result):
    m = result.measured
    for model in ("mlp", "linear_sgd"):
        r = m[model]
        assert math.isfinite(r["forged_mean"]) and r["forged_mean"] > 0
        assert r["noise_mean"] > 0
        assert r["ratio"] == pytest.approx(r["forged_mean"] / r["noise_mean"])
        assert m["forged_within_noise"][model] == float(r["ratio"] < 1)
        assert f"{r['ratio']:.2f}" in result.claim and f"{r['forged_mean']:.3g}" in result.claim
    assert m["least_squares"]["on_line_coef_change"] < 1e-9
    assert f"{m['least_squares']['on_line_coef_change']:.1e}" in result.claim
    assert "audit" in result.claim and result.details["audit"] in result.claim
    assert set(result.kind.values()) <= {"exact", "none"}
    assert result.figure[:4] == b"\x89PNG" and result.seconds > 0
    assert result.config["seeds"] == 2


def test_the_audit_sentence_follows_the_ratio():
    from obliviate.lab.forging import _audit_sentence

    assert "cannot tell" in _audit_sentence({"mlp": True, "linear_sgd": True})
    assert "outside honest training noise" in _audit_sentence({"mlp": True, "linear_sgd": False})
    assert np.isfinite(ForgingConfig().off_line)


def test_the_target_bound_matches_the_digits_split():
    from obliviate.data.builtin import load_dataset
    from obliviate.lab.forging import DIGITS_TRAIN

    assert len(load_dataset("digits").train) == DIGITS_TRAIN


def test_dropping_a_target_alone_in_the_last_batch_skips_that_step():
    from obliviate.lab.forging import _order

    cfg = ForgingConfig(linear_n=65, batch_size=32)
    prob = _linear_problem(cfg)
    lonely = int(_order(65, 32, 0, 0)[-1][0])  # the one row of the last batch of epoch 0
    out = sgd(prob, seed=0, epochs=1, lr=0.02, batch_size=32, mode="drop", target=lonely)
    assert all(torch.isfinite(v).all() for v in out.params.values())
    full = sgd(prob, seed=0, epochs=1, lr=0.02, batch_size=32, target=lonely)
    assert any(not torch.equal(out.params[k], full.params[k]) for k in out.params)
