"""Tampering with a real store's signed ledger and receipts: every case is detected.

Each test edits the real files (``ledger.sqlite`` with sqlite3, receipts and ``store.json``
as JSON) the way someone who can write the store folder, but does not hold the signing
key, would, recomputing the hash chain where that would have hidden the edit before.
"""

import json
import os
import shutil
import sqlite3

import pytest

from obliviate.engine.keys import SigningKey
from obliviate.engine.ledger import GENESIS, Ledger, entry_hash, signed_message
from obliviate.engine.sisa import Sisa, SisaConfig, verify_receipt, verify_store_ledger
from obliviate.errors import ConfigError, LedgerError
from obliviate.models import ModelSpec
from obliviate.training import Recipe

CONFIG = SisaConfig(shards=2, slices=1, model=ModelSpec("mlp", {"hidden": [16]}),
                    recipe=Recipe(epochs=2, batch_size=128, lr=1e-2), seed=0)


def _make_store(root, digits):
    with Sisa(CONFIG, store=root) as s:
        s.fit(digits.train, source={"dataset": "digits"})
        receipts = [s.forget([f"train-{i}"], reason=f"r{i}", request_id=f"req-{k}").to_dict()
                    for k, i in enumerate((3, 17, 40))]
    return receipts


@pytest.fixture(scope="module")
def built(digits, tmp_path_factory):
    base = tmp_path_factory.mktemp("tamper")
    receipts_a = _make_store(base / "a", digits)
    receipts_b = _make_store(base / "b", digits)
    return base, receipts_a, receipts_b


@pytest.fixture
def store(built, tmp_path):
    base, receipts, _ = built
    root = tmp_path / "store"
    shutil.copytree(base / "a", root)
    paths = []
    for k, r in enumerate(receipts):
        p = tmp_path / f"receipt-{k}.json"
        p.write_text(json.dumps(r))
        paths.append(p)
    return root, paths


def _sql(root, *statements):
    db = sqlite3.connect(root / "ledger.sqlite")
    for st in statements:
        db.execute(st)
    db.commit()
    db.close()


def _rechain(root):
    """What an attacker without the key does after editing events: renumber and recompute every
    hash and link (the signatures cannot be recomputed, so the old ones are kept)."""
    db = sqlite3.connect(root / "ledger.sqlite")
    rows = db.execute("SELECT seq, request_id, kind, at, payload, signature FROM events ORDER BY seq").fetchall()
    db.execute("DELETE FROM events")
    prev = GENESIS
    for new_seq, (_, rid, kind, at, payload, sig) in enumerate(rows, start=1):
        h = entry_hash(new_seq, rid, kind, at, payload, prev)
        db.execute("INSERT INTO events VALUES (?, ?, ?, ?, ?, ?, ?, ?)", (new_seq, rid, kind, at, payload, prev, h, sig))
        prev = h
    db.commit()
    db.close()


def _drop_request_rows(root, rid):
    """Keep the requests table consistent with the chain, as a careful attacker would."""
    _sql(root, f"DELETE FROM requests WHERE request_id = '{rid}'", f"DELETE FROM events WHERE request_id = '{rid}'")


def _verify(root, receipts):
    return verify_store_ledger(root, receipts=receipts)


def test_clean_store_and_receipts_verify(store):
    root, receipts = store
    report = _verify(root, receipts)
    assert report.n_requests == 3 and report.key_expected
    assert [r["request_id"] for r in report.receipts] == ["req-0", "req-1", "req-2"]
    assert all(r["status"] == "applied" for r in report.receipts)
    # the receipt alone checks out with the key it names
    doc = json.loads(receipts[0].read_text())
    assert verify_receipt(doc).fingerprint == doc["key_fingerprint"]


@pytest.mark.parametrize("victim", ["req-0", "req-1", "req-2"])
def test_erasing_a_request_with_the_chain_recomputed_is_detected(store, victim):
    root, receipts = store
    _drop_request_rows(root, victim)
    _rechain(root)
    with pytest.raises(LedgerError, match="signature does not verify|not in the ledger|does not reach|truncated"):
        _verify(root, receipts)
    # even the operator's own check without any receipt sees it (signatures)
    if victim != "req-2":
        with pytest.raises(LedgerError, match="signature does not verify"):
            verify_store_ledger(root)


def test_deleting_the_last_entry_is_caught_by_its_receipt(store):
    root, receipts = store
    _sql(root, "DELETE FROM events WHERE seq = (SELECT max(seq) FROM events)")
    # the requests table is then out of step with the chain; make it consistent too
    db = sqlite3.connect(root / "ledger.sqlite")
    db.execute("UPDATE requests SET status = 'applying', version_after = NULL, checkpoints = NULL, timings = NULL, "
               "result = NULL, entry_hash = (SELECT entry_hash FROM events WHERE request_id = 'req-2' "
               "ORDER BY seq DESC LIMIT 1) WHERE request_id = 'req-2'")
    db.commit()
    db.close()
    with pytest.raises(LedgerError, match="does not reach entry"):
        _verify(root, receipts[2:])


