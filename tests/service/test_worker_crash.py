"""The worker as a real process, killed with SIGKILL mid-run and restarted: no request lost, none applied twice.

The requests go in over HTTP; the worker (``python -m obliviate.service.worker``) pauses at a named
point (after claiming the batch, or after the batch's one ``forget_many``) and the test kills it
there with SIGKILL. A fresh worker then finishes; the SISA ledger shows each request applied once.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.service.conftest import Server, make_settings, request_doc

SRC = str(Path(__file__).resolve().parents[2] / "src")
IDS = [["train-3", "train-7"], ["train-16", "train-17"], ["train-30"]]


def _worker(settings, *, pause: str | None = None, marker: Path | None = None) -> subprocess.Popen:
    env = {**os.environ, **settings.to_env(), "PYTHONPATH": SRC, "OMP_NUM_THREADS": "1"}
    if pause:
        env.update({"OBLIVIATE_SERVICE_PAUSE_AT": pause, "OBLIVIATE_SERVICE_PAUSE_FILE": str(marker)})
    return subprocess.Popen([sys.executable, "-m", "obliviate.service.worker", "--until-empty", "--poll", "0.1"],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def _wait_for(path: Path, proc: subprocess.Popen, seconds: float = 180.0) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end:  # bounded
        if path.exists():
            return
        if proc.poll() is not None:
            raise AssertionError("the worker exited before its pause point:\n" + proc.stdout.read().decode())
        time.sleep(0.05)
    raise AssertionError(f"the worker did not reach its pause point within {seconds} s")


@pytest.mark.slow
@pytest.mark.parametrize("point", ["claimed", "applied"])
def test_kill9_then_restart_applies_each_request_once(tmp_path, point):
    from obliviate.engine.ledger import Ledger
    from obliviate.engine.store import ModelStore
    from obliviate.service import create_app

    settings = make_settings(tmp_path)
    app = create_app(settings)
    with Server(app) as srv, srv.client("requester") as alice, srv.client("reviewer") as rita, \
            srv.client("operator") as otto:
        rids = []
        for i, ids in enumerate(IDS):
            rid = f"crash-{point}-{i}"
            assert alice.post("/requests", json=request_doc(rid, ids)).status_code == 201
            assert rita.post(f"/requests/{rid}/approve", json={"why": "ok"}).status_code == 200
            assert otto.post(f"/requests/{rid}/run", json={"why": "batch"}).status_code == 200
            rids.append(rid)

        marker = tmp_path / "paused"
        first = _worker(settings, pause=point, marker=marker)
        try:
            _wait_for(marker, first)
            first.send_signal(signal.SIGKILL)
            assert first.wait(timeout=30) == -signal.SIGKILL
        finally:
            if first.poll() is None:
                first.kill()
        mid = [alice.get(f"/requests/{rid}").json()["state"] for rid in rids]
        assert mid == ["in progress"] * 3  # claimed by the dead worker, not lost

        second = _worker(settings)
        out, _ = second.communicate(timeout=300)
        assert second.returncode == 0, out.decode()

        views = [alice.get(f"/requests/{rid}").json() for rid in rids]
        assert [v["state"] for v in views] == ["completed"] * 3
        for v in views:
            states = [e["state"] for e in v["events"]]
            assert states[-4:] == ["in progress", "queued", "in progress", "completed"]
            assert "stopped while running it" in v["events"][-3]["why"]
        certs = [alice.get(f"/requests/{rid}/certificate").json() for rid in rids]
        assert all(c["outcome"] == "honoured" and c["kinds"] == ["exact"] for c in certs)

    folder = settings.workdir / "digits-sisa"
    files = ModelStore(folder)
    with Ledger(files.ledger_path, create=False) as ledger:
        for rid, ids in zip(rids, IDS):
            kinds = [e.kind for e in ledger.events(rid)]
            assert kinds.count("received") == 1 and kinds.count("applied") == 1, (rid, kinds)
            assert sorted(ledger.get(rid).example_ids) == sorted(ids)
    version = files.read_version(files.current_version())
    assert sorted(version["requests"]) == sorted(rids)  # each once, in the served model
    # the three requests went in as one batch: one version published after training's version 1
    assert version["version"] == 2 and version["parent"] == 1 and sorted(version["batch"]["requests"]) == sorted(rids)
    assert set(version["forgotten"]) == {i for ids in IDS for i in ids}
