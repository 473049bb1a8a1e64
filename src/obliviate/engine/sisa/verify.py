"""Checking a store's ledger: its chain and signatures, the heads its model versions
recorded, and the receipts requesters hold (``obliviate ledger verify``)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

from obliviate.engine.keys import SigningKey, VerifyKey, default_key_path
from obliviate.engine.ledger import Ledger, VerifyReport
from obliviate.engine.sisa.receipts import check_receipt_in_ledger, load_receipt, verify_receipt
from obliviate.engine.store import ModelStore
from obliviate.errors import LedgerError


def check_ledger(ledger: Ledger, version: dict[str, Any] | None, *,
                 expected_key: VerifyKey | None = None) -> VerifyReport:
    """Verify the ledger's chain and signatures, and that it still holds the entry ``version``
    was published after (a chain alone cannot show that its tail was cut off). Raises
    :class:`LedgerError`."""
    report = ledger.verify(expected_key)
    version = version or {}
    seq, head = version.get("ledger_head") or (0, None)
    if seq and ledger.hash_at(seq) != head:
        raise LedgerError(f"The ledger {ledger.path} does not contain entry #{seq}, which model version "
                          f"{version.get('version')} was published after: the ledger was truncated or replaced. "
                          "Restore it from a backup.")
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


__all__ = ["check_ledger", "verify_store_ledger"]
