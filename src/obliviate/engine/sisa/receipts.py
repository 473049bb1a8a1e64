"""Forget requests and their signed receipts, and how a requester checks a receipt.

A receipt is what ``obliviate sisa forget`` prints. Besides what happened (status, model
versions, shards retrained, timings) it carries:

* ``ledger_id``: the ledger that recorded the request;
* ``entry``: the request's latest ledger entry at issue time (seq, hash, signature);
* ``head``: the signed head of the ledger at issue time (seq, hash, signature);
* ``public_key`` and ``key_fingerprint``: the key every signature verifies with;
* ``signature``: the key's signature over all the other fields.

:func:`verify_receipt` needs nothing but the receipt (and, to be sure whose key it is, the
fingerprint the operator publishes). :func:`check_receipt_in_ledger` then shows that a
ledger still holds the request, unaltered and applied, and still reaches the head the
receipt was issued at: erasing the request, truncating the ledger, or swapping in another
store's ledger is detected even by someone who holds the signing key.

What a receipt proves: the ledger recorded the request and the store published a model
version that was retrained without its examples. It does not prove that no other copy of
the data exists (backups, logs, the data file itself).
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from obliviate.engine.keys import SigningKey, VerifyKey, fingerprint
from obliviate.engine.ledger import Ledger, LedgerRequest, canonical_json, signed_message
from obliviate.errors import LedgerError

RECEIPT_FORMAT = "obliviate-receipt-v1"
_FIELDS_CHECKED = ("subject", "example_ids", "reason", "received_at")


@dataclass(frozen=True)
class ErasureRequest:
    """One erasure request as the ledger records it: example ids and/or a subject, a reason, an id.

    What to forget is an :class:`obliviate.data.request.ForgetRequest`; :meth:`Sisa.forget`
    resolves it against the store's data into the ids recorded here.
    """

    ids: Sequence[str] = ()
    subject: str | None = None
    reason: str | None = None
    request_id: str | None = None


@dataclass(frozen=True)
class ForgetReceipt:
    """What happened to a request; ``duplicate`` is True when it had been submitted before."""

    request_id: str
    status: str
    subject: str | None
    example_ids: list[str]
    reason: str | None
    received_at: str
    model_version_before: int | None
    model_version_after: int | None
    shards_retrained: list[int] = field(default_factory=list)
    slices_replayed: int = 0
    slices_reused: int = 0
    work_fraction: float = 0.0
    # planned before retraining (affected shards from their first affected slice); None in
    # receipts of requests applied before it was recorded
    expected_work_fraction: float | None = None
    seconds: float = 0.0
    batch: list[str] = field(default_factory=list)
    error: str | None = None
    duplicate: bool = False
    # -- what makes the receipt checkable on its own (see the module docstring)
    format: str = RECEIPT_FORMAT
    ledger_id: str | None = None
    entry: dict[str, Any] | None = None
    head: dict[str, Any] | None = None
    public_key: str | None = None
    key_fingerprint: str | None = None
    signature: str | None = None

    @classmethod
    def from_ledger(cls, req: LedgerRequest, *, duplicate: bool = False, ledger: Ledger | None = None) -> ForgetReceipt:
        """The receipt of ``req``; signed with the ledger's key when ``ledger`` is given."""
        res = req.result or {}
        receipt = cls(request_id=req.request_id, status=req.status, subject=req.subject,
                      example_ids=list(req.example_ids), reason=req.reason, received_at=req.received_at,
                      model_version_before=req.version_before, model_version_after=req.version_after,
                      shards_retrained=list(res.get("shards_retrained", [])),
                      slices_replayed=int(res.get("slices_replayed", 0)), slices_reused=int(res.get("slices_reused", 0)),
                      work_fraction=float(res.get("work_fraction", 0.0)),
                      expected_work_fraction=(None if res.get("expected_work_fraction") is None
                                              else float(res["expected_work_fraction"])),
                      seconds=float((req.timings or {}).get("seconds", 0.0)), batch=list(res.get("batch", [])),
                      error=req.error, duplicate=duplicate)
        return receipt if ledger is None else receipt.signed(ledger)

    def signed(self, ledger: Ledger) -> ForgetReceipt:
        key = ledger.signing_key()
        last = ledger.events(self.request_id)[-1]
        head = ledger.signed_head()
        doc = {**self.to_dict(), "ledger_id": ledger.ledger_id, "head": head, "public_key": key.public.public_hex,
               "key_fingerprint": key.public.fingerprint, "signature": None,
               "entry": {"seq": last.seq, "hash": last.entry_hash, "signature": last.signature}}
        doc["signature"] = _sign(key, doc)
        return ForgetReceipt(**doc)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _body(doc: dict[str, Any]) -> bytes:
    return canonical_json({"receipt": {k: v for k, v in doc.items() if k != "signature"}}).encode()


