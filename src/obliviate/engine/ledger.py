# Over 450 lines: the chain, its signatures and its verification are one unit and are read together.
"""The request ledger: a durable, hash-chained record of every forget request.

SQLite in WAL mode (embedded, one file, crash-safe). Two tables:

* ``events`` is the source of truth, append-only: every state change of every request
  (``received``, ``applying``, ``applied``, ``failed``) and store-level events (``trained``)
  is one row whose ``entry_hash`` is sha256 over the canonical JSON of the row and the
  previous row's hash. Editing, inserting or deleting a row in the middle breaks the chain.
* ``requests`` is the current state of each request (id, subject, example ids, reason,
  received-at, status, model versions before and after, checkpoint hashes, timings), kept
  in the same transaction as its events; :meth:`Ledger.verify` replays the events and
  checks every row against them, so edits to this table are caught too.

Each append is one ``BEGIN IMMEDIATE`` transaction with ``synchronous=FULL``: when a method
returns, the entry is on disk (durable before acknowledged). A request id already in the
ledger is never inserted twice (idempotent re-submission).

Keyed: every event is signed with an Ed25519 key kept outside the store
(:mod:`obliviate.engine.keys`) over ``(ledger id, seq, entry hash)``, and the ledger records
its id and public key. Someone who can write the SQLite file but does not hold the key can
no longer delete, insert or edit an entry and recompute the chain: the signatures stop
verifying. The signature of the last entry is the *signed head*; a receipt carries the one
it was issued at, so its holder can show that the ledger still reaches that head.

Limitation: a chain cannot show that its *tail* was cut off (drop the last k rows of both
tables consistently and the rest still verifies); the signed heads held elsewhere (in
receipts, and the head each SISA model version records) detect that.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from obliviate.engine.keys import SigningKey, VerifyKey
from obliviate.errors import LedgerError

GENESIS = "0" * 64
SCHEMA_VERSION = "2"  # 2: signed entries (1 had an unkeyed chain)

STATUSES = ("received", "applying", "applied", "failed")
# Allowed request transitions; ``applying -> applying`` is a resumed attempt after a crash.
_TRANSITIONS: dict[str | None, tuple[str, ...]] = {
    None: ("received",),
    "received": ("applying", "failed"),
    "applying": ("applying", "applied", "failed"),
    "failed": ("applying",),
    "applied": (),
}

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS events (
    seq INTEGER PRIMARY KEY,
    request_id TEXT,
    kind TEXT NOT NULL,
    at TEXT NOT NULL,
    payload TEXT NOT NULL,
    prev_hash TEXT NOT NULL,
    entry_hash TEXT NOT NULL,
    signature TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS requests (
    request_id TEXT PRIMARY KEY,
    subject TEXT,
    example_ids TEXT NOT NULL,
    reason TEXT,
    received_at TEXT NOT NULL,
    status TEXT NOT NULL,
    version_before INTEGER,
    version_after INTEGER,
    checkpoints TEXT,
    timings TEXT,
    result TEXT,
    error TEXT,
    attempts INTEGER NOT NULL,
    first_seq INTEGER NOT NULL,
    entry_hash TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS requests_status ON requests(status);
"""

_REQUEST_COLUMNS = ("request_id", "subject", "example_ids", "reason", "received_at", "status",
                    "version_before", "version_after", "checkpoints", "timings", "result", "error",
                    "attempts", "first_seq", "entry_hash")
_JSON_COLUMNS = ("example_ids", "checkpoints", "timings", "result")


