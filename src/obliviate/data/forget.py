"""Which rows of an :class:`ArrayDataset` a :class:`ForgetRequest` selects.

The request names ids, subjects, classes and/or a selection rule; this module
turns it into row positions and a :class:`ForgetSplit`. Rules are registered in
:data:`FORGET_SPECS` (``random`` here; ``memorized`` and ``memorized-stratum``
are implemented in :mod:`obliviate.audit.memorization` and imported on first
use); a rule maps ``(argument, train, seed)`` to row positions. Every selection
is validated here: empty and whole-dataset forget sets are errors.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from obliviate.data.dataset import ArrayDataset
from obliviate.data.request import FIELD_KINDS, ForgetRequest
from obliviate.errors import ForgetSetError
from obliviate.registry import Registry, closest

Selector = Callable[[str, ArrayDataset, int], np.ndarray]
FORGET_SPECS: Registry[Selector] = Registry("forget-set kind")


@dataclass(frozen=True)
class ForgetSplit:
    """The training set divided into the examples to forget and those to retain."""

    spec: str
    forget: ArrayDataset
    retain: ArrayDataset
    forget_index: np.ndarray  # positions in the training set
    request: ForgetRequest | None = field(default=None, compare=False)

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


FORGET_SPECS.register("random", _random)
FORGET_SPECS.register_lazy("memorized", "obliviate.audit.memorization")
FORGET_SPECS.register_lazy("memorized-stratum", "obliviate.audit.memorization")


def _class(arg: str, train: ArrayDataset) -> np.ndarray:
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


def _ids(ids: tuple[str, ...], train: ArrayDataset) -> np.ndarray:
    """Positions of exact ids; an unknown id that differs from a known one only by whitespace says so."""
    known = set(train.ids)
    padded = [i for i in ids if i not in known and i.strip() in known]
    if padded:
        raise ForgetSetError(
            f"{len(padded)} id(s) are not in {train.name} as written: " + ", ".join(repr(i) for i in padded[:5])
            + ". Ids are matched exactly (ids files keep spaces); the data has "
            + ", ".join(repr(i.strip()) for i in padded[:5]) + ". Remove the surrounding whitespace.")
    missing = [i for i in ids if i not in known]
    if missing:
        raise ForgetSetError(
            f"{len(missing)} id(s) are not in {train.name}: " + ", ".join(repr(i) for i in missing[:5])
            + (" ..." if len(missing) > 5 else "") + f". Ids there look like {', '.join(map(repr, train.ids[:3]))}; "
            "check the id column and the split.")
    return train.positions(list(ids))


def _subjects(wanted: tuple[str, ...], train: ArrayDataset) -> np.ndarray:
    arg = ",".join(wanted)
    if train.subjects is None:
        raise ForgetSetError(
            f"subjects:{arg}: {train.name} has no subject column, so examples cannot be "
            "selected by person. Load the data with a subject column (e.g. --subject-column)."
        )
    known = set(train.subjects)
    missing = [s for s in wanted if s not in known]
    if missing:
        raise ForgetSetError(
            f"subjects:{arg}: unknown subject id(s) {', '.join(missing[:5])}; "
            f"known subjects look like {', '.join(sorted(known)[:3])}."
        )
    return np.flatnonzero(np.isin(train.subjects, wanted))




def parse_spec(spec: str) -> tuple[str, str]:
    """Split ``KIND:ARG`` and check the kind exists (a field kind or a registered rule)."""
    if not isinstance(spec, str) or ":" not in spec:
        raise ForgetSetError(
            f"Malformed forget spec {spec!r}: use KIND:ARGUMENT with KIND one of "
            f"{', '.join(sorted({*FIELD_KINDS, *FORGET_SPECS.names()}))}, e.g. random:0.1 or class:3."
        )
    kind, arg = spec.split(":", 1)
    kinds = sorted({*FIELD_KINDS, *FORGET_SPECS.names()})
    if kind not in kinds:
        hint = closest(kind, kinds)
        raise ForgetSetError(f"Malformed forget spec {spec!r}: Unknown forget-set kind {kind!r}."
                             + (f" Did you mean {hint!r}?" if hint else "")
                             + f" Valid forget-set kinds: {', '.join(kinds)}.")
    if not arg:
        raise ForgetSetError(f"Malformed forget spec {spec!r}: the argument after ':' is empty.")
    return kind, arg


def check_request(request: ForgetRequest | str) -> ForgetRequest:
    """The request, with its rule's kind checked (reading an ids file if it names one)."""
    if isinstance(request, str):
        parse_spec(request)
    request = ForgetRequest.coerce(request)
    if request.spec is not None:
        parse_spec(request.spec)
    return request


def select(train: ArrayDataset, request: ForgetRequest | str, *, seed: int = 0) -> np.ndarray:
    """Row positions of ``train`` that ``request`` names (the union of its selections)."""
    request = check_request(request)
    if not request.selects_rows:
        raise ForgetSetError("A concept-only forget request names no training example of a classifier; "
                             "give ids, subjects, classes or a rule such as random:0.1.")
    parts: list[np.ndarray] = []
    if request.ids:
        parts.append(_ids(request.ids, train))
    if request.subjects:
        parts.append(_subjects(request.subjects, train))
    for label in request.classes:
        parts.append(_class(label, train))
    if request.spec is not None:
        kind, arg = parse_spec(request.spec)
        parts.append(np.asarray(FORGET_SPECS.get(kind)(arg, train, seed), dtype=np.int64))
    return np.unique(np.concatenate(parts).astype(np.int64))


def split_forget(train: ArrayDataset, spec: ForgetRequest | str, *, seed: int = 0) -> ForgetSplit:
    """Select the forget set named by ``spec`` (a request or ``KIND:ARGUMENT``) and return it with the retain set."""
    request = check_request(spec)
    split = make_split(train, select(train, request, seed=seed), spec=request.describe())
    return ForgetSplit(split.spec, split.forget, split.retain, split.forget_index, request)


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
