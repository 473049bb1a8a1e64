"""The embedded request store: one SQLite file, WAL journal, every write in one transaction."""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from obliviate.engine.ledger import utc_now
from obliviate.service.store import (STORES, TRANSITIONS, Conflict, Event, NotFound, RequestStore,
                                     StoredRequest)

log = logging.getLogger(__name__)

SCHEMA = """
CREATE TABLE IF NOT EXISTS requests (
    request_id TEXT PRIMARY KEY, owner TEXT NOT NULL, deployment TEXT NOT NULL, state TEXT NOT NULL,
    request TEXT NOT NULL, due TEXT NOT NULL, created_at TEXT NOT NULL, updated_at TEXT NOT NULL,
    plan TEXT, certificate TEXT, claimed_by TEXT, queued_seq INTEGER);
CREATE TABLE IF NOT EXISTS events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, request_id TEXT NOT NULL REFERENCES requests(request_id),
    state TEXT NOT NULL, at TEXT NOT NULL, by TEXT NOT NULL, role TEXT NOT NULL, why TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS events_by_request ON events(request_id, seq);
CREATE INDEX IF NOT EXISTS requests_by_state ON requests(state, queued_seq);
"""

_COLS = "request_id, owner, deployment, state, request, due, created_at, updated_at, plan, certificate, claimed_by"


class SQLiteStore(RequestStore):
    """Requests in an SQLite file (shared by the app and the worker processes)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # one connection per store object, used from the server's threads under a lock
        self._db = sqlite3.connect(self.path, timeout=30.0, isolation_level=None, check_same_thread=False)
        self._lock = threading.RLock()
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(SCHEMA)

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")  # take the write lock now: claims cannot interleave
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    @staticmethod
    def _event(db: sqlite3.Connection, request_id: str, state: str, by: str, role: str, why: str, at: str) -> None:
        db.execute("INSERT INTO events (request_id, state, at, by, role, why) VALUES (?, ?, ?, ?, ?, ?)",
                   (request_id, state, at, by, role, why))

    def _row(self, row: tuple[Any, ...], events: bool = True) -> StoredRequest:
        r = StoredRequest(request_id=row[0], owner=row[1], deployment=row[2], state=row[3],
                          request=json.loads(row[4]), due=row[5], created_at=row[6], updated_at=row[7],
                          plan=json.loads(row[8]) if row[8] else None,
                          certificate=json.loads(row[9]) if row[9] else None, claimed_by=row[10])
        if events:
            r.events = [Event(*e) for e in self._db.execute(
                "SELECT seq, request_id, state, at, by, role, why FROM events WHERE request_id = ? ORDER BY seq",
                (r.request_id,))]
        return r

    def create(self, *, request_id: str, owner: str, deployment: str, request: dict[str, Any], due: str,
               by: str, role: str, why: str) -> StoredRequest:
        now = utc_now()
        with self._tx() as db:
            if db.execute("SELECT 1 FROM requests WHERE request_id = ?", (request_id,)).fetchone():
                raise Conflict(f"A request with id {request_id!r} exists already; give a new request_id.")
            db.execute(f"INSERT INTO requests ({_COLS}) VALUES (?, ?, ?, 'received', ?, ?, ?, ?, NULL, NULL, NULL)",
                       (request_id, owner, deployment, json.dumps(request), due, now, now))
            self._event(db, request_id, "received", by, role, why, now)
        return self.get(request_id)

    def get(self, request_id: str) -> StoredRequest:
        with self._lock:
            row = self._db.execute(f"SELECT {_COLS} FROM requests WHERE request_id = ?", (request_id,)).fetchone()
            if row is None:
                raise NotFound(f"No request {request_id!r}.")
            return self._row(row)

    def list(self, *, owner: str | None = None, state: str | None = None, limit: int = 100) -> list[StoredRequest]:
        sql, args = f"SELECT {_COLS} FROM requests WHERE 1=1", []
        if owner is not None:
            sql, args = sql + " AND owner = ?", [*args, owner]
        if state is not None:
            sql, args = sql + " AND state = ?", [*args, state]
        with self._lock:
            rows = self._db.execute(sql + " ORDER BY created_at DESC, request_id LIMIT ?", (*args, limit)).fetchall()
            return [self._row(r) for r in rows]

    def transition(self, request_id: str, to: str, *, by: str, role: str, why: str,
                   expect: tuple[str, ...] | None = None, plan: dict[str, Any] | None = None,
                   certificate: dict[str, Any] | None = None, claimed_by: str | None = None) -> StoredRequest:
        now = utc_now()
        with self._tx() as db:
            row = db.execute("SELECT state FROM requests WHERE request_id = ?", (request_id,)).fetchone()
            if row is None:
                raise NotFound(f"No request {request_id!r}.")
            state = row[0]
            if (expect is not None and state not in expect) or to not in TRANSITIONS[state]:
                raise Conflict(f"Request {request_id!r} is {state!r}; it cannot move to {to!r} from there.")
            sets, args = ["state = ?", "updated_at = ?", "claimed_by = ?"], [to, now, claimed_by]
            if plan is not None:
                sets, args = [*sets, "plan = ?"], [*args, json.dumps(plan)]
            if certificate is not None:
                sets, args = [*sets, "certificate = ?"], [*args, json.dumps(certificate)]
            if to == "queued":
                sets.append("queued_seq = (SELECT COALESCE(MAX(seq), 0) FROM events)")
            db.execute(f"UPDATE requests SET {', '.join(sets)} WHERE request_id = ?", (*args, request_id))
            self._event(db, request_id, to, by, role, why, now)
        log.info("request %s: %s -> %s by %s (%s): %s", request_id, state, to, by, role, why)
        return self.get(request_id)

    def claim(self, deployment: str | None, *, worker: str, limit: int) -> list[StoredRequest]:
        now = utc_now()
        with self._tx() as db:
            if deployment is None:
                first = db.execute("SELECT deployment FROM requests WHERE state = 'queued' ORDER BY queued_seq "
                                   "LIMIT 1").fetchone()
                if first is None:
                    return []
                deployment = first[0]
            ids = [r[0] for r in db.execute("SELECT request_id FROM requests WHERE state = 'queued' AND deployment = ? "
                                            "ORDER BY queued_seq LIMIT ?", (deployment, limit))]
            for rid in ids:
                db.execute("UPDATE requests SET state = 'in progress', claimed_by = ?, updated_at = ? "
                           "WHERE request_id = ?", (worker, now, rid))
                self._event(db, rid, "in progress", worker, "worker", f"claimed by {worker} in a batch of {len(ids)}",
                            now)
        return [self.get(rid) for rid in ids]

    def in_progress(self) -> list[StoredRequest]:
        return self.list(state="in progress", limit=10_000)

    def close(self) -> None:
        with self._lock:
            self._db.close()


STORES.register("sqlite", SQLiteStore)

__all__ = ["SQLiteStore"]
