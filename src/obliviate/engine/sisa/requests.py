"""Request handling of a SISA store: the ledger, forgetting, batching and recovery.

:class:`~obliviate.engine.sisa.model.Sisa` holds the model (shards, slices, aggregation,
prediction); this mixin turns requests into retrains of it: validate, record durably in
the signed ledger, retrain only the affected shards from their last unaffected slice,
publish one new version, mark the requests applied, and, after a crash, finish what was
interrupted and delete what the killed writer left that may hold forgotten data.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from obliviate.engine.ledger import derive_request_id, utc_now
from obliviate.data.forget import select
from obliviate.data.request import ForgetRequest
from obliviate.engine.sisa.receipts import ForgetReceipt, ErasureRequest
from obliviate.engine.sisa.recovery import find_residue, remove_residue, requested_ids
from obliviate.engine.sisa.training import run_shard_job
from obliviate.engine.sisa.verify import check_ledger, sign_version
from obliviate.errors import ForgetSetError

log = logging.getLogger(__name__)


class RequestsMixin:
    """Forget requests on a SISA store (mixed into :class:`~obliviate.engine.sisa.model.Sisa`)."""

    def _resolve(self, req: ErasureRequest) -> list[str]:
        data = self.data_
        ids = [str(i) for i in req.ids]
        if req.subject is not None and not ids:
            if data.subjects is None:
                raise ForgetSetError("This store's data has no subjects, so a request by subject alone cannot be "
                                     "resolved; give the example ids.")
            ids = data.ids[data.subjects == str(req.subject)].tolist()
            if not ids:
                raise ForgetSetError(f"No training example belongs to subject {req.subject!r}.")
        if not ids:
            raise ForgetSetError("A forget request needs example ids or a subject; got neither.")
        if len(set(ids)) != len(ids):
            dup = sorted({i for i in ids if ids.count(i) > 1})
            raise ForgetSetError(f"The request lists these ids more than once: {', '.join(dup[:5])}.")
        data.positions(ids)  # unknown ids -> ForgetSetError naming them
        return ids

    def _envelope(self, what: Sequence[str] | ForgetRequest, subject: str | None, reason: str | None,
                  request_id: str | None) -> ErasureRequest:
        """The ledger's record of a request: a ForgetRequest is resolved against the store's data into ids."""
        if isinstance(what, ForgetRequest):
            ids = [str(self.data_.ids[i]) for i in select(self.data_, what)]
            if subject is None and len(what.subjects) == 1:
                subject = what.subjects[0]
            return ErasureRequest(tuple(ids), subject, reason, request_id)
        return ErasureRequest(what, subject, reason, request_id)

    def submit(self, ids: Sequence[str] | ForgetRequest = (), *, subject: str | None = None,
               reason: str | None = None, request_id: str | None = None) -> ForgetReceipt:
        """Validate and durably record a request without applying it (status ``received``)."""
        return self._submit_all([self._envelope(ids, subject, reason, request_id)], apply=False)[0]

    def forget(self, ids: Sequence[str] | ForgetRequest = (), *, subject: str | None = None,
               reason: str | None = None, request_id: str | None = None) -> ForgetReceipt:
        """Forget examples (ids, a :class:`ForgetRequest`, or all of a subject's): record, retrain, publish.

        Re-submitting a request (same ``request_id``, or the same subject, ids and reason)
        returns its receipt with ``duplicate=True`` and changes nothing.
        """
        return self._submit_all([self._envelope(ids, subject, reason, request_id)], apply=True)[0]

    def forget_many(self, requests: Sequence[ErasureRequest]) -> list[ForgetReceipt]:
        """Record several requests, then apply them together: each affected shard is
        retrained once, from the earliest slice any of them touches."""
        return self._submit_all(list(requests), apply=True)

    def recover(self) -> list[ForgetReceipt]:
        """Apply every request that was recorded but not applied (e.g. after a crash), and
        delete every file left behind that may hold a requested id (see :mod:`.recovery`)."""
        with self.files_.lock():
            self._check_ledger()
            self._remove_residue()
            receipts = self._apply_pending()
            self._remove_residue()
            return receipts

    def _check_ledger(self) -> None:
        # a writer holds the key: the ledger and the served version must be signed with it
        check_ledger(self.ledger_, self.current(), expected_key=self.ledger_.signing_key().public)

    def _remove_residue(self) -> None:
        cur = self.current()
        remove_residue(self.files_, cur, requested_ids(cur, self.ledger_))

    def residue(self) -> list[dict[str, Any]]:
        """Files that may hold data a request named and that the served model does not use."""
        cur = self.current()
        return find_residue(self.files_, cur, requested_ids(cur, self.ledger_))

    def _receipt(self, request_id: str, *, duplicate: bool = False) -> ForgetReceipt:
        return ForgetReceipt.from_ledger(self.ledger_.get(request_id), duplicate=duplicate,  # type: ignore[arg-type]
                                         ledger=self.ledger_)

    def _submit_all(self, requests: list[ErasureRequest], *, apply: bool) -> list[ForgetReceipt]:
        with self.files_.lock():
            self._check_ledger()
            self._ensure_state()
            # A writer killed after publishing (or mid-retrain) leaves files that may hold
            # forgotten data: delete them before answering anything, duplicates included.
            self._remove_residue()
            cur = self.current()
            forgotten = set(cur["forgotten"])
            pending_ids = {i: r.request_id for r in self.ledger_.pending() for i in r.example_ids}
            plans: list[tuple[str, ErasureRequest, list[str] | None]] = []
            claimed: dict[str, str] = {}
            for req in requests:
                existing = self.ledger_.get(req.request_id) if req.request_id else None
                if existing is None and not req.request_id:
                    ids = self._resolve(req)
                    existing = self.ledger_.get(derive_request_id(req.subject, ids, req.reason))
                if existing is not None:
                    if req.ids and sorted(map(str, req.ids)) != sorted(existing.example_ids) or (
                            req.subject is not None and req.subject != existing.subject):
                        raise ForgetSetError(f"Request id {existing.request_id!r} was already used for a different "
                                             "request (other ids or subject); nothing was changed. Use a new id.")
                    plans.append((existing.request_id, req, None))
                    continue
                ids = self._resolve(req)
                gone = sorted(set(ids) & forgotten)
                if gone:
                    raise ForgetSetError(f"{len(gone)} id(s) were already forgotten (first: {', '.join(gone[:5])}); "
                                         "nothing was changed. Drop them from the request.")
                busy = sorted(i for i in ids if i in pending_ids or i in claimed)
                if busy:
                    other = pending_ids.get(busy[0]) or claimed.get(busy[0])
                    raise ForgetSetError(f"{len(busy)} id(s) are already in request {other!r}, which is not applied "
                                         f"yet (first: {', '.join(busy[:5])}); nothing was changed.")
                rid = req.request_id or derive_request_id(req.subject, ids, req.reason)
                claimed.update({i: rid for i in ids})
                plans.append((rid, req, ids))
            new_ids = set(claimed)
            if new_ids:
                if len(forgotten | new_ids | set(pending_ids)) >= len(self.data_):
                    raise ForgetSetError("These requests would forget every training example; nothing was changed.")
                self._check_start_checkpoints(cur, forgotten | new_ids | set(pending_ids))
            created: set[str] = set()
            for rid, req, ids in plans:
                if ids is not None:
                    _, was_new = self.ledger_.submit(example_ids=ids, subject=req.subject, reason=req.reason,
                                                     request_id=rid)
                    if was_new:
                        created.add(rid)
            if apply:
                wanted = {rid for rid, _, _ in plans}
                if any(self.ledger_.get(rid).status != "applied" for rid in wanted):  # type: ignore[union-attr]
                    self._apply_pending(retry=wanted)
            return [self._receipt(rid, duplicate=rid not in created) for rid, _, _ in plans]

    def _plan(self, cur: dict[str, Any], forgotten_ids: set[str]) -> list[_ShardPlan | None]:
        """For every shard, what it takes to bring it up to date with ``forgotten_ids``;
        None for a shard that holds none of the newly forgotten ids (its keys cannot change)."""
        data = self.data_
        mask = np.zeros(len(data), dtype=bool)
        if forgotten_ids:
            mask[data.positions(sorted(forgotten_ids))] = True
        new = sorted(set(forgotten_ids) - set(cur["forgotten"]))
        touched = set(self._shard_of_row[data.positions(new)].tolist()) if new else set()
        return [self._shard_plan(k, mask, cur["shards"][k]) if k in touched else None
                for k in range(self.config_.shards)]

    def _planned_work(self, plan: Sequence[Any]) -> float:
        """Example-epochs a plan will retrain over those of full training: for each affected shard,
        its live cumulative slice sizes from the first affected slice on, times the epochs per slice."""
        full = len(self.data_) * self.config_.recipe.epochs
        work = sum(p.prefix[r] for p in plan if p is not None and p.changed for r in range(p.start, len(p.prefix)))
        return work * self.config_.epochs_per_slice / max(1, full)

    def expected_work_fraction(self, ids: Sequence[str]) -> float:
        """The fraction of full training that forgetting ``ids`` (one batch, on top of the served
        version and any pending requests) would retrain; nothing is recorded or trained.

        This is for the ids actually given; :meth:`SisaConfig.ideal_speedup` is the inverse of the
        expectation for one uniformly random deletion, ``(2/3 + 1/(3R)) / S``.
        """
        self._ensure_state()
        ids = [str(i) for i in ids]
        self.data_.positions(ids)  # unknown ids -> ForgetSetError naming them
        cur = self.current()
        forgotten = set(cur["forgotten"]) | {i for r in self.ledger_.pending() for i in r.example_ids} | set(ids)
        return self._planned_work(self._plan(cur, forgotten))

    def _check_start_checkpoints(self, cur: dict[str, Any], forgotten_ids: set[str]) -> None:
        """Refuse before recording anything if a checkpoint a retrain starts from is corrupt."""
        for plan in self._plan(cur, forgotten_ids):
            if plan is not None and plan.changed and plan.start > 0:
                self.files_.check_checkpoint(plan.keys[plan.start - 1], plan.start_sha256 or "")

    def _apply_pending(self, retry: set[str] | None = None) -> list[ForgetReceipt]:
        """Apply all received/interrupted requests (and failed ones named in ``retry``) as one batch."""
        self._ensure_state()
        cur = self.current()
        todo = self.ledger_.pending()
        if retry:
            todo += [r for r in self.ledger_.requests(status="failed") if r.request_id in retry]
        if not todo:
            return []
        done_in_current = [r for r in todo if r.request_id in set(cur["requests"])]
        for req in done_in_current:
            # Published before a crash, not yet marked: record it, do not apply it again.
            log.info("request %s is already in model version %d; recording it as applied", req.request_id,
                     cur["version"])
            self.ledger_.mark_applied(req.request_id, **_applied_fields(cur))
        todo = [r for r in todo if r.request_id not in set(cur["requests"])]
        if not todo:
            self._gc(cur)
            return [self._receipt(r.request_id) for r in done_in_current]
        t0 = time.perf_counter()
        for req in todo:
            self.ledger_.mark_applying(req.request_id, version_before=cur["version"])
        forgotten = set(cur["forgotten"]) | {i for r in todo for i in r.example_ids}
        try:
            plan = self._plan(cur, forgotten)
            expected = self._planned_work(plan)
            log.info("retraining %d shard(s): expected work fraction %.4f of full training",
                     sum(p is not None and p.changed for p in plan), expected)
            jobs = [self._job(p) for p in plan if p is not None and p.changed]
            results = {res.shard: res for res in self.executor_.map(
                run_shard_job, jobs, progress=self.progress_, description="retrain shards")}
        except Exception as exc:
            for req in todo:
                self.ledger_.mark_failed(req.request_id, error=f"{type(exc).__name__}: {exc}")
            raise
        shards = [self._shard_doc(p, results[p.shard], cur["shards"][p.shard]) if p is not None and p.changed
                  else cur["shards"][k] for k, p in enumerate(plan)]
        replayed = [s for r in results.values() for s in r.slices]
        full = len(self.data_) * self.config_.recipe.epochs
        seconds = time.perf_counter() - t0
        batch = {
            "requests": [r.request_id for r in todo],
            "shards_retrained": sorted(results),
            "slices_replayed": sum(not s["reused"] for s in replayed),
            "slices_reused": sum(bool(s["reused"]) for s in replayed),
            "expected_work_fraction": expected,
            "work_fraction": sum(s["n"] * s["epochs"] for s in replayed if not s["reused"]) / max(1, full),
            "seconds": seconds,
            "shard_seconds": {str(k): r.wall_s for k, r in results.items()},
        }
        version = {"version": cur["version"] + 1, "parent": cur["version"], "created_at": utc_now(),
                   "requests": cur["requests"] + batch["requests"], "forgotten": sorted(forgotten),
                   "shards": shards, "ledger_head": list(self.ledger_.head()), "batch": batch}
        version = sign_version(version, self.ledger_)
        self.files_.publish(version)
        self._models = None
        for req in todo:
            self.ledger_.mark_applied(req.request_id, **_applied_fields(version))
        self._gc(version)
        log.info("published model version %d (%d request(s), shards %s, %.2fs)", version["version"], len(todo),
                 batch["shards_retrained"], seconds)
        return [self._receipt(r.request_id) for r in [*done_in_current, *todo]]


def _applied_fields(version: dict[str, Any]) -> dict[str, Any]:
    batch = version["batch"] or {}
    return {"version_after": version["version"],
            "checkpoints": {str(k): [s["key"] for s in sh["slices"]] for k, sh in enumerate(version["shards"])
                            if k in set(batch.get("shards_retrained", []))},
            "timings": {"seconds": batch.get("seconds", 0.0), "shard_seconds": batch.get("shard_seconds", {})},
            "result": {key: batch.get(key) for key in ("shards_retrained", "slices_replayed", "slices_reused",
                                                       "expected_work_fraction", "work_fraction")} | {"batch": batch.get("requests", [])}}


__all__ = ["RequestsMixin"]
