"""Checking a store's ledger: its chain and signatures, the heads its model versions
recorded, and the receipts requesters hold (``obliviate ledger verify``)."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from typing import Any

from obliviate.engine.keys import SigningKey, VerifyKey, default_key_path
from obliviate.engine.ledger import Ledger, VerifyReport, canonical_json
from obliviate.engine.sisa.receipts import check_receipt_in_ledger, load_receipt, verify_receipt
from obliviate.engine.store import ModelStore
from obliviate.errors import LedgerError


def _version_message(ledger_id: str, doc: dict[str, Any]) -> bytes:
    return canonical_json({"ledger": ledger_id, "model_version": {k: v for k, v in doc.items() if k != "signature"}}
                          ).encode()


def sign_version(doc: dict[str, Any], ledger: Ledger) -> dict[str, Any]:
    """``doc`` (a model version document) with the ledger key's signature over it and the ledger id.

    Signed, a version's list of applied requests and its ledger head cannot be edited by
    someone without the key, so a ledger cut back to before them is detected.
    """
    doc = json.loads(json.dumps(doc, default=str))  # exactly what the file will hold
    doc.pop("signature", None)
    return {**doc, "signature": ledger.signing_key().sign(_version_message(ledger.ledger_id, doc))}


def check_ledger(ledger: Ledger, version: dict[str, Any] | None, *,
                 expected_key: VerifyKey | None = None) -> VerifyReport:
    """Verify the ledger's chain and signatures, the served model ``version``'s signature, and
    that the ledger still holds the entry that version was published after and every request
    it applied (a chain alone cannot show that its tail was cut off). Raises :class:`LedgerError`."""
    report = ledger.verify(expected_key)
    if not version:
        return report
    where = f"model version {version.get('version')}"
    key = expected_key or ledger.public_key()
    if key is None or not key.verify(_version_message(ledger.ledger_id, version), str(version.get("signature"))):
        raise LedgerError(f"The {where} document is not signed by the ledger's key {key.fingerprint if key else ''}: "
                          "it was edited, or it belongs to another store. Restore the store from a backup.")
    seq, head = version.get("ledger_head") or (0, None)
    if seq and ledger.hash_at(seq) != head:
        raise LedgerError(f"The ledger {ledger.path} does not contain entry #{seq}, which {where} was published "
                          "after: the ledger was truncated or replaced. Restore it from a backup.")
    for rid in version.get("requests", []):
        req = ledger.get(rid)
        if req is None or req.status not in ("applying", "applied"):
            raise LedgerError(f"Request {rid!r}, applied in {where}, is "
                              f"{'missing from' if req is None else req.status + ' in'} the ledger {ledger.path}: the "
                              "ledger was truncated or edited. Restore it from a backup.")
    newer = [r.request_id for r in ledger.requests(status="applied")
             if r.version_after is not None and r.version_after > int(version.get("version", 0))]
    if newer:
        raise LedgerError(f"The store serves {where}, but the ledger records request {newer[0]!r} applied in a later "
                          "version: the store was rolled back to an older model, which holds data a request asked "
                          "to forget. Restore the current store from a backup, or run the request again.")
    return report


def _expected_key(key_file: str | os.PathLike[str] | None, expected_fingerprint: str | None,
                  receipt_keys: list[VerifyKey]) -> VerifyKey | None:
    """The key the ledger must be signed with: the key file, else the receipts' key, else the default key file."""
    key: VerifyKey | None = None
    if key_file is not None:
        key = SigningKey.load(key_file).public
    elif receipt_keys:
        key = receipt_keys[0]
    elif default_key_path().is_file():
        key = SigningKey.load(default_key_path()).public
    for other in receipt_keys:
        if key is not None and other != key:
            raise LedgerError(f"A receipt is signed by the key {other.fingerprint}, not by the store's key "
                              f"{key.fingerprint}: it was not issued for this ledger, or the ledger was re-signed.")
    if expected_fingerprint is not None and key is not None and key.fingerprint != expected_fingerprint:
        raise LedgerError(f"The key {key.fingerprint} is not the expected {expected_fingerprint}.")
    return key


def verify_store_ledger(store: str | os.PathLike[str], *, key_file: str | os.PathLike[str] | None = None,
                        receipts: Sequence[str | os.PathLike[str] | dict[str, Any]] = (),
                        expected_fingerprint: str | None = None) -> VerifyReport:
    """``obliviate ledger verify``: check a store's ledger without loading its data or models.

    Checks the chain and every signature against the expected key (``key_file``, else the
    receipts' key, else the default key file), that the ledger is the store's own and still
    reaches the head of the served model version, and that every receipt's request is in
    the ledger, unaltered and applied. Raises :class:`LedgerError` on the first failure.
    """
    files = ModelStore(store)
    if not files.ledger_path.is_file():
        raise LedgerError(f"No ledger at {files.ledger_path}. Is {files.root} a store made by `obliviate sisa train`? "
                          "If it is, its ledger was deleted: restore it from a backup.")
    docs = [(str(r), load_receipt(r)) if not isinstance(r, dict) else ("receipt", r) for r in receipts]
    keys = [verify_receipt(doc, expected_fingerprint=expected_fingerprint, source=f"receipt {name}")
            for name, doc in docs]
    expected = _expected_key(key_file, expected_fingerprint, keys)
    version = files.current_version()
    with Ledger(files.ledger_path, create=False) as ledger:
        if files.exists():
            recorded = files.read_config().get("ledger_id")
            if recorded is not None and recorded != ledger.ledger_id:
                raise LedgerError(f"The ledger {files.ledger_path} is {ledger.ledger_id}, but the store was created "
                                  f"with {recorded}: the ledger was replaced (e.g. by another store's).")
        report = check_ledger(ledger, None if version is None else files.read_version(version), expected_key=expected)
        checked = [{**check_receipt_in_ledger(ledger, doc, source=f"receipt {name}"), "receipt": name}
                   for name, doc in docs]
    return VerifyReport(report.n_events, report.n_requests, report.head, report.statuses, report.ledger_id,
                        report.key_fingerprint, report.key_expected, checked)


__all__ = ["check_ledger", "sign_version", "verify_store_ledger"]
