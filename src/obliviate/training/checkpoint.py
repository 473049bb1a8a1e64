"""Checkpoints: safetensors weights plus a JSON manifest, written atomically.

Nothing here unpickles: safetensors holds only tensors, so loading an
untrusted checkpoint cannot run code.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import nn

from obliviate.errors import CheckpointError
from obliviate.fileio import atomic_write_bytes, atomic_write_json, fsync_dir

__all__ = ["atomic_write_bytes", "atomic_write_json", "load_checkpoint", "load_into", "load_weights",
           "read_manifest", "save_checkpoint", "state_to_tensors"]

WEIGHTS = "model.safetensors"
MANIFEST = "manifest.json"


def state_to_tensors(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().cpu().contiguous().clone() for k, v in model.state_dict().items()}


def save_checkpoint(model: nn.Module, directory: str | os.PathLike[str], manifest: dict[str, Any]) -> Path:
    """Save weights and manifest into ``directory`` (created). Each file is replaced atomically;
    the manifest is written last and records the weights' hash, so a crash between the two
    writes is detected on load."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    weights = directory / WEIGHTS
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".weights.", suffix=".tmp")
    os.chmod(tmp, 0o644)
    os.close(fd)
    try:
        save_file(state_to_tensors(model), tmp)
        with open(tmp, "rb") as fh:
            digest = hashlib.sha256(fh.read()).hexdigest()
            os.fsync(fh.fileno())
        os.replace(tmp, weights)
        fsync_dir(directory)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    atomic_write_json(directory / MANIFEST, {**manifest, "weights_sha256": digest})
    return directory


def read_manifest(directory: str | os.PathLike[str]) -> dict[str, Any]:
    path = Path(directory) / MANIFEST
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise CheckpointError(f"No checkpoint manifest at {path}.") from None
    except json.JSONDecodeError as exc:
        raise CheckpointError(f"Checkpoint manifest {path} is corrupt ({exc}); delete the checkpoint and retrain.") from None


def load_weights(path: str | os.PathLike[str], *, expected_sha256: str | None = None) -> dict[str, torch.Tensor]:
    """Read a safetensors file, verifying its hash when one is given."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"No weights file at {path}.")
    if expected_sha256 is not None:
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        if digest != expected_sha256:
            raise CheckpointError(
                f"Checkpoint {path} does not match its manifest (sha256 {digest[:12]}... != "
                f"{expected_sha256[:12]}...): it is corrupt or was modified. Delete it and retrain."
            )
    try:
        return load_file(str(path))
    except (SafetensorError, OSError, ValueError) as exc:
        raise CheckpointError(f"Checkpoint {path} is corrupt or not a safetensors file: {exc}.") from None


def load_into(model: nn.Module, tensors: dict[str, torch.Tensor], *, source: str = "checkpoint") -> nn.Module:
    """Copy ``tensors`` into ``model``, with a clear error on missing/unexpected keys or shapes."""
    own = model.state_dict()
    missing = sorted(set(own) - set(tensors))
    unexpected = sorted(set(tensors) - set(own))
    wrong = sorted(k for k in set(own) & set(tensors) if tuple(own[k].shape) != tuple(tensors[k].shape))
    if missing or unexpected or wrong:
        parts = []
        if missing:
            parts.append(f"missing {missing[:5]}")
        if unexpected:
            parts.append(f"unexpected {unexpected[:5]}")
        if wrong:
            parts.append("shape mismatch " + ", ".join(
                f"{k}: {tuple(tensors[k].shape)} vs model {tuple(own[k].shape)}" for k in wrong[:5]))
        raise CheckpointError(
            f"{source} does not fit this model ({'; '.join(parts)}). Build the model with the same "
            "architecture and options that produced the checkpoint."
        )
    model.load_state_dict(tensors)
    return model


def load_checkpoint(model: nn.Module, directory: str | os.PathLike[str]) -> dict[str, Any]:
    """Load weights from ``directory`` into ``model``; returns the manifest."""
    manifest = read_manifest(directory)
    tensors = load_weights(Path(directory) / WEIGHTS, expected_sha256=manifest.get("weights_sha256"))
    load_into(model, tensors, source=str(directory))
    return manifest
