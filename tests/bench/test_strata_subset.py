"""Training subsets and the per-memorisation-stratum breakdown of bench results."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from obliviate.audit.outputs import Outputs
from obliviate.tasks.classification import stratum_metrics
from obliviate.cli.main import app
from obliviate.errors import DataError

runner = CliRunner()


def _outputs(pred: list[int], labels: list[int]) -> Outputs:
    probs = np.eye(3)[pred] * 0.8 + 0.1 / 1.5
    return Outputs(probs=probs / probs.sum(1, keepdims=True), labels=np.asarray(labels))


def test_stratum_metrics_by_hand():
    labels = [0, 0, 1, 1, 2, 2]
    strata = np.array([0, 0, 1, 1, 2, 2])
    original = _outputs([0, 0, 1, 1, 2, 2], labels)    # remembers everything
    retrain = _outputs([0, 0, 1, 0, 0, 1], labels)     # accuracy low 1.0, mid 0.5, high 0.0
    method = _outputs([0, 0, 1, 1, 2, 0], labels)      # accuracy low 1.0, mid 1.0, high 0.5
    m = stratum_metrics(method, original, retrain, strata)
    assert (m["ua_low"], m["ua_mid"], m["ua_high"]) == (0.0, 0.0, 0.5)   # UA = 1 - accuracy
    assert np.isnan(m["gap_closed_low"])               # original already matches retrain there
    assert m["gap_closed_mid"] == pytest.approx(0.0)   # |1 - .5| / |1 - .5| -> nothing closed
    assert m["gap_closed_high"] == pytest.approx(0.5)  # 1 - |.5 - 0| / |1 - 0|
    m_empty = stratum_metrics(method, original, retrain, np.array([0, 0, 0, 0, 1, 1]))
    assert np.isnan(m_empty["ua_high"]) and np.isnan(m_empty["gap_closed_high"])


def test_stratified_sample_keeps_class_shares(digits):
    train = digits.train
    sub = train.stratified_sample(500, seed=3)
    assert len(sub) == 500 and len(set(sub.ids)) == 500 and set(sub.ids) <= set(train.ids)
    share = np.bincount(train.y, minlength=10) / len(train)
    sub_share = np.bincount(sub.y, minlength=10) / 500
    assert np.abs(share - sub_share).max() < 0.01
    assert list(sub.ids) == list(train.stratified_sample(500, seed=3).ids)
    assert list(sub.ids) != list(train.stratified_sample(500, seed=4).ids)
    for bad in (0, len(train), len(train) + 5):
        with pytest.raises(DataError, match="cannot draw a subset"):
            train.stratified_sample(bad, seed=0)


@pytest.mark.slow
def test_bench_with_subset_and_strata(tmp_path):
    out = tmp_path / "run"
    res = runner.invoke(app, ["bench", "--dataset", "digits", "--methods", "finetune", "--seeds", "1",
                              "--train-subset", "600", "--strata", "--forget", "random:0.2", "--epochs", "8",
                              "--out", str(out), "--no-progress", "--threads", "1"])
    assert res.exit_code == 0, res.output
    meta = json.loads((out / "meta.json").read_text())
    assert meta["n_train"] == 600
    per = meta["seeds"]["0"]["forget_per_stratum"]
    assert sum(per.values()) == 120 and set(per) == {"low", "mid", "high"}
    records = json.loads((out / "results.json").read_text())
    by = {r["method"]: r for r in records}
    # retrain closes its own gap in full wherever there is one
    assert all(by["retrain"][f"gap_closed_{s}"] in (None, 1.0) for s in ("low", "mid", "high"))
    # forget accuracy of the UA columns is consistent with the overall UA
    for r in records:
        ua = sum(per[s] * r[f"ua_{s}"] for s in per if per[s]) / 120
        assert ua == pytest.approx(1 - r["forget_acc"], abs=1e-9)
    # the original differs from retrain most on the high-memorisation tercile
    assert by["retrain"]["ua_high"] - by["original"]["ua_high"] >= by["retrain"]["ua_low"] - by["original"]["ua_low"]
    md = (out / "report.md").read_text()
    assert "## By memorisation stratum" in md and "| finetune |" in md.split("## By memorisation stratum")[1]
    assert "By memorisation stratum" in (out / "report.html").read_text()


def test_records_flag_methods_that_changed_nothing_or_collapsed():
    """Issue 17: a method that left every prediction as it was, and one at the majority-class rate, are flagged."""
    import numpy as np

    from obliviate.audit.evaluate import SplitOutputs
    from obliviate.audit.outputs import Outputs
    from obliviate.tasks.classification import change_flags

    rng = np.random.default_rng(0)
    labels = rng.integers(0, 3, 60)
    probs = rng.dirichlet(np.ones(3), size=60)
    orig = SplitOutputs(*(Outputs(probs, labels) for _ in range(3)))
    same = change_flags(orig, orig)
    assert same["pred_changed"] == 0
    majority = int(np.bincount(labels).argmax())
    flat = np.zeros_like(probs)
    flat[:, majority] = 1.0
    collapsed = change_flags(SplitOutputs(*(Outputs(flat, labels) for _ in range(3))), orig)
    assert collapsed["collapsed"] is True and collapsed["pred_changed"] > 0
