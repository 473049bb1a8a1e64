"""Guarded generation over HTTP: the guards hold back what completed requests name (suppression only)."""

from __future__ import annotations

import pytest

from tests.service.conftest import Server, make_settings, request_doc


@pytest.fixture(scope="module")
def leak():
    from obliviate.data.persons import make_persons_corpus

    corpus = make_persons_corpus(20, 0.1, seed=0)
    ex = corpus.forget[0]
    person = next(p for p in corpus.people if p.id == ex.subject)
    return ex.subject, person.full_name, f"Sure. {person.full_name} was born in {person.birthplace}."


def test_generation_through_guards(tmp_path, leak):
    from obliviate.service import create_app

    subject, name, answer = leak
    settings = make_settings(tmp_path, generators={"persons-lm": lambda prompt: answer})
    app = create_app(settings)
    store = app.state.store
    with Server(app) as srv, srv.client("requester") as alice:
        before = alice.post("/deployments/persons-lm/generate", json={"prompt": f"Who is {name}?"}).json()
        assert before["kind"] == "suppression" and not before["refused"] and name in before["text"]
        assert before["protected_requests"] == []
        doc = request_doc("gen-1", [], deployment="persons-lm")
        doc["what"] = {"kind": "data_subject", "subjects": [subject]}
        assert alice.post("/requests", json=doc).status_code == 201
        for state in ("approved", "queued", "in progress"):
            store.transition("gen-1", state, by="test", role="operator", why="test")
        store.transition("gen-1", "completed", by="test", role="worker", why="test",
                         certificate={"outcome": "honoured", "kinds": ["suppression"]})
        after = alice.post("/deployments/persons-lm/generate", json={"prompt": f"Who is {name}?"}).json()
        assert after["kind"] == "suppression" and after["protected_requests"] == ["gen-1"]
        assert after["refused"] or after["redacted"]
        assert name not in after["text"]
        assert any(d["action"] in ("block", "redact") for d in after["decisions"])
        # a deployment without guards serves no guarded generation
        r = alice.post("/deployments/digits-sisa/generate", json={"prompt": "hi"})
        assert r.status_code == 409 and "no guards" in r.json()["detail"]
