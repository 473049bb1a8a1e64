"""Every rename and deletion in a store is followed by an fsync of its folder."""

import os

import pytest

from obliviate.engine.store import ModelStore, durable_write_json


@pytest.fixture
def trace(monkeypatch):
    """Record renames and fsyncs (with the path each fsynced descriptor points at)."""
    events = []
    real_replace, real_fsync, real_unlink = os.replace, os.fsync, os.unlink

    def replace(src, dst):
        real_replace(src, dst)
        events.append(("rename", os.path.dirname(os.fspath(dst))))

    def fsync(fd):
        real_fsync(fd)
        events.append(("fsync", os.readlink(f"/proc/self/fd/{fd}")))

    monkeypatch.setattr(os, "replace", replace)
    monkeypatch.setattr(os, "fsync", fsync)
    return events


def _each_rename_is_followed_by_a_folder_fsync(events):
    for i, (kind, folder) in enumerate(events):
        if kind == "rename":
            assert ("fsync", os.path.realpath(folder)) in events[i + 1:], f"no fsync of {folder} after a rename"


def test_store_writes_fsync_their_folder(tmp_path, trace):
    if not os.path.exists("/proc/self/fd"):
        pytest.skip("needs /proc to name fsynced descriptors")
    files = ModelStore(tmp_path / "store")
    files.write_config({"format": "x"})
    import torch

    files.save_checkpoint("k1", {"w": torch.zeros(2)}, {"trained_on": ["a"]})
    files.publish({"version": 1, "shards": []})
    durable_write_json(tmp_path / "store" / "assignment.json", {"shards": []})
    renames = [e for e in trace if e[0] == "rename"]
    assert len(renames) == 6
    _each_rename_is_followed_by_a_folder_fsync(trace)
    folders = {os.path.realpath(f) for _, f in renames}
    assert os.path.realpath(tmp_path / "store" / "checkpoints") in folders


def test_deleting_checkpoints_fsyncs_the_folder(tmp_path, trace):
    if not os.path.exists("/proc/self/fd"):
        pytest.skip("needs /proc to name fsynced descriptors")
    import torch

    files = ModelStore(tmp_path / "store")
    files.save_checkpoint("k1", {"w": torch.zeros(2)}, {})
    trace.clear()
    assert files.remove_checkpoints({"k1"}) == 1
    assert trace == [("fsync", os.path.realpath(tmp_path / "store" / "checkpoints"))]
    assert not files.checkpoint_path("k1").exists() and not files.sidecar_path("k1").exists()
