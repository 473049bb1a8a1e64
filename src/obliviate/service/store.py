"""The request store: requests, their states and every state change as an event (who, when, why).

:class:`RequestStore` is the interface the app and the worker use; :class:`SQLiteStore`
(:mod:`obliviate.service.sqlite`) is the embedded default. Another database is one module
that implements these methods and one entry in :data:`STORES`.

States (OpenDSR's pending / in progress / completed / cancelled, with DELF-style review):
``received`` -> ``planned`` -> ``awaiting review`` -> (reviewer) ``approved`` | ``rejected``;
(operator) ``approved`` -> ``queued``; (worker) ``queued`` -> ``in progress`` -> ``completed``
| ``failed``; the requester or an operator may cancel before ``in progress``.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass, field
from typing import Any

from obliviate.errors import ObliviateError
from obliviate.registry import Registry

STATES = ("received", "planned", "awaiting review", "approved", "queued", "in progress", "completed", "rejected",
          "cancelled", "failed")
TERMINAL = frozenset({"completed", "rejected", "cancelled", "failed"})

#: state -> the states it may move to (every other move is refused)
TRANSITIONS: dict[str, frozenset[str]] = {
    "received": frozenset({"planned", "rejected", "cancelled"}),
    "planned": frozenset({"awaiting review", "cancelled"}),
    "awaiting review": frozenset({"approved", "rejected", "cancelled"}),
    "approved": frozenset({"queued", "cancelled"}),
    "queued": frozenset({"in progress", "cancelled"}),
    "in progress": frozenset({"completed", "failed", "queued"}),  # queued again: a worker died holding it
    "completed": frozenset(), "rejected": frozenset(), "cancelled": frozenset(), "failed": frozenset(),
}


class StoreError(ObliviateError, RuntimeError):
    """A request store refused an operation."""


class NotFound(StoreError, KeyError):
    """No request with that id."""


class Conflict(StoreError):
    """The request is not in a state that allows this change (or the id is taken)."""


@dataclass(frozen=True)
class Event:
    """One state change: to which state, when, by whom (the key's name and role) and why."""

    seq: int
    request_id: str
    state: str
    at: str
    by: str
    role: str
    why: str

    def to_dict(self) -> dict[str, Any]:
        return {"seq": self.seq, "state": self.state, "at": self.at, "by": self.by, "role": self.role,
                "why": self.why}


@dataclass
class StoredRequest:
    """A request as stored: the request document, its owner, state, plan, certificate and events."""

    request_id: str
    owner: str
    deployment: str
    state: str
    request: dict[str, Any]
    due: str
    created_at: str
    updated_at: str
    plan: dict[str, Any] | None = None
    certificate: dict[str, Any] | None = None
    claimed_by: str | None = None
    events: list[Event] = field(default_factory=list)


class RequestStore(abc.ABC):
    """Where requests live. Every method is one transaction; ``transition`` is atomic."""

    @abc.abstractmethod
    def create(self, *, request_id: str, owner: str, deployment: str, request: dict[str, Any], due: str,
               by: str, role: str, why: str) -> StoredRequest:
        """Store a new request in state ``received`` (Conflict if the id is taken)."""

    @abc.abstractmethod
    def get(self, request_id: str) -> StoredRequest:
        """The request with its events (NotFound if absent)."""

    @abc.abstractmethod
    def list(self, *, owner: str | None = None, state: str | None = None,
             limit: int = 100) -> list[StoredRequest]:
        """Requests, newest first; only ``owner``'s if given."""

    @abc.abstractmethod
    def transition(self, request_id: str, to: str, *, by: str, role: str, why: str,
                   expect: tuple[str, ...] | None = None, plan: dict[str, Any] | None = None,
                   certificate: dict[str, Any] | None = None, claimed_by: str | None = None) -> StoredRequest:
        """Move the request to ``to`` (Conflict unless allowed from its state, and from one of ``expect``)."""

    @abc.abstractmethod
    def claim(self, deployment: str | None, *, worker: str, limit: int) -> list[StoredRequest]:
        """Atomically move up to ``limit`` queued requests (of one deployment: the oldest's, or
        ``deployment``) to ``in progress``, claimed by ``worker``."""

    @abc.abstractmethod
    def in_progress(self) -> list[StoredRequest]:
        """Requests in progress (after a crash: those a dead worker held)."""

    @abc.abstractmethod
    def close(self) -> None:
        """Release the connection."""


STORES: Registry[type[RequestStore]] = Registry("request store")

__all__ = ["Conflict", "Event", "NotFound", "RequestStore", "STATES", "STORES", "StoreError", "StoredRequest",
           "TERMINAL", "TRANSITIONS"]