def _sign(key: SigningKey, doc: dict[str, Any]) -> str:
    return key.sign(_body(doc))


def load_receipt(path: str | os.PathLike[str]) -> dict[str, Any]:
    """A receipt file as printed by ``obliviate sisa forget`` (one JSON object)."""
    try:
        doc = json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise LedgerError(f"No receipt file at {path}.") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise LedgerError(f"The receipt {path} is not JSON ({exc}); save the output of `obliviate sisa forget`.") from None
    if not isinstance(doc, dict):
        raise LedgerError(f"The receipt {path} must be one JSON object; got {type(doc).__name__}.")
    return doc


def verify_receipt(doc: dict[str, Any], *, expected_fingerprint: str | None = None,
                   source: str = "receipt") -> VerifyKey:
    """Check a receipt by itself: its signatures verify with the key it names. Returns that key."""
    missing = [k for k in ("request_id", "ledger_id", "entry", "head", "public_key", "key_fingerprint", "signature")
               if not doc.get(k)]
    if missing:
        raise LedgerError(f"The {source} lacks {', '.join(missing)}; it is not a signed obliviate receipt "
                          "(receipts from before signed ledgers cannot be checked).")
    try:
        key = VerifyKey(str(doc["public_key"]))
        fp = fingerprint(key.public_hex)
    except ValueError:
        raise LedgerError(f"The {source}'s public key is not hex.") from None
    if fp != doc["key_fingerprint"]:
        raise LedgerError(f"The {source}'s key fingerprint does not match its public key: it was edited.")
    if expected_fingerprint is not None and fp != expected_fingerprint:
        raise LedgerError(f"The {source} is signed by the key {fp}, not by the expected {expected_fingerprint}: "
                          "it was not issued by that operator.")
    if not key.verify(_body(doc), str(doc["signature"])):
        raise LedgerError(f"The {source}'s signature does not verify: it was edited after it was issued.")
    for name in ("entry", "head"):
        part = doc[name]
        if not isinstance(part, dict) or not key.verify(
                signed_message(str(doc["ledger_id"]), int(part.get("seq", 0)), str(part.get("hash"))),
                str(part.get("signature"))):
            raise LedgerError(f"The {source}'s {name} signature does not verify: it was edited.")
    return key


def check_receipt_in_ledger(ledger: Ledger, doc: dict[str, Any], *, source: str = "receipt") -> dict[str, Any]:
    """Show that ``ledger`` (already verified) holds the receipt's request unaltered and applied.

    Raises :class:`LedgerError` on the first thing that does not hold; returns a summary.
    """
    rid = doc["request_id"]
    if doc["ledger_id"] != ledger.ledger_id:
        raise LedgerError(f"The {source} (request {rid!r}) was issued by ledger {doc['ledger_id']}, but this store's "
                          f"ledger is {ledger.ledger_id}: the ledger was replaced (e.g. by another store's).")
    head, entry = doc["head"], doc["entry"]
    if ledger.hash_at(int(head["seq"])) != head["hash"]:
        raise LedgerError(f"The ledger does not reach entry #{head['seq']}, the head the {source} (request {rid!r}) "
                          "was issued at, or holds a different entry there: it was truncated or rewritten.")
    events = {e.seq: e for e in ledger.events(rid)}
    if int(entry["seq"]) not in events or events[int(entry["seq"])].entry_hash != entry["hash"]:
        raise LedgerError(f"Request {rid!r} of the {source} is not in the ledger at entry #{entry['seq']}: it was "
                          "erased or rewritten.")
    state = ledger.replayed(rid)
    if state is None:  # pragma: no cover - the entry check above finds it first
        raise LedgerError(f"Request {rid!r} of the {source} is not in the ledger: it was erased.")
    changed = [k for k in _FIELDS_CHECKED if state[k] != doc.get(k)]
    if changed:
        raise LedgerError(f"Request {rid!r} in the ledger differs from the {source} in {', '.join(changed)}: "
                          "one of them was altered.")
    if state["status"] != "applied":
        raise LedgerError(f"Request {rid!r} of the {source} is {state['status']!r} in the ledger, not applied: "
                          "its examples are still in the served model. Run `obliviate sisa recover`.")
    if doc.get("status") == "applied" and doc.get("model_version_after") != state["version_after"]:
        raise LedgerError(f"Request {rid!r} was applied in model version {state['version_after']} per the ledger, "
                          f"but the {source} says {doc.get('model_version_after')}: one of them was altered.")
    return {"request_id": rid, "status": "applied", "model_version_after": state["version_after"],
            "entry": int(entry["seq"]), "head": int(head["seq"])}


__all__ = ["ErasureRequest", "ForgetReceipt", "check_receipt_in_ledger", "load_receipt", "verify_receipt"]