def canonical_json(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def utc_now() -> str:
    t = time.time()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + f".{int(t % 1 * 1e6):06d}Z"


def entry_hash(seq: int, request_id: str | None, kind: str, at: str, payload: str, prev_hash: str) -> str:
    """The chain hash of one event: sha256 over its canonical JSON, previous hash included."""
    blob = canonical_json({"seq": seq, "request_id": request_id, "kind": kind, "at": at,
                           "payload": payload, "prev_hash": prev_hash})
    return hashlib.sha256(blob.encode()).hexdigest()


def signed_message(ledger_id: str, seq: int, entry_hash_: str) -> bytes:
    """What the key signs for one entry: the ledger it belongs to, its position and its hash."""
    return canonical_json({"ledger": ledger_id, "seq": int(seq), "hash": entry_hash_}).encode()


def derive_request_id(subject: str | None, example_ids: list[str], reason: str | None) -> str:
    """A stable id for a request that came without one: re-sending it is then idempotent."""
    blob = canonical_json({"subject": subject, "ids": sorted(example_ids), "reason": reason})
    return "req-" + hashlib.sha256(blob.encode()).hexdigest()[:20]


@dataclass(frozen=True)
class LedgerRequest:
    """The current state of one request, as recorded."""

    request_id: str
    subject: str | None
    example_ids: list[str]
    reason: str | None
    received_at: str
    status: str
    version_before: int | None = None
    version_after: int | None = None
    checkpoints: Any = None
    timings: Any = None
    result: Any = None
    error: str | None = None
    attempts: int = 0
    first_seq: int = 0
    entry_hash: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {c: getattr(self, c) for c in _REQUEST_COLUMNS}


@dataclass(frozen=True)
class LedgerEvent:
    seq: int
    request_id: str | None
    kind: str
    at: str
    payload: dict[str, Any]
    prev_hash: str
    entry_hash: str
    signature: str = ""


@dataclass(frozen=True)
class VerifyReport:
    """What :meth:`Ledger.verify` checked: every event's hash and every request row."""

    n_events: int
    n_requests: int
    head: str
    statuses: dict[str, int] = field(default_factory=dict)
    ledger_id: str | None = None
    key_fingerprint: str | None = None
    key_expected: bool = False  # True when the key was checked against one given from outside
    receipts: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"ok": True, "events": self.n_events, "requests": self.n_requests, "head": self.head,
                "statuses": self.statuses, "ledger_id": self.ledger_id, "key_fingerprint": self.key_fingerprint,
                "key_checked_against": "given key" if self.key_expected else "the ledger's own key only",
                "receipts": self.receipts}


def _apply_event(state: dict[str, Any] | None, event: LedgerEvent) -> dict[str, Any]:
    """Replay one request event onto its state (pure; used by appends and by verify)."""
    current = None if state is None else state["status"]
    if event.kind not in _TRANSITIONS.get(current, ()):
        raise LedgerError(
            f"Request {event.request_id!r}: event #{event.seq} moves status {current!r} to "
            f"{event.kind!r}, which is not an allowed transition."
        )
    p = event.payload
    if event.kind == "received":
        return {"request_id": event.request_id, "subject": p.get("subject"), "example_ids": list(p["example_ids"]),
                "reason": p.get("reason"), "received_at": p["received_at"], "status": "received",
                "version_before": None, "version_after": None, "checkpoints": None, "timings": None,
                "result": None, "error": None, "attempts": 0, "first_seq": event.seq, "entry_hash": event.entry_hash}
    assert state is not None  # guaranteed by the transition table
    new = dict(state, status=event.kind, entry_hash=event.entry_hash)
    if event.kind == "applying":
        new.update(version_before=p.get("version_before"), attempts=state["attempts"] + 1, error=None)
    elif event.kind == "applied":
        new.update(version_after=p.get("version_after"), checkpoints=p.get("checkpoints"),
                   timings=p.get("timings"), result=p.get("result"))
    elif event.kind == "failed":
        new.update(error=p.get("error"))
    return new


