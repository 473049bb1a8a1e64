"""SIGKILL a real `obliviate sisa forget` process mid-retrain, then check the store and the ledger."""

import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest
import torch

from obliviate.engine.sisa import Sisa, SisaConfig, train_shard_reference, verify_store_ledger
from obliviate.models import ModelSpec
from obliviate.training import Recipe

pytestmark = pytest.mark.slow

CONFIG = SisaConfig(shards=2, slices=3, model=ModelSpec("mlp", {"hidden": [32]}),
                    recipe=Recipe(epochs=4, batch_size=64, lr=1e-2), seed=1)

# Runs the real CLI in a child process; only a hook is added so that we can kill it at a known point.
CHILD = textwrap.dedent("""
    import os, signal, sys, time
    import obliviate.engine.sisa.training as training
    from obliviate.engine.store import ModelStore
    hook = sys.argv[1]
    if hook == "slow":
        # Each slice takes 1.5 s longer, so the parent has time to kill us between two checkpoints.
        _train = training._train_slice
        def slow(*args, **kwargs):
            _train(*args, **kwargs)
            time.sleep(1.5)
        training._train_slice = slow
    elif hook == "die-after-publish":
        # Killed right after the pointer switch, before the ledger says 'applied'.
        _publish = ModelStore.publish
        def publish(self, doc):
            _publish(self, doc)
            os.kill(os.getpid(), signal.SIGKILL)
        ModelStore.publish = publish
    from obliviate.cli.main import app
    app(sys.argv[2:], prog_name="obliviate")
""")


@pytest.fixture(scope="module")
def trained(digits, tmp_path_factory):
    root = tmp_path_factory.mktemp("crash") / "store"
    Sisa(CONFIG, store=root).fit(digits.train, source={"dataset": "digits"}).close()
    return root


def _status(root, request_id):
    db = sqlite3.connect(root / "ledger.sqlite", timeout=30)
    try:
        row = db.execute("SELECT status FROM requests WHERE request_id = ?", (request_id,)).fetchone()
    except sqlite3.OperationalError:
        row = None
    db.close()
    return None if row is None else row[0]


def _spawn(hook, root, victim, tmp_path):
    script = tmp_path / "child.py"
    script.write_text(CHILD)
    cmd = [sys.executable, str(script), hook, "sisa", "forget", "--store", str(root), "--ids", victim,
           "--reason", "crash test", "--request-id", "crash-1", "--no-progress"]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env={**os.environ, "PYTHONUNBUFFERED": "1"})


def _events(root):
    db = sqlite3.connect(root / "ledger.sqlite")
    rows = db.execute("SELECT kind FROM events WHERE request_id = 'crash-1' ORDER BY seq").fetchall()
    db.close()
    return [r[0] for r in rows]


def test_sigkill_mid_retrain_keeps_old_model_and_resumes_exactly_once(trained, tmp_path, digits):
    root = tmp_path / "store"
    shutil.copytree(trained, root)
    with Sisa.open(root) as s:
        victim = s.assignment()[0][0][5]  # shard 0, slice 1: all three slices are retrained
        served_before = s.predict_proba(digits.test.x)
        checkpoints_before = set(s.files_.checkpoint_keys())
    proc = _spawn("slow", root, victim, tmp_path)
    try:
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline and proc.poll() is None:
            # saved = weights and then the sidecar written; the sidecar is the commit mark
            new = {p.stem for p in (root / "checkpoints").glob("*.json")} - checkpoints_before
            if _status(root, "crash-1") == "applying" and new:
                break  # one slice of the replay is saved, the next is being trained
            time.sleep(0.02)
        assert proc.poll() is None, f"the child finished before it could be killed: {proc.communicate()}"
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == -signal.SIGKILL

    # The request was durable, the old model still serves, the ledger is intact.
    assert _status(root, "crash-1") == "applying"
    assert json.loads((root / "current.json").read_text()) == {"version": 1}
    verify_store_ledger(root)
    with Sisa.open(root) as s:
        assert s.version_ == 1 and s.status()["pending"] == ["crash-1"]
        np.testing.assert_array_equal(s.predict_proba(digits.test.x), served_before)

        # The next start resumes it: the checkpoint saved before the kill is reused, not retrained.
        (receipt,) = s.recover()
        assert receipt.request_id == "crash-1" and receipt.status == "applied"
        assert (receipt.model_version_before, receipt.model_version_after) == (1, 2)
        assert receipt.slices_reused >= 1 and receipt.slices_reused + receipt.slices_replayed == 3
        assert receipt.shards_retrained == [0]
        assert s.recover() == [] and s.version_ == 2
        assert not list(root.rglob(".*.tmp"))
        again = s.forget([victim], reason="crash test", request_id="crash-1")
        assert again.duplicate and s.version_ == 2

        # Exactly once in the ledger, and the weights are those of an uninterrupted retrain.
        assert [r.request_id for r in s.ledger_.requests()] == ["crash-1"]
        assert _events(root) == ["received", "applying", "applying", "applied"]
        for k in range(CONFIG.shards):
            ref = train_shard_reference(digits.train, CONFIG, k, forgotten=[victim])
            got = s.shard_weights(k)
            assert all(torch.equal(ref[n], got[n]) for n in ref), f"shard {k} is not the exact retrain"
    verify_store_ledger(root)


def test_sigkill_after_the_switch_is_not_applied_twice(trained, tmp_path, digits):
    root = tmp_path / "store"
    shutil.copytree(trained, root)
    with Sisa.open(root) as s:
        victim = s.assignment()[1][2][0]
    proc = _spawn("die-after-publish", root, victim, tmp_path)
    proc.wait(timeout=180)
    assert proc.returncode == -signal.SIGKILL, proc.communicate()
    assert _status(root, "crash-1") == "applying"
    assert json.loads((root / "current.json").read_text()) == {"version": 2}
    with Sisa.open(root) as s:
        doc = s.current()
        (receipt,) = s.recover()
        assert receipt.status == "applied" and receipt.model_version_after == 2
        assert s.version_ == 2 and s.current() == doc  # recorded, not retrained
        assert _events(root) == ["received", "applying", "applied"]
        assert victim in doc["forgotten"]
