"""SIGKILL a real `obliviate sisa forget` at every step, restart, and look at every file on disk.

After the restart (the request re-sent, as a client would) no checkpoint on disk may have
been trained on a forgotten id: every checkpoint's sidecar records its lineage, and a
checkpoint without one must not survive either. Before the restart, `sisa status` must
list what the killed writer left behind.
"""

import os
import shutil
import signal
import subprocess
import sys
import textwrap

import pytest
import torch
from typer.testing import CliRunner

from obliviate.cli.main import app
from obliviate.engine.sisa import Sisa, SisaConfig, train_shard_reference, verify_store_ledger
from obliviate.engine.store import ModelStore
from obliviate.models import ModelSpec
from obliviate.training import Recipe

pytestmark = pytest.mark.slow

CONFIG = SisaConfig(shards=2, slices=3, model=ModelSpec("mlp", {"hidden": [16]}),
                    recipe=Recipe(epochs=4, batch_size=128, lr=1e-2), seed=3)

# The real CLI in a child process, with one hook that SIGKILLs it at a chosen step.
CHILD = textwrap.dedent("""
    import os, signal, sys
    from pathlib import Path
    import obliviate.engine.store as store_mod
    from obliviate.engine.ledger import Ledger
    from obliviate.engine.store import ModelStore

    def die():
        os.kill(os.getpid(), signal.SIGKILL)

    def after(owner, name, nth=1):
        original = getattr(owner, name)
        calls = [0]
        def wrapper(*args, **kwargs):
            out = original(*args, **kwargs)
            calls[0] += 1
            if calls[0] == nth:
                die()
            return out
        setattr(owner, name, wrapper)

    hook = sys.argv[1]
    if hook == "received":
        after(Ledger, "submit")
    elif hook == "applying":
        after(Ledger, "mark_applying")
    elif hook == "one-checkpoint":
        after(ModelStore, "save_checkpoint")
    elif hook == "weights-before-sidecar":
        original = store_mod.durable_write_bytes
        def write(path, data):
            original(path, data)
            if str(path).endswith(".safetensors"):
                die()
        store_mod.durable_write_bytes = write
    elif hook == "version-before-pointer":
        original_json = store_mod.durable_write_json
        def write_json(path, obj):
            if Path(path).name == "current.json":
                die()
            original_json(path, obj)
        store_mod.durable_write_json = write_json
    elif hook == "published":
        after(ModelStore, "publish")
    elif hook == "applied":
        after(Ledger, "mark_applied")
    elif hook == "mid-gc":
        original_rm = ModelStore.remove_checkpoints
        def remove(self, keys):
            if keys:
                original_rm(self, {sorted(keys)[0]})
                die()
            return original_rm(self, keys)
        ModelStore.remove_checkpoints = remove
    from obliviate.cli.main import app
    app(sys.argv[2:], prog_name="obliviate")
""")

STEPS = ["received", "applying", "one-checkpoint", "weights-before-sidecar", "version-before-pointer",
         "published", "applied", "mid-gc"]


@pytest.fixture(scope="module")
def trained(digits, tmp_path_factory):
    root = tmp_path_factory.mktemp("recovery") / "store"
    Sisa(CONFIG, store=root).fit(digits.train, source={"dataset": "digits"}).close()
    with Sisa.open(root) as s:
        victim = s.assignment()[0][0][2]  # shard 0, slice 0: every slice of shard 0 is retrained
    return root, victim


def _files_trained_on(root, ids):
    """Every file under ``root`` that holds, or may hold, weights trained on one of ``ids``."""
    files = ModelStore(root)
    bad = [str(p) for p in root.rglob(".*.tmp")]
    for key in files.checkpoint_keys():
        info = files.read_sidecar(key)
        if info is None or "trained_on" not in info:
            bad.append(f"{key} (no lineage)")
        elif set(info["trained_on"]) & set(ids):
            bad.append(key)
    return bad


@pytest.mark.parametrize("step", STEPS)
def test_kill_at_each_step_leaves_no_trained_on_forgotten_file_after_restart(trained, tmp_path, digits, step):
    base, victim = trained
    root = tmp_path / "store"
    shutil.copytree(base, root)
    assert _files_trained_on(root, [victim])  # version 1 was trained on it
    script = tmp_path / "child.py"
    script.write_text(CHILD)
    cmd = [sys.executable, str(script), step, "sisa", "forget", "--store", str(root), "--ids", victim,
           "--reason", "crash", "--request-id", "crash-1", "--no-progress"]
    proc = subprocess.run(cmd, capture_output=True, timeout=300, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    assert proc.returncode == -signal.SIGKILL, proc.stderr.decode()[-2000:]

    # Before the restart: status reads the store without changing it and names what was left.
    with Sisa.open(root) as s:
        status = s.status()
        if step in ("published", "applied", "mid-gc"):
            # the switch happened: the superseded checkpoints still on disk hold the victim
            assert any(r["reason"] == "trained on requested id(s)" and victim in r["ids"] for r in status["residue"])
        if step == "weights-before-sidecar":
            assert any(r["reason"] == "checkpoint without a lineage record" for r in status["residue"])
    out = CliRunner().invoke(app, ["sisa", "status", "--store", str(root)])
    assert out.exit_code == 0 and '"residue"' in out.output

    # The restart: the client re-sends the same request.
    with Sisa.open(root) as s:
        receipt = s.forget([victim], reason="crash", request_id="crash-1")
        assert receipt.status == "applied" and receipt.model_version_after == 2
        assert s.version_ == 2 and victim in s.current()["forgotten"]
        assert s.status()["residue"] == [] and s.status()["pending"] == []
        assert [r.request_id for r in s.ledger_.requests()] == ["crash-1"]
        if step in ("one-checkpoint", "applied"):
            ref = train_shard_reference(digits.train, CONFIG, 0, forgotten=[victim])
            got = s.shard_weights(0)
            assert all(torch.equal(ref[n], got[n]) for n in ref), "shard 0 is not the exact retrain"
    assert _files_trained_on(root, [victim]) == []
    verify_store_ledger(root)
