"""Shared CLI plumbing: clean error exits and logging setup."""

from __future__ import annotations

import functools
import logging
import sys
from collections.abc import Callable
from typing import Any, TypeVar

import typer

from obliviate.errors import ObliviateError

F = TypeVar("F", bound=Callable[..., Any])

EXIT_USAGE = 2


def clean_errors(fn: F) -> F:
    """Turn obliviate's typed errors into one message on stderr and exit code 2."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except ObliviateError as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(EXIT_USAGE) from None

    return wrapper  # type: ignore[return-value]


def setup_logging(verbose: bool) -> None:
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING, stream=sys.stderr,
                        format="%(levelname)s %(name)s: %(message)s")


def parse_assignments(items: list[str] | None) -> dict[str, dict[str, Any]]:
    """``--set graddiff.lr=1e-3`` -> ``{"graddiff": {"lr": 0.001}}`` (values parsed as YAML scalars)."""
    import yaml

    from obliviate.errors import ConfigError

    out: dict[str, dict[str, Any]] = {}
    problems = []
    for item in items or []:
        key, eq, value = item.partition("=")
        method, dot, param = key.partition(".")
        if not eq or not dot or not method or not param:
            problems.append(f"--set {item!r}: use METHOD.PARAM=VALUE, e.g. --set graddiff.lr=1e-3")
            continue
        out.setdefault(method, {})[param] = _scalar(value)
    if problems:
        raise ConfigError("Invalid --set:", problems)
    return out


def _scalar(text: str) -> Any:
    """Parse a command-line value: int, float (``1e-3`` included), else YAML (lists, bools, null)."""
    import yaml

    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    return yaml.safe_load(text)