def test_truncating_the_ledger_is_detected(store):
    root, receipts = store
    _drop_request_rows(root, "req-2")
    with pytest.raises(LedgerError, match="does not reach entry|not contain entry"):
        _verify(root, receipts)
    with pytest.raises(LedgerError, match="truncated"):
        verify_store_ledger(root)  # model version 4 recorded a later head


def test_erasing_the_last_request_is_detected_without_receipts(store):
    """The served model version is signed and lists the requests it applied: a ledger cut back
    to before them is caught by the operator's own check, no receipt needed."""
    root, _ = store
    _drop_request_rows(root, "req-2")  # the tail: what remains is a valid, signed chain
    with pytest.raises(LedgerError, match="truncated"):
        verify_store_ledger(root)
    db = sqlite3.connect(root / "ledger.sqlite")
    head = list(db.execute("SELECT seq, entry_hash FROM events ORDER BY seq DESC LIMIT 1").fetchone())
    db.close()
    doc = json.loads((root / "versions" / "4.json").read_text())
    (root / "versions" / "4.json").write_text(json.dumps({**doc, "ledger_head": head,
                                                          "requests": doc["requests"][:-1]}))
    with pytest.raises(LedgerError, match="not signed"):
        verify_store_ledger(root)


def test_editing_or_rolling_back_a_model_version_is_detected(store):
    root, receipts = store
    doc = json.loads((root / "versions" / "4.json").read_text())
    (root / "versions" / "4.json").write_text(json.dumps({**doc, "requests": doc["requests"][:-1]}))
    with pytest.raises(LedgerError, match="model version 4 document is not signed"):
        verify_store_ledger(root)
    (root / "versions" / "4.json").write_text(json.dumps(doc))
    verify_store_ledger(root)
    # serve an older version again (a rollback to a model that still holds forgotten data)
    (root / "current.json").write_text(json.dumps({"version": 3}))
    with pytest.raises(LedgerError, match="rolled back"):
        verify_store_ledger(root)


def test_reordering_entries_is_detected(store):
    root, receipts = store
    _sql(root, "UPDATE events SET seq = -1 WHERE seq = 3", "UPDATE events SET seq = 3 WHERE seq = 4",
         "UPDATE events SET seq = 4 WHERE seq = -1")
    with pytest.raises(LedgerError, match="entry #3"):
        verify_store_ledger(root)
    _rechain(root)
    with pytest.raises(LedgerError, match="signature does not verify"):
        _verify(root, receipts)


def test_editing_a_payload_is_detected_even_when_rehashed(store):
    root, receipts = store
    _sql(root, "UPDATE events SET payload = replace(payload, 'train-17', 'train-18') WHERE request_id = 'req-1'",
         "UPDATE requests SET example_ids = replace(example_ids, 'train-17', 'train-18') WHERE request_id = 'req-1'")
    with pytest.raises(LedgerError, match="was edited"):
        verify_store_ledger(root)
    _rechain(root)
    with pytest.raises(LedgerError, match="signature does not verify"):
        _verify(root, receipts)


def test_editing_a_hash_is_detected(store):
    root, _ = store
    _sql(root, "UPDATE events SET entry_hash = '" + "f" * 64 + "' WHERE seq = 2")
    with pytest.raises(LedgerError, match="entry #2"):
        verify_store_ledger(root)


def test_resigning_with_another_key_is_detected(store):
    """Someone who can write the store re-signs the whole ledger with a key of their own."""
    root, receipts = store
    forger = SigningKey.generate()
    db = sqlite3.connect(root / "ledger.sqlite")
    ledger_id = db.execute("SELECT value FROM meta WHERE key = 'ledger_id'").fetchone()[0]
    for seq, h in db.execute("SELECT seq, entry_hash FROM events").fetchall():
        db.execute("UPDATE events SET signature = ? WHERE seq = ?", (forger.sign(signed_message(ledger_id, seq, h)), seq))
    db.execute("UPDATE meta SET value = ? WHERE key = 'public_key'", (forger.public.public_hex,))
    db.commit()
    db.close()
    with pytest.raises(LedgerError, match="not the expected"):
        verify_store_ledger(root)  # against the operator's key file
    with pytest.raises(LedgerError, match="not the expected"):
        _verify(root, receipts)  # against the requesters' receipts
    with Sisa.open(root) as s:
        with pytest.raises(LedgerError, match="not the expected"):
            s.status()  # against the key file, which exists
        with pytest.raises(LedgerError, match="not the expected"):
            s.recover()  # a writer checks against the key it signs with


