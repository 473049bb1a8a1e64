"""Atomic file writes: a reader sees the old file or the new one, never a part, and a crash loses neither."""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any


def fsync_dir(path: str | os.PathLike[str]) -> None:
    """Make a rename in ``path`` durable (POSIX: the directory entry itself must be flushed)."""
    with contextlib.suppress(OSError):  # not every platform can open a directory
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> None:
    """Write ``data`` to ``path`` via a temporary file, fsync, rename and fsync of the folder."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.chmod(tmp, 0o644)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    fsync_dir(path.parent)


def atomic_write_json(path: str | os.PathLike[str], obj: Any) -> None:
    atomic_write_bytes(path, (json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n").encode())


#: what a run writes into its output folder
RUN_FILES = ("results.json", "config.json", "meta.json", "report.md", "report.html")


def check_output_dir(path: str | os.PathLike[str], *, overwrite: bool = False,
                     would_write: tuple[str, ...] = RUN_FILES, flag: str = "--out") -> Path:
    """Check, before any work, that ``path`` can take a run's files; create it.

    A path that is a file, a folder that cannot be written, and a folder that already holds
    a run (unless ``overwrite``) are errors that say what to do.
    """
    from obliviate.errors import ConfigError

    out = Path(path)
    if out.exists() and not out.is_dir():
        raise ConfigError(f"{flag} {out} is a file, not a folder; give a folder for the run's files.")
    existing = [name for name in would_write if (out / name).exists()]
    if existing and not overwrite:
        raise ConfigError(f"{flag} {out} already holds a run ({', '.join(existing)}); pass --overwrite to replace "
                          "it, or choose another folder.")
    try:
        out.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(dir=out, prefix=".write-check.")
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise ConfigError(f"{flag} {out} cannot be written ({exc.strerror}); choose a folder you can write to.") from None
    return out
