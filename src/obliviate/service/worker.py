"""The worker: a separate process that claims queued requests and runs them, exactly once.

The queue is durable twice over: the request store holds each request's state, and for a SISA
deployment the store's signed ledger records each request before any retrain. A worker

1. puts back to ``queued`` every request left ``in progress`` (a worker killed holding it;
   one worker per store is assumed);
2. claims a batch atomically (all queued requests of one deployment, oldest first);
3. for a SISA deployment, applies the whole batch with one ``Sisa.forget_many`` call, which
   records every request in the ledger and retrains each affected shard once;
4. runs :func:`obliviate.policy.handle` per request, whose SISA runner finds the request
   already applied in the ledger (a duplicate: no second retrain) and signs its certificate;
5. records ``completed`` with the certificate.

A kill -9 anywhere is safe: before step 3 the ledger has nothing; during it, ``forget_many``
on restart finishes (or records as applied) what the ledger holds; after it, the ledger
answers duplicates; after step 5 nothing is left to do.

Run it with ``python -m obliviate.service.worker`` (settings from ``OBLIVIATE_SERVICE_*``)
or ``obliviate serve --worker``.
"""

from __future__ import annotations

import argparse
import logging
import os
import socket
import time
from pathlib import Path
from typing import Any

from obliviate.engine.keys import SigningKey
from obliviate.errors import ObliviateError
from obliviate.policy import Deployments, handle, make_plan, parse_request
from obliviate.policy.plan import Plan
from obliviate.service.settings import Settings
from obliviate.service.store import STORES, Conflict, RequestStore, StoredRequest

log = logging.getLogger(__name__)

#: crash tests: at this point ("claimed", "applied") the worker writes PAUSE_FILE and waits to be killed
PAUSE_ENV, PAUSE_FILE_ENV = "OBLIVIATE_SERVICE_PAUSE_AT", "OBLIVIATE_SERVICE_PAUSE_FILE"
PAUSE_MAX_S = 120.0


def open_store(settings: Settings) -> RequestStore:
    import obliviate.service.sqlite  # noqa: F401  (registers the embedded store)

    return STORES.get(settings.backend)(settings.db_path)


def signing_key(settings: Settings) -> SigningKey:
    return SigningKey.load_or_create(settings.signing_key)


def _pause(point: str) -> None:
    if os.environ.get(PAUSE_ENV) != point:
        return
    marker = os.environ.get(PAUSE_FILE_ENV)
    log.warning("pausing at %r for a crash test (marker %s)", point, marker)
    if marker:
        Path(marker).write_text(point)
    deadline = time.monotonic() + PAUSE_MAX_S
    while time.monotonic() < deadline:
        time.sleep(0.05)


class Worker:
    """Claims and runs queued requests (see the module docstring)."""

    def __init__(self, settings: Settings, *, name: str | None = None, store: RequestStore | None = None) -> None:
        self.settings = settings
        self.name = name or f"worker-{socket.gethostname()}-{os.getpid()}"
        self.store = store or open_store(settings)
        self.deployments: Deployments = settings.deployments()
        self.key = signing_key(settings)
        self.auditor = settings.load_auditor()
        self.batches: list[list[str]] = []

    def recover(self) -> list[str]:
        """Put back every request a dead worker held (single worker per store)."""
        back = []
        for r in self.store.in_progress():
            self.store.transition(r.request_id, "queued", by=self.name, role="worker", expect=("in progress",),
                                  why=f"the worker {r.claimed_by} stopped while running it; queued again (the "
                                      "SISA ledger keeps a second run from applying it twice)")
            back.append(r.request_id)
        return back

    def run_once(self) -> int:
        """Claim one batch and run it; the number of requests run (0: the queue is empty)."""
        batch = self.store.claim(None, worker=self.name, limit=self.settings.batch_limit)
        if not batch:
            return 0
        self.batches.append([r.request_id for r in batch])
        _pause("claimed")
        plans = [make_plan(parse_request(r.request, source=f"request {r.request_id}"), self.deployments) for r in batch]
        self._apply_batch(plans)
        _pause("applied")
        for r, plan in zip(batch, plans):
            self._finish(r, plan)
        return len(batch)

    def run(self, *, max_batches: int | None = None, until_empty: bool = False, poll_s: float = 0.5) -> int:
        """Run batches until stopped (or ``max_batches``, or the queue is empty with ``until_empty``)."""
        self.recover()
        done, batches = 0, 0
        while max_batches is None or batches < max_batches:
            n = self.run_once()
            done += n
            batches += bool(n)
            if n == 0:
                if until_empty:
                    break
                time.sleep(poll_s)
        return done

    # ------------------------------------------------------------------ steps
    def _apply_batch(self, plans: list[Plan]) -> None:
        """SISA: every request of the batch in one forget_many (each affected shard retrained once)."""
        from obliviate.engine.sisa import ErasureRequest
        from obliviate.policy.runners import HandleContext, _sisa_store

        steps = [next((s for s in p.steps if s.intervention == "sisa-forget"), None) for p in plans]
        todo = [(p, s) for p, s in zip(plans, steps) if s is not None]
        if len(todo) < 2:
            return  # one request: handle's own runner applies it
        ctx = HandleContext(self.settings.workdir, self.key)
        sisa, _ = _sisa_store(todo[0][0], todo[0][1], ctx)
        reqs = [ErasureRequest(ids=tuple(p.request.what.ids), subject=(p.request.what.subjects[0]
                              if len(p.request.what.subjects) == 1 and not p.request.what.ids else None),
                              reason=p.request.why.value, request_id=p.request.request_id) for p, _ in todo]
        with sisa:
            try:
                receipts = sisa.forget_many(reqs)
            except ObliviateError as exc:
                # one bad request refuses the whole batch before anything is recorded: run them one by one
                log.warning("the batch of %d was refused (%s); running its requests one by one", len(reqs), exc)
                return
        log.info("batch of %d request(s) applied: shards %s retrained once", len(receipts),
                 sorted({k for r in receipts for k in r.shards_retrained}))

    def _finish(self, r: StoredRequest, plan: Plan) -> None:
        try:
            done = handle(plan, workdir=self.settings.workdir, key=self.key, auditor=self.auditor)
        except Exception as exc:  # a failed run is recorded, never lost
            log.exception("request %s failed", r.request_id)
            self.store.transition(r.request_id, "failed", by=self.name, role="worker", expect=("in progress",),
                                  why=f"{type(exc).__name__}: {exc}")
            return
        cert: dict[str, Any] = done.certificate
        try:
            self.store.transition(r.request_id, "completed", by=self.name, role="worker", expect=("in progress",),
                                  certificate=cert, why=f"{cert['outcome']}; kinds {', '.join(cert['kinds']) or 'none'}; "
                                                       f"certificate {cert['certificate_id']}")
        except Conflict:
            log.warning("request %s was no longer in progress; its certificate is not recorded", r.request_id)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m obliviate.service.worker", description=__doc__.splitlines()[0])
    ap.add_argument("--until-empty", action="store_true", help="Stop when the queue is empty.")
    ap.add_argument("--poll", type=float, default=0.5, help="Seconds between looks at an empty queue.")
    ap.add_argument("--max-batches", type=int, default=None)
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    worker = Worker(Settings.from_env())
    n = worker.run(max_batches=args.max_batches, until_empty=args.until_empty, poll_s=args.poll)
    log.info("worker %s ran %d request(s)", worker.name, n)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

__all__ = ["Worker", "main", "open_store"]
