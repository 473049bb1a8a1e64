"""A request end to end over HTTP: submit, plan, review, queue, worker, certificate, ledger, predict."""

from __future__ import annotations

import datetime as dt

import pytest

from tests.service.conftest import NAMES, request_doc

WHY = {"why": "checked"}


def _run_worker(settings) -> int:
    from obliviate.service import Worker

    w = Worker(settings)
    try:
        return w.run(until_empty=True, max_batches=5)
    finally:
        w.store.close()


def test_openapi_and_health(service):
    with service.client(None) as c:
        spec = c.get("/openapi.json").json()
        assert c.get("/health").json()["status"] == "ok"
    assert {"/requests", "/requests/{request_id}/plan", "/requests/{request_id}/certificate",
            "/deployments/{name}/ledger", "/deployments/{name}/predict", "/deployments/{name}/generate",
            "/dashboard", "/health"} <= set(spec["paths"])
    body = spec["paths"]["/requests"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    schema = spec["components"]["schemas"][body["$ref"].rsplit("/", 1)[1]]
    assert schema["examples"][0]["deployment"] == "digits-sisa"
    assert schema["properties"]["deployment"]["enum"] == ["digits-sisa", "persons-lm"]


def test_request_lifecycle(service):
    with service.client("requester") as alice, service.client("reviewer") as rita, \
            service.client("operator") as otto, service.client("auditor") as aude:
        r = alice.post("/requests", json=request_doc("flow-1", ["train-3", "train-7"]))
        assert r.status_code == 201, r.text
        doc = r.json()
        assert doc["state"] == "awaiting review" and doc["owner"] == NAMES["requester"]
        assert [e["state"] for e in doc["events"]] == ["received", "planned", "awaiting review"]
        assert doc["kinds"] == ["exact"]
        plan = alice.get("/requests/flow-1/plan").json()
        assert plan["plan"]["steps"][0]["intervention"] == "sisa-forget"
        assert alice.get("/requests/flow-1/certificate").status_code == 404
        assert otto.post("/requests/flow-1/run", json=WHY).status_code == 409  # not approved yet
        a = rita.post("/requests/flow-1/approve", json={"why": "exact removal of two ids"})
        assert a.status_code == 200 and a.json()["state"] == "approved"
        q = otto.post("/requests/flow-1/run", json={"why": "nightly batch"}).json()
        assert q["state"] == "queued"
        assert _run_worker(service.settings) == 1
        done = aude.get("/requests/flow-1").json()
        assert done["state"] == "completed" and done["has_certificate"]
        states = [(e["state"], e["by"]) for e in done["events"]]
        assert states[3:5] == [("approved", "rita"), ("queued", "otto")]
        assert [s for s, _ in states[5:]] == ["in progress", "completed"]
        assert all(e["why"] for e in done["events"])
        cert = alice.get("/requests/flow-1/certificate").json()
        assert cert["kinds"] == ["exact"] and cert["outcome"] == "honoured"
        assert cert["certificate"]["steps"][0]["lineage"]["receipt"]["status"] == "applied"
        from obliviate.policy import verify_certificate

        verify_certificate(cert["certificate"])
        led = aude.get("/deployments/digits-sisa/ledger").json()
        assert led["ok"] and led["report"]["statuses"].get("applied") == 1
        pred = alice.post("/deployments/digits-sisa/predict", json={"x": [[0.0] * 64, [1.0] * 64]})
        assert pred.status_code == 200, pred.text
        pred = pred.json()
        assert pred["kind"] == "exact" and pred["model_version"] >= 1 and len(pred["predictions"]) == 2
        bad = alice.post("/deployments/digits-sisa/predict", json={"x": [[0.0] * 3]})
        assert bad.status_code == 422 and "64 features" in bad.json()["detail"]


def test_reject_and_cancel_are_recorded(service):
    with service.client("requester") as alice, service.client("reviewer") as rita:
        alice.post("/requests", json=request_doc("rej-1", ["train-11"]))
        r = rita.post("/requests/rej-1/reject", json={"why": "ids belong to someone else"}).json()
        assert r["state"] == "rejected" and r["events"][-1] == {**r["events"][-1], "by": "rita",
                                                                 "why": "ids belong to someone else"}
        assert rita.post("/requests/rej-1/approve", json=WHY).status_code == 409
        alice.post("/requests", json=request_doc("can-1", ["train-12"]))
        c = alice.post("/requests/can-1/cancel", json={"why": "sent by mistake"}).json()
        assert c["state"] == "cancelled" and c["events"][-1]["by"] == "alice"
        assert alice.post("/requests", json=request_doc("can-1", ["train-12"])).status_code == 409


def test_deadline_flags(service):
    today = dt.date.today()
    with service.client("requester") as alice:
        late = alice.post("/requests", json=request_doc("late-1", ["train-20"],
                                                         received=(today - dt.timedelta(days=40)).isoformat())).json()
        soon = alice.post("/requests", json=request_doc("soon-1", ["train-21"],
                                                         received=(today - dt.timedelta(days=27)).isoformat())).json()
        fresh = alice.post("/requests", json=request_doc("fresh-1", ["train-22"])).json()
    assert late["deadline"]["flag"] == "overdue" and late["deadline"]["days_left"] < 0
    assert soon["deadline"]["flag"] == "due soon" and 0 <= soon["deadline"]["days_left"] <= 7
    assert fresh["deadline"]["flag"] == "on time"


def test_validation_errors_are_422_with_reasons(service):
    with service.client("requester") as alice:
        r = alice.post("/requests", json=request_doc("x-1", ["train-1"], deployment="nope"))
        assert r.status_code == 422 and "deployment" in r.text
        r = alice.post("/requests", json={**request_doc("x-2", []), "what": {"kind": "examples", "ids": []}})
        assert r.status_code == 422 and "empty" in r.text
        assert alice.get("/requests/does-not-exist").status_code == 404


@pytest.mark.parametrize("role", ["requester", "auditor"])
def test_generation_without_a_generator_is_409_not_a_made_up_answer(service, role):
    # persons-lm has guards but no generator in this service: a clear 409, never a fake answer
    with service.client(role) as c:
        r = c.post("/deployments/persons-lm/generate", json={"prompt": "hello"})
    assert r.status_code == (409 if role == "requester" else 403)
