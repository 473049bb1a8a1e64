import re

import pytest

from obliviate.errors import ConfigError
from obliviate.lab.m1_suppression_not_removal import GUARDED, RETRAIN, M1Config, _claim


@pytest.fixture(scope="module")
def result(quick):
    return quick("m1")


def test_the_guard_blocks_direct_leaks_while_the_weights_keep_the_answers(result):
    g, r = result.measured[GUARDED], result.measured[RETRAIN]
    assert g["direct_leak_guard_on"] <= 0.05  # the guard keeps direct answers out of the outputs
    assert g["whitebox_rouge"] > r["whitebox_rouge"] + 0.3  # the guard is not in the weights
    assert g["mia_loss_auc"] > r["mia_loss_auc"]
    assert g["sampled_leak_any"] > r["sampled_leak_any"]
    assert g["sampled_leak_any_guard_on"] <= g["sampled_leak_any"]
    assert g["relearn_rouge_after"] > r["relearn_rouge_after"]
    # split-and-ask: each half passes the exact guard, the halves read together leak
    assert result.measured["evasion_guarded_scripted"]["split"] > 0.5
    assert result.measured["evasion_guarded_scripted"]["direct"] == 0.0


def test_every_row_and_model_says_its_kind(result):
    assert set(result.kind.values()) == {"suppression", "none", "exact"}
    kinds = {row["model"]: row["kind"] for row in result.rows if "family" not in row}
    assert kinds[GUARDED] == "suppression" and kinds[RETRAIN] == "exact"
    assert kinds[f"{GUARDED}, guard off"] == "none"


def test_the_claim_is_written_from_the_numbers(result):
    g, r = result.measured[GUARDED], result.measured[RETRAIN]
    assert f"ROUGE-L {g['whitebox_rouge']:.2f} against {r['whitebox_rouge']:.2f}" in result.claim
    assert f"AUC {g['mia_loss_auc']:.2f}" in result.claim
    assert not re.search(r"\b(forgot|forgets|removed)\b", result.claim)  # says what ran and what was measured
    m = {k: dict(v) for k, v in result.measured.items()}
    m[GUARDED]["direct_leak_guard_on"] = 0.5
    assert "did not even keep the direct answers" in _claim(M1Config(), m)
    m[GUARDED]["direct_leak_guard_on"] = 0.0
    m[GUARDED]["whitebox_rouge"] = m[RETRAIN]["whitebox_rouge"]
    assert "did not memorise them" in _claim(M1Config(), m)


def test_bad_config_lists_every_problem():
    from obliviate.lab import EXPERIMENTS

    with pytest.raises(ConfigError) as e:
        EXPERIMENTS.get("m1").config({"guards": ["exakt"], "families": ["nope"], "samples": 0})
    text = str(e.value)
    assert "did you mean 'exact'" in text and "'nope'" in text and "samples" in text
