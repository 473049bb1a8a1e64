"""SISA: placement, aggregation, exact forgetting (bit for bit), batching, bad input."""

import json
import shutil
import sqlite3

import numpy as np
import pytest
import torch

from obliviate.data import ArrayDataset
from obliviate.engine.sisa import (
    AGGREGATORS,
    PLACEMENTS,
    ErasureRequest,
    Sisa,
    SisaConfig,
    train_shard_reference,
    verify_store_ledger,
)
from obliviate.errors import CheckpointError, ConfigError, DataError, ForgetSetError, LedgerError
from obliviate.models import ModelSpec
from obliviate.training import Recipe

CONFIG = SisaConfig(shards=3, slices=3, model=ModelSpec("mlp", {"hidden": [32]}),
                    recipe=Recipe(epochs=6, batch_size=64, lr=1e-2), seed=0)


@pytest.fixture(scope="module")
def trained(digits, tmp_path_factory):
    root = tmp_path_factory.mktemp("sisa") / "store"
    Sisa(CONFIG, store=root).fit(digits.train, source={"dataset": "digits"}).close()
    return root


@pytest.fixture
def sisa(trained, tmp_path, digits):
    root = tmp_path / "store"
    shutil.copytree(trained, root)
    with Sisa.open(root, data=digits.train) as s:
        yield s


def _slice_of(sisa, shard, r):
    return sisa.assignment()[shard][r]


def _snapshot(sisa):
    root = sisa.files_.root
    db = sqlite3.connect(root / "ledger.sqlite")
    events = db.execute("SELECT count(*) FROM events").fetchone()[0]
    db.close()
    files = sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file() and "ledger" not in p.name)
    return sisa.version_, events, files, (root / "current.json").read_text()


# ---------------------------------------------------------------- config, placement, aggregation
def test_config_lists_every_problem():
    with pytest.raises(ConfigError) as err:
        SisaConfig(shards=0, slices=-1, placement="random", aggregation="avg", threads=0)
    text = str(err.value)
    for name in ("shards", "slices", "placement", "aggregation", "threads"):
        assert f"The '{name}' parameter of SisaConfig" in text
    cfg = SisaConfig(shards=8, slices=4, recipe=Recipe(epochs=20))
    assert cfg.epochs_per_slice == 8  # 2R/(R+1) * e/R
    assert cfg.ideal_speedup() == pytest.approx(8 / (2 / 3 + 1 / 12))
    assert SisaConfig.from_dict(cfg.to_dict()) == cfg


def test_uniform_placement_is_a_seeded_partition():
    ids = np.array([f"i{k}" for k in range(103)])
    a = PLACEMENTS.get("uniform")(ids, None, 4, 3, 7)
    rows = np.concatenate([s for shard in a for s in shard])
    assert sorted(rows.tolist()) == list(range(103))
    assert {sum(len(s) for s in shard) for shard in a} <= {25, 26}
    b = PLACEMENTS.get("uniform")(ids, None, 4, 3, 7)
    assert all(np.array_equal(x, y) for sa, sb in zip(a, b) for x, y in zip(sa, sb))


def test_subject_placement_keeps_each_person_in_one_shard():
    rng = np.random.default_rng(0)
    subjects = np.array([f"p{k}" for k in rng.integers(0, 40, size=500)])
    ids = np.array([f"i{k}" for k in range(500)])
    a = PLACEMENTS.get("subject")(ids, subjects, 5, 2, 0)
    shard_of = {}
    for k, shard in enumerate(a):
        for s in shard:
            for subj in subjects[s]:
                assert shard_of.setdefault(subj, k) == k
    sizes = [sum(len(s) for s in shard) for shard in a]
    assert sum(sizes) == 500 and max(sizes) - min(sizes) <= max(np.unique(subjects, return_counts=True)[1])
    with pytest.raises(ConfigError, match="needs a dataset with subjects"):
        PLACEMENTS.get("subject")(ids, None, 5, 2, 0)