class Ledger:
    """Open (creating if needed) the ledger at ``path``.

    Args:
        key: the signing key, or the path of its file; ``None`` uses the default key file
            (:func:`obliviate.engine.keys.default_key_path`). It is loaded (created if
            absent) only when something is written, so readers need no key.
        create: when False, a missing ledger is a :class:`LedgerError` instead of a new one.
        ledger_id: the id a new ledger records (default: random); ignored for an existing one.
    """

    def __init__(self, path: str | Path, *, key: SigningKey | str | Path | None = None, create: bool = True,
                 ledger_id: str | None = None) -> None:
        self.path = Path(path)
        if not create and not self.path.is_file():
            raise LedgerError(f"No ledger at {self.path}: it was deleted or moved. The store's model versions "
                              "record ledger heads, so the ledger cannot be recreated empty; restore it from a "
                              "backup.")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._key = key
        try:
            self._db = sqlite3.connect(str(self.path), timeout=60.0, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.executescript(_SCHEMA)
            self._db.execute("INSERT OR IGNORE INTO meta(key, value) VALUES ('schema', ?)", (SCHEMA_VERSION,))
            self._db.execute("INSERT OR IGNORE INTO meta(key, value) VALUES ('ledger_id', ?)",
                             (ledger_id or "ledger-" + uuid.uuid4().hex,))
            schema = self._meta("schema")
        except sqlite3.DatabaseError as exc:
            raise LedgerError(f"Cannot open the ledger {self.path}: {exc}. Is it an obliviate ledger?") from None
        if schema != SCHEMA_VERSION:
            self._db.close()
            raise LedgerError(f"The ledger {self.path} has format {schema!r}; this obliviate reads format "
                              f"{SCHEMA_VERSION!r} (signed entries). Retrain the store with this version.")

    # -- identity and key -------------------------------------------------
    def _meta(self, name: str) -> str | None:
        row = self._db.execute("SELECT value FROM meta WHERE key = ?", (name,)).fetchone()
        return None if row is None else str(row[0])

    @property
    def ledger_id(self) -> str:
        return str(self._meta("ledger_id"))

    def public_key(self) -> VerifyKey | None:
        """The public key the ledger records (set by its first write)."""
        value = self._meta("public_key")
        return None if value is None else VerifyKey(value)

    def signing_key(self) -> SigningKey:
        if not isinstance(self._key, SigningKey):
            self._key = SigningKey.load_or_create(self._key)
        return self._key

    # -- lifecycle --------------------------------------------------------
    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> Ledger:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield self._db
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    # -- appends ----------------------------------------------------------
    def _append(self, db: sqlite3.Connection, request_id: str | None, kind: str, payload: dict[str, Any]) -> LedgerEvent:
        key = self.signing_key()
        recorded = self._meta("public_key")
        if recorded is None:
            db.execute("INSERT INTO meta(key, value) VALUES ('public_key', ?)", (key.public.public_hex,))
        elif recorded != key.public.public_hex:
            raise LedgerError(f"The ledger {self.path} is signed with the key {VerifyKey(recorded).fingerprint}, "
                              f"not with {key.public.fingerprint} (from {key.path or 'the caller'}). Give the key "
                              "it was written with (--key-file or $OBLIVIATE_LEDGER_KEY); nothing was written.")
        row = db.execute("SELECT seq, request_id, kind, at, payload, prev_hash, entry_hash, signature FROM events "
                         "ORDER BY seq DESC LIMIT 1").fetchone()
        if row is None:
            seq, prev = 1, GENESIS
        else:
            if entry_hash(*row[:6]) != row[6] or not key.public.verify(
                    signed_message(self.ledger_id, row[0], row[6]), row[7]):
                raise LedgerError(f"The ledger's last entry (#{row[0]}) does not match its hash or signature: the "
                                  "ledger was edited. Run `obliviate ledger verify` and restore it from a backup.")
            seq, prev = row[0] + 1, row[6]
        text = canonical_json(payload)
        at = utc_now()
        h = entry_hash(seq, request_id, kind, at, text, prev)
        sig = key.sign(signed_message(self.ledger_id, seq, h))
        db.execute("INSERT INTO events(seq, request_id, kind, at, payload, prev_hash, entry_hash, signature) "
                   "VALUES (?, ?, ?, ?, ?, ?, ?, ?)", (seq, request_id, kind, at, text, prev, h, sig))
        return LedgerEvent(seq, request_id, kind, at, payload, prev, h, sig)

    def _transition(self, request_id: str, kind: str, payload: dict[str, Any]) -> LedgerRequest:
        with self._transaction() as db:
            state = self._state(db, request_id)
            if state is None and kind != "received":
                raise LedgerError(f"No request {request_id!r} in the ledger {self.path}.")
            if kind not in _TRANSITIONS.get(None if state is None else state["status"], ()):
                raise LedgerError(f"Request {request_id!r} is {state['status'] if state else 'absent'}; "
                                  f"it cannot become {kind!r}.")
            event = self._append(db, request_id, kind, payload)
            new = _apply_event(state, event)
            self._write_state(db, new)
        return _to_request(new)

    def submit(self, *, example_ids: list[str], subject: str | None = None, reason: str | None = None,
               request_id: str | None = None) -> tuple[LedgerRequest, bool]:
        """Record a request durably. Returns ``(request, created)``; an id already present
        returns the recorded request and ``created=False`` (nothing is written)."""
        ids = [str(i) for i in example_ids]
        rid = request_id or derive_request_id(subject, ids, reason)
        with self._transaction() as db:
            state = self._state(db, rid)
            if state is not None:
                return _to_request(state), False
            payload = {"subject": subject, "example_ids": ids, "reason": reason, "received_at": utc_now()}
            event = self._append(db, rid, "received", payload)
            new = _apply_event(None, event)
            self._write_state(db, new)
        return _to_request(new), True

    def mark_applying(self, request_id: str, *, version_before: int | None) -> LedgerRequest:
        return self._transition(request_id, "applying", {"version_before": version_before})

    def mark_applied(self, request_id: str, *, version_after: int, checkpoints: Any = None,
                     timings: Any = None, result: Any = None) -> LedgerRequest:
        return self._transition(request_id, "applied", {"version_after": version_after, "checkpoints": checkpoints,
                                                        "timings": timings, "result": result})

    def mark_failed(self, request_id: str, *, error: str) -> LedgerRequest:
        return self._transition(request_id, "failed", {"error": error})

    def record(self, kind: str, payload: dict[str, Any]) -> LedgerEvent:
        """Append a store-level event (not tied to a request), e.g. ``trained``."""
        if kind in STATUSES:
            raise LedgerError(f"{kind!r} is a request status; use the request methods to record it.")
        with self._transaction() as db:
            return self._append(db, None, kind, payload)

    # -- reads ------------------------------------------------------------
    def _state(self, db: sqlite3.Connection, request_id: str) -> dict[str, Any] | None:
        row = db.execute(f"SELECT {', '.join(_REQUEST_COLUMNS)} FROM requests WHERE request_id = ?",
                         (request_id,)).fetchone()
        return None if row is None else _row_to_state(row)

    def _write_state(self, db: sqlite3.Connection, state: dict[str, Any]) -> None:
        values = [canonical_json(state[c]) if c in _JSON_COLUMNS and state[c] is not None else state[c]
                  for c in _REQUEST_COLUMNS]
        db.execute(f"INSERT OR REPLACE INTO requests({', '.join(_REQUEST_COLUMNS)}) "
                   f"VALUES ({', '.join('?' * len(_REQUEST_COLUMNS))})", values)

    def get(self, request_id: str) -> LedgerRequest | None:
        state = self._state(self._db, request_id)
        return None if state is None else _to_request(state)

    def requests(self, *, status: str | tuple[str, ...] | None = None) -> list[LedgerRequest]:
        """Requests in the order they were received, optionally only those with ``status``."""
        rows = self._db.execute(f"SELECT {', '.join(_REQUEST_COLUMNS)} FROM requests ORDER BY first_seq").fetchall()
        wanted = (status,) if isinstance(status, str) else status
        out = [_to_request(_row_to_state(r)) for r in rows]
        return [r for r in out if wanted is None or r.status in wanted]

    def pending(self) -> list[LedgerRequest]:
        """Requests received or interrupted but not yet applied, oldest first."""
        return self.requests(status=("received", "applying"))

    def events(self, request_id: str | None = None) -> list[LedgerEvent]:
        """Every event in order (only ``request_id``'s when given)."""
        rows = self._db.execute("SELECT seq, request_id, kind, at, payload, prev_hash, entry_hash, signature "
                                "FROM events ORDER BY seq").fetchall()
        return [LedgerEvent(r[0], r[1], r[2], r[3], json.loads(r[4]), r[5], r[6], r[7]) for r in rows
                if request_id is None or r[1] == request_id]

    def signed_head(self) -> dict[str, Any]:
        """The last entry's position, hash and signature (what a receipt carries)."""
        row = self._db.execute("SELECT seq, entry_hash, signature FROM events ORDER BY seq DESC LIMIT 1").fetchone()
        seq, h, sig = (0, GENESIS, "") if row is None else (int(row[0]), str(row[1]), str(row[2]))
        return {"ledger_id": self.ledger_id, "seq": seq, "hash": h, "signature": sig}

    def head(self) -> tuple[int, str]:
        """``(seq, entry_hash)`` of the last event (``(0, GENESIS)`` when empty)."""
        row = self._db.execute("SELECT seq, entry_hash FROM events ORDER BY seq DESC LIMIT 1").fetchone()
        return (0, GENESIS) if row is None else (int(row[0]), str(row[1]))

    def hash_at(self, seq: int) -> str | None:
        """The stored hash of entry ``seq`` (None if there is no such entry)."""
        row = self._db.execute("SELECT entry_hash FROM events WHERE seq = ?", (seq,)).fetchone()
        return None if row is None else str(row[0])

    # -- verification -----------------------------------------------------
    def verify(self, expected_key: VerifyKey | None = None) -> VerifyReport:
        """Recompute the hash chain, check every entry's signature, and replay the chain
        against the ``requests`` table.

        ``expected_key``: the public key the ledger must be signed with (from the key file or a
        receipt). Without it the ledger's own recorded key is used, which shows that the
        entries are consistent but not who signed them. Raises :class:`LedgerError` naming
        the first entry that does not check out.
        """
        prev, expected_seq = GENESIS, 1
        states: dict[str, dict[str, Any]] = {}
        n = 0
        recorded = self.public_key()
        if expected_key is not None and recorded is not None and recorded != expected_key:
            raise LedgerError(f"The ledger {self.path} is signed with the key {recorded.fingerprint}, not the expected "
                              f"{expected_key.fingerprint}: the ledger was replaced or re-signed.")
        key = expected_key or recorded
        ledger_id = self.ledger_id
        try:
            cursor = self._db.execute("SELECT seq, request_id, kind, at, payload, prev_hash, entry_hash, signature "
                                      "FROM events ORDER BY seq")
            for seq, rid, kind, at, payload, prev_hash, stored, sig in cursor:
                where = f"ledger {self.path}, entry #{seq}"
                if seq != expected_seq:
                    raise LedgerError(f"{where}: expected entry #{expected_seq}; entries were deleted or inserted.")
                if prev_hash != prev:
                    raise LedgerError(f"{where}: its previous-hash link does not match entry #{seq - 1}; "
                                      "the chain was edited.")
                if entry_hash(seq, rid, kind, at, payload, prev_hash) != stored:
                    raise LedgerError(f"{where} ({kind} of {rid!r}): its content does not match its hash; "
                                      "the entry was edited.")
                if key is None or not key.verify(signed_message(ledger_id, seq, stored), sig):
                    raise LedgerError(f"{where} ({kind} of {rid!r}): its signature does not verify with the key "
                                      f"{key.fingerprint if key else '(none recorded)'}; the entry was forged, moved "
                                      "or re-chained, or the ledger belongs to another store.")
                try:
                    data = json.loads(payload)
                except json.JSONDecodeError:
                    raise LedgerError(f"{where}: its payload is not JSON.") from None
                if rid is not None:
                    states[rid] = _apply_event(states.get(rid), LedgerEvent(seq, rid, kind, at, data, prev_hash, stored))
                prev, expected_seq, n = stored, expected_seq + 1, n + 1
            rows = {r[0]: _row_to_state(r) for r in self._db.execute(
                f"SELECT {', '.join(_REQUEST_COLUMNS)} FROM requests")}
        except sqlite3.DatabaseError as exc:
            raise LedgerError(f"The ledger {self.path} cannot be read: {exc}.") from None
        for rid in sorted(set(rows) | set(states)):
            if rid not in states:
                raise LedgerError(f"ledger {self.path}: request {rid!r} has no chained entries; it was inserted by hand.")
            if rid not in rows:
                raise LedgerError(f"ledger {self.path}: request {rid!r} is in the chain but its row was deleted.")
            bad = [c for c in _REQUEST_COLUMNS if rows[rid][c] != states[rid][c]]
            if bad:
                raise LedgerError(f"ledger {self.path}: the row of request {rid!r} does not match its chained "
                                  f"entries (field(s) {', '.join(bad)} were edited).")
        statuses: dict[str, int] = {}
        for s in states.values():
            statuses[s["status"]] = statuses.get(s["status"], 0) + 1
        return VerifyReport(n_events=n, n_requests=len(states), head=prev, statuses=statuses, ledger_id=ledger_id,
                            key_fingerprint=key.fingerprint if key else None, key_expected=expected_key is not None)

    def replayed(self, request_id: str) -> dict[str, Any] | None:
        """The state of ``request_id`` replayed from its chained events (not from the row table)."""
        state = None
        for event in self.events(request_id):
            state = _apply_event(state, event)
        return state


def _row_to_state(row: tuple[Any, ...]) -> dict[str, Any]:
    state = dict(zip(_REQUEST_COLUMNS, row))
    for c in _JSON_COLUMNS:
        if state[c] is not None:
            try:
                state[c] = json.loads(state[c])
            except (TypeError, json.JSONDecodeError):
                state[c] = ("<not JSON>", state[c])
    return state


def _to_request(state: dict[str, Any]) -> LedgerRequest:
    return LedgerRequest(**state)


__all__ = ["GENESIS", "Ledger", "LedgerEvent", "LedgerRequest", "VerifyReport", "derive_request_id", "entry_hash",
           "signed_message"]
