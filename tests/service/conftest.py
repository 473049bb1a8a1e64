"""A real service per test module: uvicorn on a free loopback port, a temporary store, four roles."""

from __future__ import annotations

import json
import socket
import threading
import time
from pathlib import Path

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")
httpx = pytest.importorskip("httpx")

KEYS = {"requester": "key-alice", "requester2": "key-bob", "reviewer": "key-rita", "operator": "key-otto",
        "auditor": "key-aude"}
NAMES = {"requester": "alice", "requester2": "bob", "reviewer": "rita", "operator": "otto", "auditor": "aude"}
DEPLOYMENTS = {"deployments": [
    {"name": "digits-sisa", "model": "sisa", "dataset": "digits", "access": "outputs",
     "settings": {"shards": 2, "slices": 1, "epochs": 2}},
    {"name": "persons-lm", "model": "lm", "dataset": "persons", "access": "outputs", "guards": True,
     "settings": {"n_people": 20, "forget_fraction": 0.1, "seed": 0, "pipeline": "lexical"}},
]}


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def make_settings(root: Path, **kw):
    from obliviate.service import Settings, write_keys

    root.mkdir(parents=True, exist_ok=True)
    keys = write_keys(root / "keys.json", [{"key": KEYS[r], "name": NAMES[r], "role": r.rstrip("2")} for r in KEYS])
    deps = root / "deployments.json"
    deps.write_text(json.dumps(DEPLOYMENTS))
    key = root / "secret" / "ledger.pem"
    return Settings(store=root / "store", keys_file=keys, deployments_file=deps, signing_key=key, **kw)


class Server:
    """uvicorn in a thread of this process, on 127.0.0.1:PORT; stopped by the fixture."""

    def __init__(self, app) -> None:
        import uvicorn

        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning",
                                                    lifespan="off"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> Server:
        self.thread.start()
        for _ in range(200):  # bounded: 10 s
            if self.server.started:
                return self
            time.sleep(0.05)
        raise RuntimeError("uvicorn did not start within 10 s")

    def __exit__(self, *exc) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)

    def client(self, role: str | None) -> httpx.Client:
        headers = {"X-API-Key": KEYS[role]} if role else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=60.0)


def request_doc(request_id: str, ids: list[str], *, deployment: str = "digits-sisa", received: str | None = None,
                **extra) -> dict:
    import datetime as dt

    doc = {"format": "obliviate-request-v1", "request_id": request_id, "who": "data_subject",
           "what": {"kind": "examples", "ids": ids}, "why": "erasure", "jurisdiction": "EU",
           "received": received or dt.date.today().isoformat(), "deployment": deployment}
    doc.update(extra)
    return doc


@pytest.fixture(scope="module")
def service(tmp_path_factory):
    from obliviate.service import create_app

    settings = make_settings(tmp_path_factory.mktemp("service"))
    with Server(create_app(settings)) as srv:
        srv.settings = settings
        yield srv
