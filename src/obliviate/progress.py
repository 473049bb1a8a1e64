"""Progress reporting as a swappable callback.

Library code receives a :class:`Progress` and calls ``task(...)`` /
``advance(...)``; it never prints. The CLI passes :class:`RichProgress`
(or :class:`NullProgress` with ``--no-progress``).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any


class ProgressTask:
    """A handle on one running task; ``advance`` moves it forward."""

    def advance(self, n: float = 1, **info: Any) -> None:  # pragma: no cover - interface
        pass


class Progress:
    """No-op base: subclass and override ``task`` to show progress somewhere."""

    @contextlib.contextmanager
    def task(self, description: str, total: float | None = None) -> Iterator[ProgressTask]:
        yield ProgressTask()

    def log(self, message: str) -> None:
        pass


class NullProgress(Progress):
    """Shows nothing (``--no-progress``, tests, services)."""


class _RichTask(ProgressTask):
    def __init__(self, bar: Any, task_id: Any) -> None:
        self._bar, self._id = bar, task_id

    def advance(self, n: float = 1, **info: Any) -> None:
        if info:
            fields = " ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in info.items())
            self._bar.update(self._id, advance=n, info=fields)
        else:
            self._bar.update(self._id, advance=n)


class RichProgress(Progress):
    """Rich progress bars on stderr, one line per running task."""

    def __init__(self) -> None:
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn
        from rich.progress import Progress as _P

        self._console = Console(stderr=True)
        self._bar = _P(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TextColumn("{task.fields[info]}"),
            console=self._console,
            transient=True,
        )
        self._depth = 0

    @contextlib.contextmanager
    def task(self, description: str, total: float | None = None) -> Iterator[ProgressTask]:
        if self._depth == 0:
            self._bar.start()
        self._depth += 1
        task_id = self._bar.add_task(description, total=total, info="")
        try:
            yield _RichTask(self._bar, task_id)
        finally:
            self._bar.remove_task(task_id)
            self._depth -= 1
            if self._depth == 0:
                self._bar.stop()

    def log(self, message: str) -> None:
        self._console.print(message)


class _CountingTask(ProgressTask):
    def __init__(self) -> None:
        self.done = 0.0

    def advance(self, n: float = 1, **info: Any) -> None:
        self.done += n


class LineProgress(Progress):
    """One line on stderr per finished task: for logs and pipes, where live bars would print blank lines."""

    def __init__(self, stream: Any = None) -> None:
        self._stream = stream

    @contextlib.contextmanager
    def task(self, description: str, total: float | None = None) -> Iterator[ProgressTask]:
        import sys
        import time

        t0 = time.perf_counter()
        handle = _CountingTask()
        try:
            yield handle
        finally:
            count = f" {handle.done:g}/{total:g}" if total else ""
            stream = self._stream or sys.stderr
            stream.write(f"{description}:{count} done in {time.perf_counter() - t0:.1f} s\n")
            stream.flush()

    def log(self, message: str) -> None:
        import sys

        (self._stream or sys.stderr).write(message + "\n")


def get_progress(enabled: bool) -> Progress:
    """Live bars in a terminal, one line per finished task elsewhere, nothing when turned off."""
    import sys

    if not enabled:
        return NullProgress()
    return RichProgress() if sys.stderr.isatty() else LineProgress()
