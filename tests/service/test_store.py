"""The SQLite request store: transitions follow the table, claims are atomic across processes' connections."""

from __future__ import annotations

import threading

import pytest

from obliviate.service.sqlite import SQLiteStore
from obliviate.service.store import TRANSITIONS, Conflict, NotFound


def _queued(store, n, deployment="d"):
    for i in range(n):
        rid = f"{deployment}-{i}"
        store.create(request_id=rid, owner="alice", deployment=deployment, request={"i": i}, due="2030-01-01",
                     by="alice", role="requester", why="test")
        for state in ("planned", "awaiting review", "approved", "queued"):
            store.transition(rid, state, by="t", role="operator", why=f"to {state}")


def test_transitions_follow_the_table(tmp_path):
    store = SQLiteStore(tmp_path / "r.sqlite")
    _queued(store, 1)
    with pytest.raises(Conflict, match="cannot move to 'approved'"):
        store.transition("d-0", "approved", by="t", role="reviewer", why="again")
    with pytest.raises(NotFound):
        store.get("nope")
    with pytest.raises(Conflict, match="exists already"):
        store.create(request_id="d-0", owner="x", deployment="d", request={}, due="2030-01-01", by="x", role="r",
                     why="dup")
    r = store.get("d-0")
    assert [e.state for e in r.events] == ["received", "planned", "awaiting review", "approved", "queued"]
    assert all(TRANSITIONS[a.state].__contains__(b.state) for a, b in zip(r.events, r.events[1:]))
    store.close()


def test_concurrent_claims_take_each_request_once(tmp_path):
    path = tmp_path / "r.sqlite"
    setup = SQLiteStore(path)
    _queued(setup, 40)
    setup.close()
    stores = [SQLiteStore(path) for _ in range(4)]
    got: list[list[str]] = [[] for _ in stores]

    def claim(k: int) -> None:
        for _ in range(40):  # bounded
            batch = stores[k].claim("d", worker=f"w{k}", limit=3)
            if not batch:
                return
            got[k].extend(r.request_id for r in batch)

    threads = [threading.Thread(target=claim, args=(k,)) for k in range(len(stores))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    every = [rid for g in got for rid in g]
    assert sorted(every) == sorted(f"d-{i}" for i in range(40)) and len(every) == len(set(every))
    assert all(r.state == "in progress" for r in stores[0].in_progress()) and len(stores[0].in_progress()) == 40
    for s in stores:
        s.close()
