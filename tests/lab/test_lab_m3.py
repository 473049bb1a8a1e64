import re

import numpy as np
import pytest

from obliviate.errors import ConfigError, DataError
from obliviate.lab.m3_model_not_outputs import ORIGINAL, RETRAIN, M3Config, _claim, leak_curve


def test_leak_curve_counts_questions_with_a_hit_among_the_first_n_samples():
    hits = np.array([[0, 0, 1, 0], [1, 0, 0, 0], [0, 0, 0, 0]], dtype=bool)
    assert leak_curve(hits).tolist() == pytest.approx([1 / 3, 1 / 3, 2 / 3, 2 / 3])
    with pytest.raises(DataError):
        leak_curve(np.zeros(3, dtype=bool))


@pytest.fixture(scope="module")
def result(quick):
    return quick("m3")


def test_more_samples_find_at_least_what_one_found_and_kinds_are_labelled(result):
    m = result.measured
    approx = "graddiff (approximate)"
    assert result.kind == {ORIGINAL: "none", approx: "approximate", RETRAIN: "exact"}
    for who in (ORIGINAL, approx, RETRAIN):
        curve = list(m[f"curve: {who}"].values())
        assert curve == sorted(curve)  # more samples never find less
        assert m[who]["sampled_leak_16"] >= m[who]["sampled_leak_1"]
    # the original holds the answers; the unlearning method's and the retrain's greedy answers mostly do not
    assert m[ORIGINAL]["sampled_leak_16"] > 0.8
    assert m[approx]["greedy_leak"] < m[ORIGINAL]["greedy_leak"]
    assert m[ORIGINAL]["prefix_rest_rouge"] > m[RETRAIN]["prefix_rest_rouge"]
    rows = [r for r in result.rows if "n_samples" in r]
    assert {r["kind"] for r in rows} == {"none", "approximate", "exact"}


def test_the_claim_is_written_from_the_numbers(result):
    m = result.measured
    approx = "graddiff (approximate)"
    assert f"{m[approx]['sampled_leak_16']:.0%}" in result.claim
    assert f"{m[approx]['prefix_rest_rouge']:.2f}" in result.claim
    assert not re.search(r"\b(forgot|forgets|removed)\b", result.claim)
    fake = {k: dict(v) for k, v in m.items()}
    cfg = M3Config(samples=16)
    fake[approx].update(greedy_leak=0.0, sampled_leak_16=0.5)
    fake[RETRAIN].update(sampled_leak_16=0.1)
    assert "understates what graddiff left extractable" in _claim(cfg, fake, approx)
    fake[RETRAIN].update(sampled_leak_16=0.5)
    assert "no more than the retain-only model reaches by guessing" in _claim(cfg, fake, approx)
    fake[approx].update(sampled_leak_16=0.0)
    assert "found little" in _claim(cfg, fake, approx)


def test_bad_config_lists_every_problem():
    from obliviate.lab import EXPERIMENTS

    with pytest.raises(ConfigError) as e:
        EXPERIMENTS.get("m3").config({"method": "gradif", "samples": 0})
    assert "did you mean" in str(e.value) and "samples" in str(e.value)
    with pytest.raises(ConfigError, match="does not run on language models|choose an approximate one"):
        EXPERIMENTS.get("m3").config({"method": "retrain"})
