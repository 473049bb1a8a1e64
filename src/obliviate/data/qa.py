"""Question-answer examples in the TOFU schema, and the one prompt format.

A :class:`QAExample` carries the TOFU fields (``question``, ``answer``,
``paraphrased_question``, ``paraphrased_answer``, ``perturbed_answer``) plus a
stable unique ``id`` and the ``subject`` it is about (a person or author id),
so forget sets can be stated per example or per subject.

:func:`format_qa` is the only place that turns a question (and answer) into
model text. Training, evaluation and attacks must all call it, so the prompt a
model is scored on is exactly the prompt it was trained on, and the prompt is
always a prefix of the training text (answer-only losses rely on that).
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, overload

from obliviate.errors import DataError

__all__ = ["QAExample", "QADataset", "format_qa", "TOFU_FIELDS"]

# Field order of the TOFU ``*_perturbed`` files.
TOFU_FIELDS: tuple[str, ...] = (
    "question",
    "answer",
    "paraphrased_answer",
    "perturbed_answer",
    "paraphrased_question",
)


def format_qa(question: str, answer: str | None = None) -> str:
    """Return the model text for a question, with its answer when given.

    ``format_qa(q)`` is the prompt ``"Question: {q}\\nAnswer:"``;
    ``format_qa(q, a)`` is that prompt followed by ``" {a}"``. The prompt is
    therefore always an exact prefix of the full text.
    """
    prompt = f"Question: {question.strip()}\nAnswer:"
    if answer is None:
        return prompt
    return f"{prompt} {answer.strip()}"


def _check_str(name: str, value: Any, problems: list[str], *, optional: bool = False) -> None:
    if value is None and optional:
        return
    if not isinstance(value, str):
        kind = "a string or None" if optional else "a string"
        problems.append(f"'{name}' must be {kind}; got {type(value).__name__} instead")
    elif not value.strip() and name in ("id", "subject", "question"):
        problems.append(f"'{name}' must not be empty")


@dataclass(frozen=True)
class QAExample:
    """One question about one subject, with the TOFU evaluation variants.

    ``perturbed_answer`` holds plausible wrong answers of the same type as the
    true one (empty when the source has none); lists are stored as tuples.
    """

    id: str
    subject: str
    question: str
    answer: str
    paraphrased_question: str | None = None
    paraphrased_answer: str | None = None
    perturbed_answer: tuple[str, ...] = field(default=())

    def __post_init__(self) -> None:
        problems: list[str] = []
        for name in ("id", "subject", "question", "answer"):
            _check_str(name, getattr(self, name), problems)
        for name in ("paraphrased_question", "paraphrased_answer"):
            _check_str(name, getattr(self, name), problems, optional=True)
        perturbed = self.perturbed_answer
        if isinstance(perturbed, str) or not isinstance(perturbed, Iterable):
            problems.append(
                "'perturbed_answer' must be a list or tuple of strings; "
                f"got {type(perturbed).__name__} instead"
            )
        else:
            perturbed = tuple(perturbed)
            if not all(isinstance(p, str) for p in perturbed):
                problems.append("'perturbed_answer' must contain only strings")
            object.__setattr__(self, "perturbed_answer", perturbed)
        if problems:
            raise DataError(
                f"Invalid QAExample {self.id!r}: " + "; ".join(problems) + "."
            )

    @property
    def prompt(self) -> str:
        """The question as the model sees it (see :func:`format_qa`)."""
        return format_qa(self.question)

    @property
    def text(self) -> str:
        """Prompt plus answer, for plain language-model training."""
        return format_qa(self.question, self.answer)

    def to_dict(self) -> dict[str, Any]:
        """All fields, JSON-ready (``perturbed_answer`` as a list)."""
        return {
            "id": self.id,
            "subject": self.subject,
            "question": self.question,
            "answer": self.answer,
            "paraphrased_question": self.paraphrased_question,
            "paraphrased_answer": self.paraphrased_answer,
            "perturbed_answer": list(self.perturbed_answer),
        }

    def to_tofu_record(self) -> dict[str, Any]:
        """The record as a TOFU file would hold it.

        Keys follow the TOFU field order; absent paraphrases and an empty
        ``perturbed_answer`` are left out, so a plain split gives
        ``{question, answer}`` and a full one the five ``*_perturbed`` keys.
        """
        record: dict[str, Any] = {}
        for name in TOFU_FIELDS:
            value = getattr(self, name)
            if name == "perturbed_answer":
                if value:
                    record[name] = list(value)
            elif value is not None:
                record[name] = value
        return record

    @classmethod
    def from_dict(cls, record: dict[str, Any]) -> QAExample:
        """Inverse of :meth:`to_dict`; missing optional keys default to empty."""
        missing = [k for k in ("id", "subject", "question", "answer") if k not in record]
        if missing:
            raise DataError(
                f"QA record is missing required key(s) {missing}; "
                f"it has {sorted(record)}. Each record needs id, subject, question, answer."
            )
        return cls(
            id=record["id"],
            subject=record["subject"],
            question=record["question"],
            answer=record["answer"],
            paraphrased_question=record.get("paraphrased_question"),
            paraphrased_answer=record.get("paraphrased_answer"),
            perturbed_answer=tuple(record.get("perturbed_answer") or ()),
        )


class QADataset(Sequence[QAExample]):
    """An ordered, immutable collection of :class:`QAExample` with unique ids.

    Order is kept as given, so the same inputs always give the same dataset.
    """

    def __init__(self, examples: Iterable[QAExample], *, name: str | None = None) -> None:
        items = tuple(examples)
        bad = [type(e).__name__ for e in items if not isinstance(e, QAExample)]
        if bad:
            raise DataError(
                f"QADataset takes QAExample objects; got {sorted(set(bad))}. "
                "Build records with QAExample(...) or QAExample.from_dict(...)."
            )
        index: dict[str, int] = {}
        duplicates: list[str] = []
        for i, ex in enumerate(items):
            if ex.id in index:
                duplicates.append(ex.id)
            index[ex.id] = i
        if duplicates:
            shown = sorted(set(duplicates))
            raise DataError(
                f"QADataset{f' {name!r}' if name else ''} has {len(duplicates)} duplicate id(s), "
                f"e.g. {shown[:5]}. Ids must be unique; give each example its own id."
            )
        self._examples = items
        self._index = index
        self.name = name

    # Sequence protocol -------------------------------------------------
    def __len__(self) -> int:
        return len(self._examples)

    @overload
    def __getitem__(self, i: int) -> QAExample: ...

    @overload
    def __getitem__(self, i: slice) -> QADataset: ...

    def __getitem__(self, i: int | slice) -> QAExample | QADataset:
        if isinstance(i, slice):
            return QADataset(self._examples[i], name=self.name)
        return self._examples[i]

    def __iter__(self) -> Iterator[QAExample]:
        return iter(self._examples)

    def __contains__(self, item: object) -> bool:
        """``"some-id" in ds`` tests ids; ``example in ds`` tests the whole example."""
        if isinstance(item, str):
            return item in self._index
        if isinstance(item, QAExample):
            i = self._index.get(item.id)
            return i is not None and self._examples[i] == item
        return False

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, QADataset):
            return NotImplemented
        return self.name == other.name and self._examples == other._examples

    def __hash__(self) -> int:
        return hash((self.name, self._examples))

    def __repr__(self) -> str:
        return (
            f"QADataset(name={self.name!r}, n_examples={len(self)}, "
            f"n_subjects={len(self.subjects())})"
        )

    # Views -------------------------------------------------------------
    @property
    def ids(self) -> tuple[str, ...]:
        return tuple(ex.id for ex in self._examples)

    def get(self, example_id: str) -> QAExample:
        """The example with this id; :class:`DataError` if there is none."""
        try:
            return self._examples[self._index[example_id]]
        except KeyError:
            raise DataError(
                f"No example with id {example_id!r} in {self._label()}; "
                f"ids look like {list(self.ids[:3])}."
            ) from None

    def subjects(self) -> tuple[str, ...]:
        """Distinct subjects, in order of first appearance."""
        return tuple(dict.fromkeys(ex.subject for ex in self._examples))

    def subset(self, ids: Iterable[str], *, name: str | None = None) -> QADataset:
        """The examples with these ids, in this dataset's order.

        Unknown ids raise :class:`DataError` rather than being dropped, so a
        typo in a forget set cannot silently shrink it.
        """
        wanted = set(self._check_ids(ids))
        return QADataset(
            (ex for ex in self._examples if ex.id in wanted), name=name or self.name
        )

    def exclude(self, ids: Iterable[str], *, name: str | None = None) -> QADataset:
        """All examples except those with these ids (which must exist)."""
        dropped = set(self._check_ids(ids))
        return QADataset(
            (ex for ex in self._examples if ex.id not in dropped), name=name or self.name
        )

    def by_subjects(self, subjects: Iterable[str], *, name: str | None = None) -> QADataset:
        """All examples about any of ``subjects`` (each must occur here)."""
        if isinstance(subjects, str):
            subjects = [subjects]
        wanted = list(dict.fromkeys(subjects))
        known = set(self.subjects())
        unknown = [s for s in wanted if s not in known]
        if unknown:
            raise DataError(
                f"{len(unknown)} subject(s) not in {self._label()}: {unknown[:5]}. "
                f"Known subjects look like {list(self.subjects()[:3])}; "
                "call .subjects() for the full list."
            )
        keep = set(wanted)
        return QADataset(
            (ex for ex in self._examples if ex.subject in keep), name=name or self.name
        )

    def texts(self) -> list[str]:
        """``format_qa(question, answer)`` for every example."""
        return [ex.text for ex in self._examples]

    @staticmethod
    def concat(datasets: Iterable[QADataset], *, name: str | None = None) -> QADataset:
        """Join datasets in order; ids must stay unique across them."""
        return QADataset((ex for ds in datasets for ex in ds), name=name)

    # Files -------------------------------------------------------------
    def to_jsonl(self, path: str | os.PathLike[str]) -> Path:
        """Write one JSON object per line (see :meth:`QAExample.to_dict`).

        The file is written to a temporary file in the same folder and then
        moved into place with :func:`os.replace`, so readers never see a
        half-written file.
        """
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as fh:
                for ex in self._examples:
                    fh.write(json.dumps(ex.to_dict(), ensure_ascii=False) + "\n")
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return target

    @classmethod
    def from_jsonl(cls, path: str | os.PathLike[str], *, name: str | None = None) -> QADataset:
        """Read a file written by :meth:`to_jsonl`; ``name`` defaults to the file stem."""
        source = Path(path)
        examples: list[QAExample] = []
        with source.open(encoding="utf-8") as fh:
            for lineno, line in enumerate(fh, start=1):
                if not line.strip():
                    continue
                try:
                    record = json.loads(line)
                except json.JSONDecodeError as err:
                    raise DataError(
                        f"{source}:{lineno} is not valid JSON ({err.msg}). "
                        "Each line must hold one JSON object."
                    ) from None
                if not isinstance(record, dict):
                    raise DataError(f"{source}:{lineno} holds a {type(record).__name__}, not an object.")
                try:
                    examples.append(QAExample.from_dict(record))
                except DataError as err:
                    raise DataError(f"{source}:{lineno}: {err}") from None
        return cls(examples, name=name if name is not None else source.stem)

    # Helpers -----------------------------------------------------------
    def _label(self) -> str:
        return f"QADataset {self.name!r}" if self.name else "this QADataset"

    def _check_ids(self, ids: Iterable[str]) -> list[str]:
        if isinstance(ids, str):
            ids = [ids]
        ids = list(ids)
        unknown = [i for i in ids if i not in self._index]
        if unknown:
            raise DataError(
                f"{len(unknown)} id(s) not in {self._label()}: {unknown[:5]}. "
                f"Ids look like {list(self.ids[:3])}."
            )
        return ids
