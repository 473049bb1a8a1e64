"""Every endpoint under every role, over HTTP: allowed, or a clear 403 that is logged; no key is 401."""

from __future__ import annotations

import itertools
import logging

import pytest

from obliviate.service.auth import ROLE_SCOPES
from tests.service.conftest import request_doc

ROLES = ["requester", "reviewer", "operator", "auditor"]
WHY = {"why": "role test"}
_n = itertools.count()

# (method, path with {rid}, body, scope the route needs); {rid} is a fresh request of alice's
ENDPOINTS = [
    ("GET", "/requests", None, "requests:read"),
    ("POST", "/requests", "new", "requests:submit"),
    ("GET", "/requests/{rid}", None, "requests:read"),
    ("GET", "/requests/{rid}/plan", None, "requests:read"),
    ("GET", "/requests/{rid}/certificate", None, "requests:read"),
    ("GET", "/requests/{rid}/certificate.html", None, "requests:read"),
    ("POST", "/requests/{rid}/approve", WHY, "requests:review"),
    ("POST", "/requests/{rid}/reject", WHY, "requests:review"),
    ("POST", "/requests/{rid}/run", WHY, "requests:run"),
    ("POST", "/requests/{rid}/cancel", WHY, "requests:cancel"),
    ("GET", "/deployments", None, "requests:read"),
    ("GET", "/deployments/digits-sisa/ledger", None, "ledger:verify"),
    ("POST", "/deployments/digits-sisa/predict", {"x": [[0.0] * 64]}, "serve"),
    ("POST", "/deployments/persons-lm/generate", {"prompt": "hi"}, "serve"),
    ("GET", "/dashboard", None, "requests:read_all"),
]


def _fresh(service) -> str:
    rid = f"role-{next(_n)}"
    with service.client("requester") as alice:
        assert alice.post("/requests", json=request_doc(rid, [f"train-{100 + next(_n)}"])).status_code == 201
    return rid


def _call(service, role, method, path, body):
    rid = _fresh(service) if "{rid}" in path else None
    if body == "new":
        body = request_doc(f"role-new-{next(_n)}", [f"train-{300 + next(_n)}"])
    with service.client(role) as c:
        return c.request(method, path.format(rid=rid), json=body)


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("method,path,body,scope", ENDPOINTS, ids=[f"{m} {p}" for m, p, _, _ in ENDPOINTS])
def test_every_endpoint_under_every_role(service, caplog, role, method, path, body, scope):
    caplog.set_level(logging.WARNING, logger="obliviate.service")
    r = _call(service, role, method, path, body)
    if scope in ROLE_SCOPES[role]:
        assert r.status_code not in (401, 403), (role, path, r.status_code, r.text)
    else:
        assert r.status_code == 403, (role, path, r.status_code, r.text)
        detail = r.json()["detail"]
        assert f"role {role!r}" in detail and scope in detail
        assert any("denied" in m and scope in m for m in caplog.messages), caplog.messages


@pytest.mark.parametrize("method,path,body,scope", ENDPOINTS, ids=[f"{m} {p}" for m, p, _, _ in ENDPOINTS])
@pytest.mark.parametrize("key", [None, "wrong-key"])
def test_no_or_unknown_key_is_401(service, caplog, key, method, path, body, scope):
    caplog.set_level(logging.WARNING, logger="obliviate.service")
    import httpx

    headers = {"X-API-Key": key} if key else {}
    with httpx.Client(base_url=service.url, headers=headers, timeout=30) as c:
        r = c.request(method, path.format(rid="role-x"), json=None if body == "new" else body)
    assert r.status_code == 401 and "API key" in r.json()["detail"]
    assert any("denied" in m for m in caplog.messages)


def test_auditor_changes_nothing(service):
    assert not {s for s in ROLE_SCOPES["auditor"] if s not in ("requests:read", "requests:read_all",
                                                                "ledger:verify")}


def test_requester_sees_only_their_own(service, caplog):
    caplog.set_level(logging.WARNING, logger="obliviate.service")
    rid = _fresh(service)
    with service.client("requester2") as bob, service.client("requester") as alice:
        assert bob.post("/requests", json=request_doc("bob-1", ["train-900"])).status_code == 201
        for path in ("/requests/{rid}", "/requests/{rid}/plan", "/requests/{rid}/certificate"):
            r = bob.get(path.format(rid=rid))
            assert r.status_code == 403 and "not yours" in r.json()["detail"]
        assert bob.post(f"/requests/{rid}/cancel", json=WHY).status_code == 403
        mine = {x["request_id"] for x in bob.get("/requests").json()["requests"]}
        assert mine == {"bob-1"}
        assert "bob-1" not in {x["request_id"] for x in alice.get("/requests").json()["requests"]}
        assert alice.get(f"/requests/{rid}").json()["state"] == "awaiting review"  # bob's cancel changed nothing
    with service.client("auditor") as aude:
        every = {x["request_id"] for x in aude.get("/requests", params={"limit": 500}).json()["requests"]}
    assert {"bob-1", rid} <= every
    assert any("not theirs" in m for m in caplog.messages)
