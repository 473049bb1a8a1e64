"""Relearning recovery relative to the never-exposed control."""

from __future__ import annotations

import pytest

from obliviate.audit.attacks import relearn_recovery
from obliviate.errors import ConfigError


def test_hand_case():
    r = relearn_recovery(acc_before=0.10, acc_after=0.70, acc_before_control=0.12, acc_after_control=0.40)
    assert r.gain == pytest.approx(0.60)
    assert r.control_gain == pytest.approx(0.28)
    assert r.excess_recovery == pytest.approx(0.32)
    assert r.after_gap == pytest.approx(0.30)


def test_exact_unlearning_recovers_nothing_extra():
    r = relearn_recovery(0.2, 0.5, 0.2, 0.5)
    assert r.excess_recovery == 0.0 and r.after_gap == 0.0


def test_percentages_are_rejected_with_a_hint():
    with pytest.raises(ConfigError, match="divide percentages by 100") as err:
        relearn_recovery(10.0, 70.0, 0.1, 0.4)
    assert len(err.value.problems) == 2
