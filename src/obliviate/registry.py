"""A tiny name -> object registry shared by methods, datasets, models and metrics.

Registration happens once, at import of the module that defines the object;
lookups of unknown names raise :class:`UnknownNameError` listing the valid
names and the closest match.
"""

from __future__ import annotations

import difflib
import importlib
from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

from obliviate.errors import UnknownNameError

T = TypeVar("T")


def closest(name: str, choices: list[str]) -> str | None:
    """Return the closest valid spelling of ``name`` among ``choices`` (or None)."""
    found = difflib.get_close_matches(name, choices, n=1, cutoff=0.5)
    return found[0] if found else None


class Registry(Generic[T]):
    """Maps names to objects of one kind (``kind`` is used in error messages)."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._items: dict[str, T] = {}
        self._lazy: dict[str, str] = {}

    def register_lazy(self, name: str, module: str) -> None:
        """Declare that importing ``module`` registers ``name``; it is imported on first lookup.

        This is how a lower layer offers an entry that a higher layer implements (the
        ``memorized:*`` forget specs need trained models) without importing it.
        """
        self._lazy[name] = module

    def _resolve(self, name: str) -> None:
        module = self._lazy.pop(name, None)
        if module is not None and name not in self._items:
            importlib.import_module(module)

    def register(self, name: str, obj: T | None = None) -> Callable[[T], T] | T:
        """Register ``obj`` under ``name``; usable as a decorator when ``obj`` is omitted."""

        def _add(o: T) -> T:
            if name in self._items and self._items[name] is not o:
                raise ValueError(f"{self.kind} {name!r} is already registered")
            self._items[name] = o
            self._lazy.pop(name, None)
            return o

        if obj is None:
            return _add
        return _add(obj)

    def get(self, name: str) -> T:
        self._resolve(name)
        try:
            return self._items[name]
        except KeyError:
            names = self.names()
            hint = closest(name, names)
            msg = f"Unknown {self.kind} {name!r}."
            if hint:
                msg += f" Did you mean {hint!r}?"
            msg += f" Valid {self.kind}s: {', '.join(names)}."
            raise UnknownNameError(msg) from None

    def names(self) -> list[str]:
        return sorted({*self._items, *self._lazy})

    def items(self) -> list[tuple[str, T]]:
        for name in list(self._lazy):
            self._resolve(name)
        return sorted(self._items.items())

    def __contains__(self, name: object) -> bool:
        return name in self._items or name in self._lazy

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self.names())
