"""The request ledger: durable, idempotent, hash-chained, tamper-evident."""

import sqlite3

import pytest

from obliviate.engine.ledger import GENESIS, Ledger, derive_request_id, entry_hash
from obliviate.errors import LedgerError


@pytest.fixture
def ledger(tmp_path):
    with Ledger(tmp_path / "ledger.sqlite") as led:
        yield led


def _fill(ledger):
    a, _ = ledger.submit(example_ids=["x1", "x2"], subject="alice", reason="gdpr", request_id="r1")
    ledger.mark_applying("r1", version_before=1)
    ledger.mark_applied("r1", version_after=2, checkpoints={"0": ["k1"]}, timings={"seconds": 1.5},
                        result={"shards_retrained": [0]})
    ledger.submit(example_ids=["x3"], subject="bob", reason=None, request_id="r2")
    return a


def test_wal_mode_and_durable_before_return(tmp_path, ledger):
    assert ledger._db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert ledger._db.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
    req, created = ledger.submit(example_ids=["a", "b"], subject="s", reason="why")
    assert created and req.status == "received" and req.example_ids == ["a", "b"]
    # Another connection (another process would do the same) sees it the moment submit returns.
    with Ledger(tmp_path / "ledger.sqlite") as other:
        seen = other.get(req.request_id)
    assert seen is not None and seen.status == "received" and seen.received_at == req.received_at


def test_resubmission_is_idempotent(ledger):
    first, created = ledger.submit(example_ids=["a", "b"], subject="s", reason="why")
    again, created_again = ledger.submit(example_ids=["b", "a"], subject="s", reason="why")
    assert created and not created_again and again == first
    assert first.request_id == derive_request_id("s", ["a", "b"], "why")
    assert len(ledger.events()) == 1
    named, _ = ledger.submit(example_ids=["c"], request_id="client-42")
    assert ledger.submit(example_ids=["c"], request_id="client-42") == (named, False)


def test_status_transitions_and_record(ledger):
    _fill(ledger)
    r1 = ledger.get("r1")
    assert (r1.status, r1.version_before, r1.version_after, r1.attempts) == ("applied", 1, 2, 1)
    assert r1.checkpoints == {"0": ["k1"]} and r1.timings == {"seconds": 1.5}
    assert [r.request_id for r in ledger.pending()] == ["r2"]
    with pytest.raises(LedgerError, match="cannot become 'applying'"):
        ledger.mark_applying("r1", version_before=2)  # applied is final
    with pytest.raises(LedgerError, match="No request"):
        ledger.mark_applied("nope", version_after=3)
    # A crash mid-apply: applying again is a resumed attempt.
    ledger.mark_applying("r2", version_before=2)
    ledger.mark_applying("r2", version_before=2)
    assert ledger.get("r2").attempts == 2
    ledger.mark_failed("r2", error="boom")
    ledger.mark_applying("r2", version_before=2)  # a failed request may be retried
    ev = ledger.record("trained", {"version": 1})
    assert ev.request_id is None
    assert ledger.verify().statuses == {"applied": 1, "applying": 1}


def test_chain_links_every_entry(ledger):
    _fill(ledger)
    events = ledger.events()
    assert events[0].prev_hash == GENESIS
    for prev, ev in zip(events, events[1:]):
        assert ev.prev_hash == prev.entry_hash
    report = ledger.verify()
    assert report.n_events == len(events) == 4 and report.n_requests == 2 and report.head == events[-1].entry_hash
    assert ledger.head() == (4, events[-1].entry_hash)


@pytest.mark.parametrize("edit, message", [
    ("UPDATE events SET payload = replace(payload, 'x2', 'x9') WHERE seq = 1", "entry #1.*was edited"),
    ("UPDATE events SET kind = 'failed' WHERE seq = 3", "entry #3"),
    ("DELETE FROM events WHERE seq = 2", "expected entry #2"),
    ("UPDATE requests SET status = 'applied' WHERE request_id = 'r2'", "r2.*status"),
    ("UPDATE requests SET example_ids = '[\"x1\"]' WHERE request_id = 'r1'", "r1.*example_ids"),
    ("INSERT INTO requests SELECT 'r9', subject, example_ids, reason, received_at, status, version_before, "
     "version_after, checkpoints, timings, result, error, attempts, first_seq, entry_hash FROM requests "
     "WHERE request_id = 'r1'", "r9.*inserted by hand"),
    ("DELETE FROM requests WHERE request_id = 'r1'", "r1.*row was deleted"),
])
def test_tampering_is_detected(tmp_path, edit, message):
    path = tmp_path / "ledger.sqlite"
    with Ledger(path) as led:
        _fill(led)
    db = sqlite3.connect(path)
    db.execute(edit)
    db.commit()
    db.close()
    with Ledger(path) as led, pytest.raises(LedgerError, match=message):
        led.verify()


def test_rehashed_edit_breaks_the_next_link(tmp_path):
    """Editing an entry and recomputing its own hash breaks its signature (and the next link)."""
    path = tmp_path / "ledger.sqlite"
    with Ledger(path) as led:
        _fill(led)
    db = sqlite3.connect(path)
    seq, rid, kind, at, payload, prev = db.execute(
        "SELECT seq, request_id, kind, at, payload, prev_hash FROM events WHERE seq = 1").fetchone()
    payload = payload.replace("x2", "x9")
    db.execute("UPDATE events SET payload = ?, entry_hash = ? WHERE seq = 1",
               (payload, entry_hash(seq, rid, kind, at, payload, prev)))
    db.commit()
    db.close()
    with Ledger(path) as led, pytest.raises(LedgerError, match="entry #1.*signature does not verify"):
        led.verify()


def test_append_refuses_a_tampered_tail(tmp_path):
    path = tmp_path / "ledger.sqlite"
    with Ledger(path) as led:
        _fill(led)
    db = sqlite3.connect(path)
    db.execute("UPDATE events SET payload = '{}' WHERE seq = 4")
    db.commit()
    db.close()
    with Ledger(path) as led, pytest.raises(LedgerError, match="last entry"):
        led.submit(example_ids=["z"])


def test_not_a_ledger(tmp_path):
    bad = tmp_path / "ledger.sqlite"
    bad.write_bytes(b"this is not a database" * 100)
    with pytest.raises(LedgerError, match="Cannot open the ledger"):
        Ledger(bad)