def test_aggregators():
    probs = np.array([[[0.6, 0.4]], [[0.45, 0.55]], [[0.1, 0.9]], [[0.7, 0.3]]])  # 4 shards, 1 example
    sizes = np.array([1.0, 1.0, 1.0, 5.0])
    vote = AGGREGATORS.get("vote")(probs, sizes)
    assert vote.sum() == pytest.approx(1) and vote.argmax() == 1  # 2-2 tie, broken by mean softmax (0.54)
    assert AGGREGATORS.get("mean")(probs, sizes)[0] == pytest.approx([0.4625, 0.5375])
    weighted = AGGREGATORS.get("weighted")(probs, sizes)
    assert weighted.argmax() == 0 and weighted.sum() == pytest.approx(1)


# ---------------------------------------------------------------- exactness
def test_forget_equals_training_the_shard_from_scratch_bit_for_bit(sisa, digits):
    before = sisa.current()
    gone = [_slice_of(sisa, 0, 1)[3], _slice_of(sisa, 2, 2)[0]]  # shard 0 slice 2, shard 2 slice 3
    # planned before retraining: shard 0 slices 2-3 and shard 2 slice 3 at their live sizes
    sizes = [np.cumsum([len(s) for s in shard]) for shard in sisa.assignment()]
    planned = (sizes[0][1] - 1 + sizes[0][2] - 1 + sizes[2][2] - 1) * CONFIG.epochs_per_slice
    expected = planned / (len(digits.train) * CONFIG.recipe.epochs)
    assert sisa.expected_work_fraction(gone) == pytest.approx(expected)
    assert sisa.version_ == 1 and sisa.ledger_.requests() == []  # estimating changes nothing
    with pytest.raises(ForgetSetError, match="nope-1"):
        sisa.expected_work_fraction(["nope-1"])
    receipt = sisa.forget(gone, reason="test")
    assert receipt.expected_work_fraction == pytest.approx(expected) == pytest.approx(receipt.work_fraction)
    assert receipt.status == "applied" and not receipt.duplicate
    assert (receipt.model_version_before, receipt.model_version_after) == (1, 2)
    assert receipt.shards_retrained == [0, 2]
    assert receipt.slices_replayed == 2 + 1 and receipt.slices_reused == 0
    after = sisa.current()
    # Untouched: shard 1 entirely, and the slices before the first affected one.
    assert after["shards"][1] == before["shards"][1]
    assert after["shards"][0]["slices"][0] == before["shards"][0]["slices"][0]
    assert after["shards"][2]["slices"][:2] == before["shards"][2]["slices"][:2]
    assert after["shards"][0]["slices"][1]["key"] != before["shards"][0]["slices"][1]["key"]
    for k in range(3):
        ref = train_shard_reference(digits.train, CONFIG, k, forgotten=gone)
        got = sisa.shard_weights(k)
        assert ref.keys() == got.keys()
        for name in ref:
            assert torch.equal(ref[name], got[name]), f"shard {k} {name} differs from a from-scratch retrain"


def test_batched_requests_are_grouped_per_shard_and_equal_sequential(sisa, trained, tmp_path, digits):
    reqs = [ErasureRequest([_slice_of(sisa, 0, 2)[0]], subject="a"),
            ErasureRequest([_slice_of(sisa, 0, 0)[1]], subject="b"),
            ErasureRequest([_slice_of(sisa, 1, 1)[2]], subject="c", request_id="client-c")]
    receipts = sisa.forget_many(reqs)
    assert [r.model_version_after for r in receipts] == [2, 2, 2]
    assert receipts[2].request_id == "client-c"
    assert receipts[0].shards_retrained == [0, 1]
    assert receipts[0].slices_replayed == 3 + 2  # shard 0 from slice 1 (once), shard 1 from slice 2
    # the batch's planned work, not the single-deletion average the ideal speed-up assumes
    assert receipts[0].expected_work_fraction == pytest.approx(receipts[0].work_fraction)
    assert receipts[0].expected_work_fraction > 1.5 * (2 / 3 + 1 / 9) / 3
    assert sorted(receipts[0].batch) == sorted(r.request_id for r in receipts)
    seq_root = tmp_path / "sequential"
    shutil.copytree(trained, seq_root)
    with Sisa.open(seq_root, data=digits.train) as seq:
        for r in reqs:
            seq.forget(r.ids, subject=r.subject, request_id=r.request_id)
        assert seq.version_ == 4
        assert [s["slices"] for s in seq.current()["shards"]] == [s["slices"] for s in sisa.current()["shards"]]


