"""A model store on disk: content-addressed checkpoints, immutable versions, one pointer.

Layout of ``DIR``::

    store.json                    configuration (written once)
    checkpoints/<key>.safetensors weights, addressed by a hash of what produced them
    checkpoints/<key>.json        sidecar: sha256 of the weights file, examples, timings
    versions/<n>.json             model version n (immutable once written)
    current.json                  {"version": n}: the version served, switched with os.replace
    ledger.sqlite                 the request ledger (see :mod:`obliviate.engine.ledger`)
    .lock                         writers hold an exclusive flock while they change the store

Readers only follow ``current.json``; a writer writes new checkpoints and a new version
file first and switches the pointer last, so a reader sees the old model or the new one,
never a mix, and a writer killed at any point leaves the old model serving.

Every write is durable before it counts: a temporary file is written and fsynced, renamed
over the target, and then the *folder* is fsynced, so the rename itself survives a power
cut; deletions of checkpoints are made durable the same way.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import json
import logging
import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import save as safetensors_save

from obliviate.errors import CheckpointError, ConfigError, ObliviateError
from obliviate.fileio import atomic_write_bytes, fsync_dir
from obliviate.training.checkpoint import load_weights

log = logging.getLogger(__name__)


# tmp file + fsync + rename + fsync of the folder (the project's one implementation); named
# here so that the store's writes can be traced and interrupted by the crash tests.
durable_write_bytes = atomic_write_bytes


def durable_write_json(path: str | os.PathLike[str], obj: Any) -> None:
    durable_write_bytes(path, (json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n").encode())


class StoreLockedError(ObliviateError, RuntimeError):
    """Another process holds the store's write lock for longer than we were willing to wait."""


# Files a store owns: what ``clear`` deletes (never anything else in the folder).
STORE_FILES = ("store.json", "assignment.json", "current.json", "ledger.sqlite", "ledger.sqlite-wal",
               "ledger.sqlite-shm", "checkpoints", "versions")


