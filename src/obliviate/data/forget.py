"""Forget-set specs: ``KIND:ARGUMENT`` strings that select training examples to forget.

Built in: ``random:FRACTION``, ``class:LABEL``, ``ids:FILE``, ``subjects:ID,...``.
A new kind registers a selector with ``FORGET_SPECS.register("kind", fn)``;
a selector maps ``(argument, train, seed)`` to row positions. Every selection
is validated here: empty and whole-dataset forget sets are errors.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from obliviate.data.dataset import ArrayDataset
from obliviate.errors import ForgetSetError, UnknownNameError
from obliviate.registry import Registry

Selector = Callable[[str, ArrayDataset, int], np.ndarray]
FORGET_SPECS: Registry[Selector] = Registry("forget-set kind")


@dataclass(frozen=True)
class ForgetSplit:
    """The training set divided into the examples to forget and those to retain."""

    spec: str
    forget: ArrayDataset
    retain: ArrayDataset
    forget_index: np.ndarray  # positions in the training set

    @property
    def fraction(self) -> float:
        return len(self.forget) / (len(self.forget) + len(self.retain))


def _random(arg: str, train: ArrayDataset, seed: int) -> np.ndarray:
    try:
        frac = float(arg)
    except ValueError:
        raise ForgetSetError(
            f"random:{arg} is not valid: FRACTION must be a number in (0, 1), e.g. random:0.1."
        ) from None
    if not 0.0 < frac < 1.0:
        raise ForgetSetError(f"random:{arg} is not valid: FRACTION must be in (0, 1), e.g. random:0.1.")
    n = int(round(frac * len(train)))
    if n == 0:
        raise ForgetSetError(
            f"random:{arg} selects no example of {len(train)}; use a larger fraction."
        )
    rng = np.random.default_rng([seed, 0xF06])
    return np.sort(rng.choice(len(train), size=n, replace=False))


def _class(arg: str, train: ArrayDataset, seed: int) -> np.ndarray:
    label: int | None = None
    if train.classes is not None and arg in train.classes:
        label = train.classes.index(arg)
    else:
        try:
            label = int(arg)
        except ValueError:
            names = ", ".join(train.classes) if train.classes else f"0..{train.n_classes - 1}"
            raise ForgetSetError(
                f"class:{arg} is not valid: LABEL must be a class index or name ({names})."
            ) from None
    if not 0 <= label < train.n_classes:
        raise ForgetSetError(
            f"class:{arg} is out of range: this dataset has classes 0..{train.n_classes - 1}."
        )
    return np.flatnonzero(train.y == label)


def _ids(arg: str, train: ArrayDataset, seed: int) -> np.ndarray:
    path = Path(arg)
    if not path.is_file():
        raise ForgetSetError(
            f"ids:{arg}: no such file. Give a text file with one example id per line "
            "(commas and whitespace also separate ids)."
        )
    text = path.read_text().replace(",", " ").split()
    if not text:
        raise ForgetSetError(f"ids:{arg}: the file lists no ids; the forget set would be empty.")
    uniq = list(dict.fromkeys(text))
    return np.sort(train.positions(uniq))


def _subjects(arg: str, train: ArrayDataset, seed: int) -> np.ndarray:
    if train.subjects is None:
        raise ForgetSetError(
            f"subjects:{arg}: {train.name} has no subject column, so examples cannot be "
            "selected by person. Load the data with a subject column (e.g. --subject-column)."
        )
    wanted = [s.strip() for s in arg.split(",") if s.strip()]
    if not wanted:
        raise ForgetSetError("subjects: needs at least one subject id, e.g. subjects:alice,bob.")
    known = set(train.subjects)
    missing = [s for s in wanted if s not in known]
    if missing:
        raise ForgetSetError(
            f"subjects:{arg}: unknown subject id(s) {', '.join(missing[:5])}; "
            f"known subjects look like {', '.join(sorted(known)[:3])}."
        )
    return np.flatnonzero(np.isin(train.subjects, wanted))


FORGET_SPECS.register("random", _random)
FORGET_SPECS.register("class", _class)
FORGET_SPECS.register("ids", _ids)
FORGET_SPECS.register("subjects", _subjects)


def parse_spec(spec: str) -> tuple[str, str]:
    """Split ``KIND:ARG`` and check the kind exists."""
    if not isinstance(spec, str) or ":" not in spec:
        raise ForgetSetError(
            f"Malformed forget spec {spec!r}: use KIND:ARGUMENT with KIND one of "
            f"{', '.join(FORGET_SPECS.names())}, e.g. random:0.1 or class:3."
        )
    kind, arg = spec.split(":", 1)
    try:
        FORGET_SPECS.get(kind)
    except UnknownNameError as exc:
        raise ForgetSetError(f"Malformed forget spec {spec!r}: {exc}") from None
    if not arg:
        raise ForgetSetError(f"Malformed forget spec {spec!r}: the argument after ':' is empty.")
    return kind, arg


def split_forget(train: ArrayDataset, spec: str, *, seed: int = 0) -> ForgetSplit:
    """Select the forget set named by ``spec`` and return it with the retain set."""
    kind, arg = parse_spec(spec)
    index = np.unique(np.asarray(FORGET_SPECS.get(kind)(arg, train, seed), dtype=np.int64))
    return make_split(train, index, spec=spec)


def make_split(train: ArrayDataset, forget_index: np.ndarray, *, spec: str = "custom") -> ForgetSplit:
    """Build a :class:`ForgetSplit` from row positions, rejecting empty and whole-set selections."""
    forget_index = np.unique(np.asarray(forget_index, dtype=np.int64))
    if len(forget_index) == 0:
        raise ForgetSetError(f"The forget set {spec!r} is empty: it selects no training example.")
    if forget_index.min() < 0 or forget_index.max() >= len(train):
        raise ForgetSetError(f"Forget positions must be in 0..{len(train) - 1}.")
    if len(forget_index) >= len(train):
        raise ForgetSetError(
            f"The forget set {spec!r} is the whole training set ({len(train)} examples): nothing "
            "would remain to train on. Unlearning everything is retraining from nothing; "
            "choose a smaller forget set."
        )
    mask = np.zeros(len(train), dtype=bool)
    mask[forget_index] = True
    return ForgetSplit(
        spec=spec,
        forget=train.subset(mask, name=f"{train.name}/forget"),
        retain=train.subset(~mask, name=f"{train.name}/retain"),
        forget_index=forget_index,
    )