def test_resubmission_is_idempotent(sisa):
    first = sisa.forget(["train-3"], subject="alice", reason="gdpr")
    again = sisa.forget(["train-3"], subject="alice", reason="gdpr")
    assert again.duplicate and again.request_id == first.request_id and again.model_version_after == 2
    assert sisa.version_ == 2 and len(sisa.ledger_.requests()) == 1
    named = sisa.forget(["train-17"], request_id="client-1")
    assert sisa.forget(["train-17"], request_id="client-1").duplicate
    assert sisa.forget(request_id="client-1").model_version_after == named.model_version_after == 3
    with pytest.raises(ForgetSetError, match="already used for a different request"):
        sisa.forget(["train-18"], request_id="client-1")


def test_submit_then_recover_applies_once(sisa):
    r = sisa.submit(["train-3", "train-17"], reason="later")
    assert r.status == "received" and sisa.version_ == 1
    assert sisa.status()["pending"] == [r.request_id]
    applied = sisa.recover()
    assert [a.status for a in applied] == ["applied"] and sisa.version_ == 2
    assert sisa.recover() == [] and sisa.version_ == 2
    assert sisa.ledger_.get(r.request_id).attempts == 1


def test_a_version_left_unswitched_by_a_crash_is_replaced(sisa):
    (sisa.files_.root / "versions" / "2.json").write_text('{"version": 2, "half": "written"}')
    assert sisa.forget(["train-3"]).model_version_after == 2
    assert "half" not in sisa.current() and sisa.current()["forgotten"] == ["train-3"]


def test_forget_removes_checkpoints_holding_the_data(sisa):
    gone = _slice_of(sisa, 1, 0)[0]
    old_keys = {s["key"] for s in sisa.current()["shards"][1]["slices"]}
    sisa.forget([gone])
    assert all(not sisa.files_.checkpoint_path(k).exists() for k in old_keys)
    assert gone in sisa.current()["forgotten"]


def test_subject_erasure_touches_one_shard(digits, tmp_path):
    subjects = np.array([f"p{i % 60}" for i in range(len(digits.train))])
    data = ArrayDataset(digits.train.x, digits.train.y, digits.train.ids, subjects=subjects, name="digits-people")
    cfg = SisaConfig(shards=4, slices=2, placement="subject", model=CONFIG.model, recipe=Recipe(epochs=2, batch_size=64))
    with Sisa(cfg, store=tmp_path / "s").fit(data) as sisa:
        receipt = sisa.forget(subject="p7", reason="art. 17")
        assert len(receipt.shards_retrained) == 1
        assert sorted(receipt.example_ids) == sorted(data.ids[subjects == "p7"])
    with pytest.raises(ConfigError, match="does not record where its training data"):
        Sisa.open(tmp_path / "s").forget(["train-0"])


@pytest.mark.parametrize("aggregation", ["vote", "mean", "weighted"])
def test_predictions_follow_the_served_version(trained, tmp_path, digits, aggregation):
    root = tmp_path / "s"
    shutil.copytree(trained, root)
    cfg = json.loads((root / "store.json").read_text())
    cfg["config"]["aggregation"] = aggregation
    (root / "store.json").write_text(json.dumps(cfg))
    with Sisa.open(root) as s:  # data reloaded from the recorded source
        proba = s.predict_proba(digits.test.x)
        assert proba.shape == (len(digits.test), 10) and np.allclose(proba.sum(1), 1)
        assert s.score(digits.test) > 0.8


