"""Typed exceptions. Every message says what is wrong and how to fix it.

All errors derive from :class:`ObliviateError` so callers (the CLI, the
service) can catch one type and print a clean message instead of a traceback.
Several also derive from a builtin (``ValueError``, ``KeyError``,
``FileNotFoundError``) so generic code that expects those still works.
"""

from __future__ import annotations


class ObliviateError(Exception):
    """Base class of every error obliviate raises on purpose."""


class ConfigError(ObliviateError, ValueError):
    """A configuration value or key is invalid.

    ``problems`` lists every problem found, so a user fixes them in one pass.
    """

    def __init__(self, message: str, problems: list[str] | None = None) -> None:
        self.problems = list(problems or [])
        if self.problems:
            message = message + "\n" + "\n".join(f"  - {p}" for p in self.problems)
        super().__init__(message)


class DataError(ObliviateError, ValueError):
    """Input data is malformed (wrong shape, NaN, duplicate ids, bad labels...)."""


class DatasetNotFoundError(ObliviateError, FileNotFoundError):
    """A dataset's files could not be found in any of the places searched."""

    def __init__(self, message: str, searched: list[str] | None = None) -> None:
        self.searched = list(searched or [])
        if self.searched:
            message = message + "\nLooked in:\n" + "\n".join(f"  - {p}" for p in self.searched)
        super().__init__(message)


class ForgetSetError(ObliviateError, ValueError):
    """A forget-set spec is malformed, empty, the whole training set, or names unknown ids."""


class UnknownNameError(ObliviateError, KeyError):
    """A registry lookup (method, dataset, model, metric...) failed."""

    def __str__(self) -> str:  # KeyError quotes its message; we want it readable
        return str(self.args[0]) if self.args else ""


class CheckpointError(ObliviateError, ValueError):
    """A checkpoint is missing, corrupt, or does not match the model it is loaded into."""


class ShapeError(DataError):
    """An array or tensor has the wrong shape for the model or dataset."""


class LedgerError(ObliviateError, RuntimeError):
    """The request ledger is inconsistent or has been tampered with."""


class NotFittedError(ObliviateError, RuntimeError):
    """An estimator was used before ``fit``."""