def test_replaced_or_edited_receipts_are_detected(store, built, tmp_path):
    root, receipts = store
    doc = json.loads(receipts[1].read_text())
    edited = dict(doc, example_ids=["train-99"])
    with pytest.raises(LedgerError, match="signature does not verify"):
        _verify(root, [edited])
    forged_head = dict(doc, head={**doc["head"], "seq": 1})
    with pytest.raises(LedgerError, match="signature does not verify"):
        _verify(root, [forged_head])
    # a genuine receipt from another store is not a receipt of this one
    other = built[2][1]
    with pytest.raises(LedgerError, match="was issued by ledger"):
        _verify(root, [other])
    # a receipt re-signed by someone else's key, presented with the operator's fingerprint
    forger = SigningKey.generate()
    from obliviate.engine.sisa.receipts import _sign

    fake = dict(edited, public_key=forger.public.public_hex, key_fingerprint=forger.public.fingerprint)
    fake["signature"] = _sign(forger, fake)
    with pytest.raises(LedgerError, match="not by the expected"):
        verify_receipt(fake, expected_fingerprint=doc["key_fingerprint"])
    with pytest.raises(LedgerError, match="entry signature does not verify|not by the store's key"):
        _verify(root, [fake])
    with pytest.raises(LedgerError, match="lacks"):
        _verify(root, [{"request_id": "x"}])
    bad = tmp_path / "bad.json"
    bad.write_text("not json")
    with pytest.raises(LedgerError, match="not JSON"):
        _verify(root, [bad])


def test_swapping_two_stores_ledgers_is_detected(store, built):
    root, receipts = store
    base = built[0]
    for suffix in ("", "-wal", "-shm"):
        (root / f"ledger.sqlite{suffix}").unlink(missing_ok=True)
    shutil.copy(base / "b" / "ledger.sqlite", root / "ledger.sqlite")
    with pytest.raises(LedgerError, match="was replaced"):
        verify_store_ledger(root)
    with pytest.raises(LedgerError, match="was replaced"):
        Sisa.open(root)
    # swap store.json too: the model versions' heads no longer match the ledger, nor do the receipts
    shutil.copy(base / "b" / "store.json", root / "store.json")
    with pytest.raises(LedgerError, match="was issued by ledger|truncated or replaced|belongs to another store"):
        _verify(root, receipts)


def test_replaying_an_old_request_is_detected_or_ignored(store, digits):
    root, receipts = store
    # a copy of request 0's signed 'received' entry appended at the end of the chain
    db = sqlite3.connect(root / "ledger.sqlite")
    seq, rid, kind, at, payload, _, _, sig = db.execute("SELECT * FROM events WHERE seq = 2").fetchone()
    last, prev = db.execute("SELECT seq, entry_hash FROM events ORDER BY seq DESC LIMIT 1").fetchone()
    h = entry_hash(last + 1, rid, kind, at, payload, prev)
    db.execute("INSERT INTO events VALUES (?, ?, ?, ?, ?, ?, ?, ?)", (last + 1, rid, kind, at, payload, prev, h, sig))
    db.commit()
    db.close()
    with pytest.raises(LedgerError, match=f"entry #{last + 1}.*signature does not verify"):
        verify_store_ledger(root)


def test_resending_a_request_is_not_applied_twice(store, digits):
    root, receipts = store
    with Sisa.open(root, data=digits.train) as s:
        before = len(s.ledger_.events())
        again = s.forget(["train-3"], reason="r3", request_id="req-0")
        assert again.duplicate and again.status == "applied" and len(s.ledger_.events()) == before
    _verify(root, receipts)


def test_deleted_ledger_is_an_error_not_an_empty_one(store):
    root, _ = store
    (root / "ledger.sqlite").unlink()
    for suffix in ("-wal", "-shm"):
        (root / f"ledger.sqlite{suffix}").unlink(missing_ok=True)
    with pytest.raises(LedgerError, match="deleted"):
        Sisa.open(root)
    with pytest.raises(LedgerError, match="No ledger"):
        verify_store_ledger(root)
    assert not (root / "ledger.sqlite").exists()  # nothing recreated it


def test_key_files_are_guarded(store, tmp_path):
    root, _ = store
    loose = tmp_path / "loose.pem"
    SigningKey.load_or_create(loose)
    assert (os.stat(loose).st_mode & 0o777) == 0o600
    os.chmod(loose, 0o644)
    with pytest.raises(LedgerError, match="chmod 600"):
        SigningKey.load(loose)
    other = tmp_path / "other.pem"
    with Sisa.open(root, key_file=other) as s, pytest.raises(LedgerError, match="signed with the key"):
        s.forget(["train-5"])
    assert verify_store_ledger(root).n_requests == 3  # nothing was written
    with pytest.raises(LedgerError, match="No ledger signing key"):
        SigningKey.load(tmp_path / "absent.pem")


def test_unsigned_old_ledger_is_refused(tmp_path):
    path = tmp_path / "ledger.sqlite"
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
    db.execute("INSERT INTO meta VALUES ('schema', '1')")
    db.commit()
    db.close()
    with pytest.raises(LedgerError, match="format '1'"):
        Ledger(path)


def test_existing_folder_is_refused_unless_overwrite(tmp_path, digits):
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "notes.txt").write_text("keep me")
    with pytest.raises(ConfigError, match="not a SISA store.*--overwrite"):
        Sisa(CONFIG, store=folder).fit(digits.train)
    with Sisa(CONFIG, store=folder) as s:
        s.fit(digits.train, overwrite=True)
    assert (folder / "notes.txt").read_text() == "keep me"  # only the store's own files are touched
    with pytest.raises(ConfigError, match="already holds"):
        Sisa(CONFIG, store=folder).fit(digits.train)