# ---------------------------------------------------------------- bad input changes nothing
@pytest.mark.parametrize("call, error, message", [
    (lambda s: s.forget(["train-3", "nope-1"]), ForgetSetError, "not in digits-train"),
    (lambda s: s.forget([]), ForgetSetError, "needs example ids or a subject"),
    (lambda s: s.forget(["train-3", "train-3"]), ForgetSetError, "more than once"),
    (lambda s: s.forget(subject="alice"), ForgetSetError, "no subjects"),
    (lambda s: s.forget(list(s.data_.ids)), ForgetSetError, "every training example"),
])
def test_bad_requests_change_nothing(sisa, call, error, message):
    before = _snapshot(sisa)
    with pytest.raises(error, match=message):
        call(sisa)
    assert _snapshot(sisa) == before


def test_already_forgotten_ids_are_refused(sisa):
    sisa.forget(["train-3"], reason="first")
    before = _snapshot(sisa)
    with pytest.raises(ForgetSetError, match="already forgotten.*train-3"):
        sisa.forget(["train-17", "train-3"], reason="second")
    assert _snapshot(sisa) == before


def test_corrupt_checkpoint_is_refused_before_anything_is_recorded(sisa):
    target = _slice_of(sisa, 0, 2)[0]  # retraining shard 0 starts from its slice-2 checkpoint
    start = sisa.current()["shards"][0]["slices"][1]["key"]
    path = sisa.files_.checkpoint_path(start)
    path.write_bytes(path.read_bytes()[:-8] + b"garbage!")
    before = _snapshot(sisa)
    with pytest.raises(CheckpointError, match="corrupt or was modified"):
        sisa.forget([target])
    assert _snapshot(sisa) == before and sisa.ledger_.requests() == []
    last = sisa.current()["shards"][2]["slices"][-1]["key"]
    sisa.files_.checkpoint_path(last).write_bytes(b"not safetensors")
    with pytest.raises(CheckpointError, match="does not match"):
        sisa.predict(sisa.data_.x[:3])


def test_edited_ledger_blocks_forgetting(sisa):
    sisa.forget(["train-3"])
    db = sqlite3.connect(sisa.files_.ledger_path)
    db.execute("UPDATE requests SET reason = 'nothing to see' WHERE 1")
    db.commit()
    db.close()
    before = _snapshot(sisa)
    with pytest.raises(LedgerError, match="reason were edited"):
        sisa.forget(["train-17"])
    assert _snapshot(sisa) == before
    with pytest.raises(LedgerError):
        verify_store_ledger(sisa.files_.root)


def test_truncated_ledger_is_detected(sisa):
    sisa.forget(["train-3"])  # version 2 records the ledger head it was published after
    db = sqlite3.connect(sisa.files_.ledger_path)
    db.execute("DELETE FROM events WHERE request_id IS NOT NULL")
    db.execute("DELETE FROM requests")
    db.commit()
    db.close()
    with pytest.raises(LedgerError, match="truncated or replaced"):
        verify_store_ledger(sisa.files_.root)


def test_store_errors(trained, tmp_path, digits):
    with pytest.raises(ConfigError, match="already holds a trained SISA model"):
        Sisa(CONFIG, store=trained).fit(digits.train)
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x.txt").write_text("hi")
    with pytest.raises(ConfigError, match="not empty"):
        Sisa(CONFIG, store=tmp_path / "full").fit(digits.train)
    with pytest.raises(ConfigError, match="No store configuration"):
        Sisa.open(tmp_path / "missing")
    other = digits.train.subset(np.arange(100))
    with pytest.raises(DataError, match="not the data it was trained on"):
        Sisa.open(trained, data=other).forget(["train-3"])


def test_forget_takes_the_shared_forget_request(sisa):
    """SISA takes the same ForgetRequest as the bench and obliviate.forget, resolved on the store's data."""
    from obliviate.data.request import ForgetRequest

    receipt = sisa.forget(ForgetRequest(ids=["train-5", "train-8"]), reason="gdpr")
    assert sorted(receipt.example_ids) == ["train-5", "train-8"] and receipt.status == "applied"
    again = sisa.forget(ForgetRequest(ids=["train-8", "train-5"]), reason="gdpr")
    assert again.duplicate
    with pytest.raises(ForgetSetError, match="'nope'"):
        sisa.forget(ForgetRequest(ids=["nope"]))