class ModelStore:
    """Files of one store; knows nothing about how the checkpoints are trained."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)

    # -- creating ---------------------------------------------------------
    def refuse_target(self, *, overwrite: bool = False) -> None:
        """Refuse to create a store in a file, over a trained store, or in a folder holding other
        things (unless ``overwrite``). An interrupted training passes: it is resumed."""
        root = self.root
        if root.exists() and not root.is_dir():
            raise ConfigError(f"{root} is a file; give a folder for the SISA store.")
        if overwrite or not root.is_dir():
            return
        if self.exists():
            if self.current_version() is not None:
                raise ConfigError(f"{root} already holds a trained SISA model. Open it with Sisa.open, train into "
                                  "a new folder, or replace it with --overwrite (overwrite=True).")
            return
        if any(p.name != ".lock" for p in root.iterdir()):
            raise ConfigError(f"{root} is not empty and is not a SISA store; train into a new or empty folder, "
                              "or pass --overwrite (overwrite=True) to train into it anyway.")

    def clear(self) -> list[str]:
        """Delete the store's own files (``STORE_FILES``), nothing else; returns what was deleted."""
        removed = []
        for name in STORE_FILES:
            path = self.root / name
            if path.is_dir():
                shutil.rmtree(path)
            elif path.exists():
                path.unlink()
            else:
                continue
            removed.append(name)
        if removed:
            fsync_dir(self.root)
            log.warning("--overwrite: deleted %s from %s", ", ".join(removed), self.root)
        return removed

    # -- paths ------------------------------------------------------------
    @property
    def config_path(self) -> Path:
        return self.root / "store.json"

    @property
    def ledger_path(self) -> Path:
        return self.root / "ledger.sqlite"

    @property
    def current_path(self) -> Path:
        return self.root / "current.json"

    def checkpoint_path(self, key: str) -> Path:
        return self.root / "checkpoints" / f"{key}.safetensors"

    def sidecar_path(self, key: str) -> Path:
        return self.root / "checkpoints" / f"{key}.json"

    def version_path(self, version: int) -> Path:
        return self.root / "versions" / f"{version}.json"

    def exists(self) -> bool:
        return self.config_path.is_file()

    # -- config -----------------------------------------------------------
    def read_json(self, path: Path, what: str) -> Any:
        try:
            return json.loads(path.read_text())
        except FileNotFoundError:
            raise ConfigError(f"No {what} at {path}. Is {self.root} a store made by `obliviate sisa train`?") from None
        except json.JSONDecodeError as exc:
            raise CheckpointError(f"The {what} {path} is corrupt ({exc}).") from None

    def read_config(self) -> dict[str, Any]:
        return self.read_json(self.config_path, "store configuration")

    def write_config(self, config: dict[str, Any]) -> None:
        durable_write_json(self.config_path, config)

    # -- checkpoints ------------------------------------------------------
    def save_checkpoint(self, key: str, tensors: dict[str, torch.Tensor], info: dict[str, Any]) -> str:
        """Write weights then their sidecar (each atomically); returns the weights' sha256."""
        blob = safetensors_save({k: v.detach().cpu().contiguous() for k, v in tensors.items()})
        digest = hashlib.sha256(blob).hexdigest()
        durable_write_bytes(self.checkpoint_path(key), blob)
        durable_write_json(self.sidecar_path(key), {**info, "key": key, "sha256": digest})
        return digest

    def finished_checkpoint(self, key: str) -> dict[str, Any] | None:
        """The sidecar of a checkpoint that was completely written (weights present), else None.

        A writer killed between the weights and the sidecar leaves no sidecar, so the
        checkpoint is trained again rather than trusted.
        """
        side = self.sidecar_path(key)
        if not side.is_file() or not self.checkpoint_path(key).is_file():
            return None
        try:
            info = json.loads(side.read_text())
        except (OSError, json.JSONDecodeError):
            return None
        return info if info.get("key") == key and "sha256" in info else None

    def load_checkpoint(self, key: str, sha256: str) -> dict[str, torch.Tensor]:
        """Weights of checkpoint ``key``, verified against ``sha256`` (CheckpointError if not)."""
        return load_weights(self.checkpoint_path(key), expected_sha256=sha256)

    def check_checkpoint(self, key: str, sha256: str) -> None:
        """Raise CheckpointError unless the file exists and hashes to ``sha256``."""
        path = self.checkpoint_path(key)
        if not path.is_file():
            raise CheckpointError(f"Checkpoint {path} is missing. Restore the store from a backup, or retrain it.")
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        if digest != sha256:
            raise CheckpointError(
                f"Checkpoint {path} is corrupt or was modified (sha256 {digest[:12]}... != recorded "
                f"{sha256[:12]}...). Nothing was changed. Restore the file from a backup, or retrain the store."
            )

    def checkpoint_keys(self) -> set[str]:
        folder = self.root / "checkpoints"
        return {p.stem for p in folder.glob("*.safetensors")} if folder.is_dir() else set()

    def remove_checkpoints(self, keys: set[str]) -> int:
        """Delete weights first, then sidecars (a sidecar left alone is harmless and names what
        the weights held); the deletions are made durable."""
        n = 0
        for key in keys:
            for path in (self.checkpoint_path(key), self.sidecar_path(key)):
                with contextlib.suppress(FileNotFoundError):
                    path.unlink()
                    n += path.suffix == ".safetensors"
        if keys:
            fsync_dir(self.root / "checkpoints")
        return n

    def sidecar_keys(self) -> set[str]:
        folder = self.root / "checkpoints"
        return {p.stem for p in folder.glob("*.json")} if folder.is_dir() else set()

    def read_sidecar(self, key: str) -> dict[str, Any] | None:
        try:
            info = json.loads(self.sidecar_path(key).read_text())
        except (OSError, json.JSONDecodeError):
            return None
        return info if isinstance(info, dict) else None

    def temp_files(self) -> list[Path]:
        return [p for folder in (self.root, self.root / "checkpoints", self.root / "versions") if folder.is_dir()
                for p in folder.glob(".*.tmp")]

    def remove_temp_files(self) -> int:
        """Delete half-written temporary files a killed writer left (call under the lock)."""
        n = 0
        for path in self.temp_files():
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
                n += 1
                fsync_dir(path.parent)
        return n

    # -- versions ---------------------------------------------------------
    def current_version(self) -> int | None:
        if not self.current_path.is_file():
            return None
        return int(self.read_json(self.current_path, "model pointer")["version"])

    def read_version(self, version: int) -> dict[str, Any]:
        return self.read_json(self.version_path(version), f"model version {version}")

    def publish(self, doc: dict[str, Any]) -> None:
        """Write version ``doc['version']`` and then point ``current.json`` at it (atomic switch)."""
        version = int(doc["version"])
        served = self.current_version()
        if served is not None and served >= version:
            raise ConfigError(f"Model version {version} was already published in {self.root}; versions are immutable.")
        # A version file newer than the pointer is left by a writer killed before its switch;
        # it was never served, so it is replaced.
        durable_write_json(self.version_path(version), doc)
        durable_write_json(self.current_path, {"version": version})

    # -- locking ----------------------------------------------------------
    @contextlib.contextmanager
    def lock(self, *, timeout_s: float = 600.0) -> Iterator[None]:
        """Exclusive write lock (``flock``); released by the OS if the holder dies."""
        self.root.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.root / ".lock", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            deadline = time.monotonic() + timeout_s
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except OSError as exc:
                    if exc.errno not in (errno.EAGAIN, errno.EACCES):
                        raise
                    if time.monotonic() > deadline:
                        raise StoreLockedError(
                            f"Another process has been changing the store {self.root} for over "
                            f"{timeout_s:.0f}s. Wait for it to finish, or check that it is still alive."
                        ) from None
                    time.sleep(0.05)
            os.ftruncate(fd, 0)
            os.write(fd, str(os.getpid()).encode())
            yield
        finally:
            with contextlib.suppress(OSError):
                fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)


__all__ = ["ModelStore", "StoreLockedError", "durable_write_bytes", "durable_write_json", "fsync_dir"]
