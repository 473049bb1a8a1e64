"""Certificates: what was done about a request, signed, checkable by anyone with the file alone.

A certificate holds the request, the decision and its reasons, the lineage (hashes of the data
and of the model before and after, the ledger entries), every step with its label (exact;
approximate with the measured audit; suppression with measured coverage and over-refusal), the
residual risks, the timings and the deadline. It is signed with the operator's Ed25519 key
(:mod:`obliviate.engine.keys`, kept outside every store) over its canonical JSON.
:func:`verify_certificate` checks the schema, the key fingerprint, the signature and every
receipt embedded in the lineage; any edit fails. What it proves: the holder of that key issued
this document unchanged. It does not prove that the steps did what they say beyond what their
own evidence shows (an exact SISA receipt can be checked against the store's ledger with
``obliviate ledger verify``; an approximate step is only as good as its measured audit).
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, ValidationError

from obliviate.config import StrictModel
from obliviate.engine.keys import SigningKey, VerifyKey, fingerprint
from obliviate.engine.ledger import canonical_json, utc_now
from obliviate.errors import LedgerError

CERTIFICATE_FORMAT = "obliviate-certificate-v1"
Outcome = Literal["honoured", "partly honoured", "not honoured"]


class StepRecord(StrictModel):
    """One step as carried out."""

    name: str
    kind: Literal["exact", "approximate", "suppression"]
    intervention: str
    label: str = Field(description="What the step achieved, with its measurement (never 'forgot' for approximate "
                                   "methods or guards).")
    honoured: bool
    guarantee: str
    residual_risks: list[str]
    measurements: dict[str, Any] = Field(default_factory=dict)
    lineage: dict[str, Any] = Field(default_factory=dict)
    seconds: float = 0.0
    problems: list[str] = Field(default_factory=list)


class Certificate(StrictModel):
    """The signed record of a handled request (its JSON Schema: :func:`certificate_schema`)."""

    format: Literal["obliviate-certificate-v1"] = CERTIFICATE_FORMAT
    certificate_id: str
    issued_at: str
    request: dict[str, Any]
    request_sha256: str
    deployment: dict[str, Any]
    decision: dict[str, Any]
    outcome: Outcome
    kinds: list[Literal["exact", "approximate", "suppression"]] = Field(
        description="The kind of every step, in order: what the certificate's evidence is worth.")
    statement: str
    steps: list[StepRecord]
    problems: list[str]
    notes: list[str]
    residual_risks: list[str]
    lineage: dict[str, Any]
    timings: dict[str, float]
    deadline: dict[str, Any]
    answered_on_time: bool
    events: list[dict[str, Any]] = Field(description="Every state change of the request (OpenDSR statuses: "
                                         "pending, in progress, completed), each with when, by whom and why.")
    public_key: str
    key_fingerprint: str
    signature: str


def certificate_schema() -> dict[str, Any]:
    schema = Certificate.model_json_schema()
    schema["$id"] = "https://obliviate.dev/schema/" + CERTIFICATE_FORMAT + ".json"
    schema["title"] = "obliviate certificate"
    return schema


def sha256_json(obj: Any) -> str:
    return "sha256:" + hashlib.sha256(canonical_json(obj).encode()).hexdigest()


def _body(doc: dict[str, Any]) -> bytes:
    return canonical_json({"certificate": {k: v for k, v in doc.items() if k != "signature"}}).encode()


def sign_certificate(doc: dict[str, Any], key: SigningKey) -> dict[str, Any]:
    """``doc`` (every field but the key and signature) with the key and its signature added."""
    doc = {**doc, "public_key": key.public.public_hex, "key_fingerprint": key.public.fingerprint,
           "signature": "", "issued_at": doc.get("issued_at") or utc_now()}
    doc = json.loads(json.dumps(doc, default=str))  # what is signed is exactly what is written
    doc["signature"] = key.sign(_body(doc))
    Certificate.model_validate(doc)  # a certificate that does not meet its own schema is a bug: fail here
    return doc


def load_certificate(path: str | os.PathLike[str]) -> dict[str, Any]:
    p = Path(path)
    try:
        doc = json.loads(p.read_text())
    except FileNotFoundError:
        raise LedgerError(f"No certificate file at {p}.") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise LedgerError(f"The certificate {p} is not JSON ({exc}): it was damaged or edited.") from None
    if not isinstance(doc, dict):
        raise LedgerError(f"The certificate {p} must be one JSON object; got {type(doc).__name__}.")
    return doc


def verify_certificate(doc: dict[str, Any], *, expected_key: VerifyKey | str | None = None) -> dict[str, Any]:
    """Check a certificate alone (LedgerError on any problem); returns a short summary.

    ``expected_key``: the operator's public key (or its ``sha256:`` fingerprint). Without it the
    certificate is only shown to be unedited since the holder of the key it names signed it.
    """
    from obliviate.engine.sisa.receipts import verify_receipt

    if doc.get("format") != CERTIFICATE_FORMAT:
        raise LedgerError(f"This is not an obliviate certificate (format {doc.get('format')!r}, expected "
                          f"{CERTIFICATE_FORMAT!r}).")
    try:
        Certificate.model_validate(doc)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise LedgerError(f"The certificate does not match its schema at {where}: {first['msg']}; it was "
                          "edited or damaged.") from None
    try:
        key = VerifyKey(str(doc["public_key"]))
        fp = fingerprint(key.public_hex)
    except ValueError:
        raise LedgerError("The certificate's public key is not hex: it was edited.") from None
    if fp != doc["key_fingerprint"]:
        raise LedgerError("The certificate's key fingerprint does not match its public key: it was edited.")
    if expected_key is not None:
        want = expected_key if isinstance(expected_key, str) else expected_key.fingerprint
        if fp != want:
            raise LedgerError(f"The certificate is signed by the key {fp}, not by the expected {want}: it was not "
                              "issued by that operator (or was re-signed).")
    if not key.verify(_body(doc), str(doc["signature"])):
        raise LedgerError("The certificate's signature does not verify: it was edited after it was signed.")
    if sha256_json(doc["request"]) != doc["request_sha256"]:  # pragma: no cover - the signature covers both
        raise LedgerError("The certificate's request does not match its hash.")
    receipts = 0
    for step in doc["steps"]:
        receipt = step.get("lineage", {}).get("receipt")
        if receipt:
            verify_receipt(receipt, expected_fingerprint=None, source=f"receipt of step {step['name']!r}")
            receipts += 1
    return {"certificate_id": doc["certificate_id"], "outcome": doc["outcome"], "key_fingerprint": fp,
            "signer_checked": expected_key is not None, "receipts_verified": receipts,
            "request_id": doc["request"].get("request_id")}


__all__ = ["CERTIFICATE_FORMAT", "Certificate", "StepRecord", "certificate_schema", "load_certificate",
           "sha256_json", "sign_certificate", "verify_certificate"]
