"""One forget request for every model: what to forget, independent of how.

A :class:`ForgetRequest` names the data a user wants a model to stop depending on:
example ids, data subjects (every example of a person), classes, a selection rule
(``random:0.1``, ``memorized-stratum:high``) and/or concept examples (texts that
describe a concept, for language models and suppression guards). The bench, the
language-model bench, SISA, :func:`obliviate.forget`, the guards and the policy
layer all take this one type. It is a description only: which rows it selects is
decided by the task that holds the data (see :mod:`obliviate.data.forget` for
arrays and :mod:`obliviate.tasks` for the rest).

The command-line form is ``KIND:ARGUMENT`` (``ids:FILE``, ``subjects:A,B``,
``class:3``, ``random:0.1``, ``memorized:0.05``, ``concept:FILE``);
:meth:`ForgetRequest.parse` turns it into a request and :meth:`describe`
gives it back.

Ids files (``ids:FILE``): a ``.txt`` (or any other suffix) file holds one id per
line, exactly as written; only the line ending is removed, so an id may contain
spaces and commas. Blank lines are skipped. A line with leading or trailing
whitespace is kept as written: if the data has no such id, the error names it and
the stripped id that does exist. A ``.csv`` file is read with its header, and the
ids are the column ``id`` (or the column named after ``#``: ``ids:people.csv#user``).
A ``.json`` file holds a list of ids or an object with an ``ids`` list.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from obliviate.errors import ForgetSetError
from obliviate.registry import closest

#: the kinds of the ``KIND:ARGUMENT`` form that map to fields of the request; any other
#: kind is a selection rule kept in ``spec`` (checked by the task that applies it).
FIELD_KINDS = ("ids", "subjects", "class", "concept")
RULE_KINDS = ("random", "memorized", "memorized-stratum")


def _strings(values: Iterable[Any], what: str) -> tuple[str, ...]:
    out = []
    for v in values:
        if isinstance(v, float) and v != v:  # NaN
            raise ForgetSetError(f"{what} contains a missing value (NaN); list each one as text.")
        out.append(str(v))
    return tuple(dict.fromkeys(out))


def read_ids_file(arg: str) -> tuple[str, ...]:
    """The ids listed in an ids file (formats in the module docstring)."""
    column = "id"
    path_text = arg
    if "#" in arg and Path(arg.rsplit("#", 1)[0]).suffix.lower() == ".csv":
        path_text, column = arg.rsplit("#", 1)
    path = Path(path_text)
    if not path.is_file():
        raise ForgetSetError(
            f"ids:{arg}: no such file. Give a text file with one id per line, a CSV file with an "
            "'id' column (or ids:FILE.csv#COLUMN), or a JSON list of ids.")
    suffix = path.suffix.lower()
    try:
        if suffix == ".csv":
            with path.open(newline="") as fh:
                reader = csv.DictReader(fh)
                if reader.fieldnames is None or column not in reader.fieldnames:
                    have = ", ".join(reader.fieldnames or []) or "none"
                    raise ForgetSetError(f"ids:{arg}: the CSV file has no column {column!r} (columns: {have}); "
                                         "name the column with ids:FILE.csv#COLUMN.")
                ids = [row[column] for row in reader if row.get(column) not in (None, "")]
        elif suffix == ".json":
            data = json.loads(path.read_text())
            if isinstance(data, Mapping):
                data = data.get("ids")
            if not isinstance(data, list) or not all(isinstance(v, (str, int)) for v in data):
                raise ForgetSetError(f"ids:{arg}: a JSON ids file must hold a list of ids (strings or integers) "
                                     'or an object {"ids": [...]}.')
            ids = [str(v) for v in data]
        else:
            ids = [line for line in path.read_text().splitlines() if line.strip()]
    except (UnicodeDecodeError, json.JSONDecodeError, csv.Error) as exc:
        raise ForgetSetError(f"ids:{arg}: could not read the file ({exc}); give UTF-8 text, CSV or JSON.") from None
    if not ids:
        raise ForgetSetError(f"ids:{arg}: the file lists no ids; the forget set would be empty.")
    return tuple(dict.fromkeys(ids))


def _read_concept_file(arg: str) -> tuple[str, ...]:
    path = Path(arg)
    if not path.is_file():
        raise ForgetSetError(f"concept:{arg}: no such file. Give a text file with one concept example per line.")
    lines = tuple(dict.fromkeys(line.strip() for line in path.read_text().splitlines() if line.strip()))
    if not lines:
        raise ForgetSetError(f"concept:{arg}: the file holds no example.")
    return lines


@dataclass(frozen=True)
class ForgetRequest:
    """What to forget. The selections are united: a row is forgotten if any of them names it.

    ids: example ids. subjects: data-subject ids (every example of that person).
    classes: class labels (index or name). spec: a selection rule such as
    ``random:0.1`` or ``memorized-stratum:high``. concept: texts that describe a
    concept (used by language-model methods and guards; they select no row).
    source: how the request was written (``ids:forget.txt``), for reports.
    """

    ids: tuple[str, ...] = ()
    subjects: tuple[str, ...] = ()
    classes: tuple[str, ...] = ()
    spec: str | None = None
    concept: tuple[str, ...] = ()
    source: str = field(default="", compare=False)

    def __post_init__(self) -> None:
        for name in ("ids", "subjects", "classes", "concept"):
            value = getattr(self, name)
            if isinstance(value, str):
                raise ForgetSetError(f"ForgetRequest.{name} must be a list of strings, not one string "
                                     f"({value!r}); write [{value!r}].")
            object.__setattr__(self, name, _strings(value, f"ForgetRequest.{name}"))
        if self.spec is not None:
            kind = self.spec.split(":", 1)[0]
            if ":" not in self.spec or kind in FIELD_KINDS:
                raise ForgetSetError(
                    f"ForgetRequest.spec {self.spec!r} must be a selection rule KIND:ARGUMENT with KIND one of "
                    f"{', '.join(RULE_KINDS)} (ids, subjects, classes and concept examples have fields of their own).")
        if not (self.ids or self.subjects or self.classes or self.spec or self.concept):
            raise ForgetSetError("The forget request is empty: give ids, subjects, classes, a rule such as "
                                 "random:0.1, or concept examples.")

    # ------------------------------------------------------------------ forms
    @classmethod
    def parse(cls, text: str) -> ForgetRequest:
        """The request written as ``KIND:ARGUMENT`` (see the module docstring)."""
        if not isinstance(text, str) or ":" not in text:
            raise ForgetSetError(
                f"Malformed forget spec {text!r}: use KIND:ARGUMENT with KIND one of "
                f"{', '.join(sorted(FIELD_KINDS + RULE_KINDS))}, e.g. random:0.1 or class:3.")
        kind, arg = text.split(":", 1)
        if not arg:
            raise ForgetSetError(f"Malformed forget spec {text!r}: the argument after ':' is empty.")
        if kind == "ids":
            return cls(ids=read_ids_file(arg), source=text)
        if kind == "subjects":
            wanted = [s.strip() for s in arg.split(",") if s.strip()]
            if not wanted:
                raise ForgetSetError("subjects: needs at least one subject id, e.g. subjects:alice,bob.")
            return cls(subjects=tuple(wanted), source=text)
        if kind == "class":
            return cls(classes=tuple(a.strip() for a in arg.split(",") if a.strip()), source=text)
        if kind == "concept":
            return cls(concept=_read_concept_file(arg), source=text)
        return cls(spec=text, source=text)

    @classmethod
    def coerce(cls, value: ForgetRequest | str | Mapping[str, Any]) -> ForgetRequest:
        """A request from what users pass: a request, a ``KIND:ARGUMENT`` string or a dict of fields."""
        if isinstance(value, ForgetRequest):
            return value
        if isinstance(value, str):
            return cls.parse(value)
        if isinstance(value, Mapping):
            return cls.from_dict(value)
        raise ForgetSetError(f"A forget request is a 'KIND:ARGUMENT' string, a dict or a ForgetRequest; "
                             f"got {type(value).__name__}.")

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ForgetRequest:
        valid = ("ids", "subjects", "classes", "spec", "concept", "source")
        unknown = [k for k in data if k not in valid]
        if unknown:
            hints = [f"{k!r}" + (f" (did you mean {closest(k, list(valid))!r}?)" if closest(k, list(valid)) else "")
                     for k in unknown]
            raise ForgetSetError(f"Unknown forget-request key(s) {', '.join(hints)}. Valid keys: {', '.join(valid)}.")
        values = dict(data)
        for key in ("ids", "subjects", "classes", "concept"):
            if key in values and values[key] is None:
                values[key] = ()
            elif key in values and not isinstance(values[key], (list, tuple)):
                raise ForgetSetError(f"forget request {key!r} must be a list; got {values[key]!r}.")
        return cls(**values)

    def to_dict(self) -> dict[str, Any]:
        return {"ids": list(self.ids), "subjects": list(self.subjects), "classes": list(self.classes),
                "spec": self.spec, "concept": list(self.concept), "source": self.describe()}

    def describe(self) -> str:
        """A short form for reports: the source string when there is one."""
        if self.source:
            return self.source
        parts = []
        if self.spec:
            parts.append(self.spec)
        if self.classes:
            parts.append("class:" + ",".join(self.classes))
        if self.subjects:
            parts.append("subjects:" + ",".join(self.subjects[:5]) + ("..." if len(self.subjects) > 5 else ""))
        if self.ids:
            parts.append(f"ids:{len(self.ids)} ids")
        if self.concept:
            parts.append(f"concept:{len(self.concept)} examples")
        return " + ".join(parts)

    @property
    def rule_kind(self) -> str | None:
        return self.spec.split(":", 1)[0] if self.spec else None

    @property
    def selects_rows(self) -> bool:
        """False for a concept-only request (it names no training row)."""
        return bool(self.ids or self.subjects or self.classes or self.spec)
