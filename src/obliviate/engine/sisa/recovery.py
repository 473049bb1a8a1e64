"""Residue: files in a store that may hold data its requests asked to forget.

Every slice checkpoint's sidecar records its lineage, the example ids its weights were
trained on (:func:`obliviate.engine.sisa.training.run_shard_job`). A file is *residue*
when the served model version does not use it and it

* is a checkpoint trained on an id that any request names (forgotten, or requested and
  not yet applied), or
* is a checkpoint without a readable lineage (weights with no sidecar: a writer was killed
  between the two), or
* is a half-written temporary file.

Checkpoints the served version uses are never residue: until a request is applied its
examples are, by design, in the served model (``status`` lists such requests as pending).
Unused checkpoints trained only on live ids are kept: an interrupted retrain resumes from
them. Superseded model version documents and ``assignment.json`` hold ids, not data.
"""

from __future__ import annotations

import logging
from typing import Any

from obliviate.engine.ledger import Ledger
from obliviate.engine.store import ModelStore

log = logging.getLogger(__name__)


def requested_ids(version: dict[str, Any], ledger: Ledger) -> set[str]:
    """Ids the served version forgot plus every id any request in the ledger names."""
    ids = {str(i) for i in version.get("forgotten", [])}
    for req in ledger.requests():
        ids.update(str(i) for i in req.example_ids)
    return ids


def served_keys(version: dict[str, Any]) -> set[str]:
    return {s["key"] for sh in version["shards"] for s in sh["slices"]}


def find_residue(files: ModelStore, version: dict[str, Any], requested: set[str]) -> list[dict[str, Any]]:
    """Every residue file (see the module docstring), with why it counts."""
    out: list[dict[str, Any]] = [{"path": str(p), "reason": "half-written temporary file"} for p in files.temp_files()]
    keep = served_keys(version)
    weights = files.checkpoint_keys()
    for key in sorted((weights | files.sidecar_keys()) - keep):
        info = files.read_sidecar(key)
        lineage = info.get("trained_on") if info and info.get("key") == key else None
        if key not in weights:
            out.append({"path": str(files.sidecar_path(key)), "reason": "sidecar of deleted weights"})
        elif lineage is None:
            out.append({"path": str(files.checkpoint_path(key)), "reason": "checkpoint without a lineage record"})
        else:
            hit = sorted(set(map(str, lineage)) & requested)
            if hit:
                out.append({"path": str(files.checkpoint_path(key)), "reason": "trained on requested id(s)",
                            "ids": hit[:5], "n_ids": len(hit)})
    return out


def remove_residue(files: ModelStore, version: dict[str, Any], requested: set[str]) -> int:
    """Delete every residue file (call under the store's lock). Returns how many were removed."""
    residue = find_residue(files, version, requested)
    keys = {p.stem for p in (files.root / "checkpoints").glob("*")
            if str(p) in {r["path"] for r in residue} and not p.name.startswith(".")}
    n = files.remove_temp_files() + files.remove_checkpoints(keys)
    if residue:
        log.warning("removed %d file(s) that may hold forgotten data (left by an interrupted writer)", len(residue))
    return n


def remove_unused(files: ModelStore, version: dict[str, Any]) -> int:
    """After a publish: delete every checkpoint the served version does not use."""
    files.remove_temp_files()
    stale = (files.checkpoint_keys() | files.sidecar_keys()) - served_keys(version)
    removed = files.remove_checkpoints(stale)
    if removed:
        log.info("removed %d checkpoint(s) not used by version %d", removed, version["version"])
    return removed


__all__ = ["find_residue", "remove_residue", "remove_unused", "requested_ids", "served_keys"]
