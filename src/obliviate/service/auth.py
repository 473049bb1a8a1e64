"""API keys, roles and scopes: who may do what, as FastAPI security dependencies.

Each key has a name and one role; each role grants scopes; each route asks for one scope with
``Security(principal, scopes=[...])``. A requester reads only their own requests (the routes
narrow by owner); an auditor reads everything and changes nothing. A missing or unknown key is
401; a known key without the scope is 403; both are logged.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from fastapi import HTTPException, Request
from fastapi.security import APIKeyHeader, SecurityScopes

from obliviate.errors import ConfigError

log = logging.getLogger(__name__)

Role = Literal["requester", "reviewer", "operator", "auditor"]
HEADER = "X-API-Key"

#: scope -> what it allows
SCOPES: dict[str, str] = {
    "requests:submit": "submit a request; cancel one's own",
    "requests:read": "read requests (a requester: only their own)",
    "requests:read_all": "read every request",
    "requests:review": "approve or reject plans",
    "requests:run": "queue approved requests for the worker",
    "requests:cancel": "cancel a request before it runs (a requester: only their own)",
    "serve": "guarded generation and prediction",
    "ledger:verify": "verify a deployment's ledger",
}
ROLE_SCOPES: dict[str, frozenset[str]] = {
    "requester": frozenset({"requests:submit", "requests:read", "requests:cancel", "serve"}),
    "reviewer": frozenset({"requests:read", "requests:read_all", "requests:review", "ledger:verify"}),
    "operator": frozenset({"requests:read", "requests:read_all", "requests:run", "requests:cancel", "serve",
                           "ledger:verify"}),
    "auditor": frozenset({"requests:read", "requests:read_all", "ledger:verify"}),
}


@dataclass(frozen=True)
class Principal:
    """Who is calling: the key's name and role, and the scopes it holds."""

    name: str
    role: str
    scopes: frozenset[str]

    @property
    def reads_all(self) -> bool:
        return "requests:read_all" in self.scopes


def _digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


class KeyRing:
    """The keys of a keys file, by sha256 of the key."""

    def __init__(self, path: str | Path) -> None:
        p = Path(path)
        try:
            raw = json.loads(p.read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise ConfigError(f"The API keys file {p} could not be read ({exc}).") from None
        entries = raw.get("keys") if isinstance(raw, dict) else None
        if not isinstance(entries, list) or not entries:
            raise ConfigError(f"The API keys file {p} must be {{'keys': [{{'key': ..., 'name': ..., 'role': ...}}]}}.")
        problems, by_digest = [], {}
        for i, e in enumerate(entries):
            if not isinstance(e, dict):
                problems.append(f"entry {i} is not an object")
                continue
            digest = e.get("key_sha256") or (_digest(e["key"]) if isinstance(e.get("key"), str) and e["key"] else None)
            if not digest:
                problems.append(f"entry {i} has no 'key' (or 'key_sha256')")
            if e.get("role") not in ROLE_SCOPES:
                problems.append(f"entry {i} has role {e.get('role')!r}; valid: {', '.join(ROLE_SCOPES)}")
            if not isinstance(e.get("name"), str) or not e.get("name"):
                problems.append(f"entry {i} has no 'name'")
            if digest and e.get("role") in ROLE_SCOPES and e.get("name"):
                by_digest[digest] = Principal(e["name"], e["role"], ROLE_SCOPES[e["role"]])
        if any(isinstance(e, dict) and e.get("key") for e in entries) and p.stat().st_mode & 0o077:
            problems.append(f"it holds plain keys and others can read or write it (mode {p.stat().st_mode & 0o777:o}); "
                            f"run `chmod 600 {p}`, or store 'key_sha256' instead of 'key'")
        if problems:
            raise ConfigError(f"The API keys file {p} has problems: " + "; ".join(problems) + ".")
        self._by_digest = by_digest

    def lookup(self, key: str | None) -> Principal | None:
        if not key:
            return None
        d = _digest(key)
        for digest, who in self._by_digest.items():
            if hmac.compare_digest(digest, d):
                return who
        return None


api_key_header = APIKeyHeader(name=HEADER, auto_error=False, description="An API key from the keys file; its role "
                              "decides what it may do.")




def make_principal(ring: KeyRing):  # noqa: ANN201 - a FastAPI dependency
    from fastapi import Security

    def dependency(security_scopes: SecurityScopes, request: Request,
                   key: str | None = Security(api_key_header)) -> Principal:
        who = ring.lookup(key)
        where = f"{request.method} {request.url.path}"
        if who is None:
            log.warning("denied %s: %s API key", where, "no" if not key else "unknown")
            raise HTTPException(401, detail=f"{'No' if not key else 'Unknown'} API key: send a valid key in the "
                                f"{HEADER} header.", headers={"WWW-Authenticate": "ApiKey"})
        missing = [s for s in security_scopes.scopes if s not in who.scopes]
        if missing:
            log.warning("denied %s to %s (role %s): needs scope %s", where, who.name, who.role, ", ".join(missing))
            raise HTTPException(403, detail=f"Forbidden: role {who.role!r} ({who.name}) may not do this; it needs "
                                f"scope {', '.join(missing)} ({'; '.join(SCOPES[m] for m in missing)}).")
        return who

    return dependency


__all__ = ["HEADER", "KeyRing", "Principal", "ROLE_SCOPES", "Role", "SCOPES", "make_principal"]
