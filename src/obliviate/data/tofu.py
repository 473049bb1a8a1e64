"""Loader for TOFU (Maini et al. 2024, "TOFU: A Task of Fictitious Unlearning").

The files are JSON lines as in the Hugging Face dataset ``locuslab/TOFU``
(one object per line, ``<split>.json``). They are looked up, in order, in

1. ``data_dir`` and ``data_dir/tofu`` when ``data_dir`` is given (only there);
2. otherwise ``$OBLIVIATE_DATA/tofu`` (when the variable is set), then
   ``../shared/data/tofu`` relative to the working directory and to this
   checkout.

A missing file raises :class:`~obliviate.errors.DatasetNotFoundError` that
lists every place looked.

Subject mapping (checked against the files): ``full.json`` holds 200
authors x 20 QA pairs, author by author, so the row ``i`` of ``full`` is about
author ``i // 20``. ``forgetNN`` is the last NN% of ``full`` and ``retainNN``
the rest, in order; ``retain_perturbed`` is the first 400 rows and
``forgetNN_perturbed`` the same rows as ``forgetNN``. Every row is located in
``full`` by its exact (question, answer) pair (all 4000 pairs are unique; one
question alone is not), falling back to the documented position when a row is
not found (e.g. an edited copy) or ``full.json`` is absent. Each example gets
``id = "tofu/{i:04d}"`` and ``subject = "tofu/author_{i // 20:03d}"``, so the
same QA pair has the same id in every split.

``holdoutNN`` are 20 QA pairs each about authors that are not in ``full``;
``holdout05``/``holdout01`` are the first rows of ``holdout10``. Row ``i``
gets ``id = "tofu/holdout/{i:03d}"`` and
``subject = "tofu/holdout_author_{i // 20:02d}"``.

``real_authors`` and ``world_facts`` (model-utility sets) are one subject
each (``tofu/real_authors``, ``tofu/world_facts``); their four options map to
``perturbed_answer`` (the three wrong ones, in option order), which equals the
``_perturbed`` files. Ids are ``tofu/real_authors/{i:03d}`` etc.
"""

from __future__ import annotations

import functools
import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from obliviate.data.qa import QADataset, QAExample
from obliviate.errors import DataError, DatasetNotFoundError, UnknownNameError
from obliviate.registry import closest

__all__ = [
    "TOFU_SPLITS",
    "N_AUTHORS",
    "QA_PER_AUTHOR",
    "REFUSALS",
    "load_tofu",
    "load_refusals",
    "tofu_search_paths",
    "tofu_subject",
]

logger = logging.getLogger(__name__)

N_AUTHORS = 200
QA_PER_AUTHOR = 20
_N_FULL = N_AUTHORS * QA_PER_AUTHOR


@dataclass(frozen=True)
class _Split:
    kind: Literal["authors", "holdout", "options"]
    start: int = 0  # position of the first row in full.json (kind == "authors")


def _forget_start(percent: int) -> int:
    return _N_FULL - _N_FULL * percent // 100


_SPLITS: dict[str, _Split] = {"full": _Split("authors", 0)}
for _p in (1, 5, 10):
    _SPLITS[f"forget{_p:02d}"] = _Split("authors", _forget_start(_p))
    _SPLITS[f"forget{_p:02d}_perturbed"] = _Split("authors", _forget_start(_p))
    _SPLITS[f"retain{100 - _p}"] = _Split("authors", 0)
    _SPLITS[f"holdout{_p:02d}"] = _Split("holdout")
_SPLITS["retain_perturbed"] = _Split("authors", 0)
for _name in ("real_authors", "world_facts"):
    _SPLITS[_name] = _Split("options")
    _SPLITS[f"{_name}_perturbed"] = _Split("options")

TOFU_SPLITS: tuple[str, ...] = tuple(sorted(_SPLITS))


def tofu_subject(row: int) -> str:
    """Subject id of row ``row`` of ``full.json`` (author ``row // 20``)."""
    if not 0 <= row < _N_FULL:
        raise DataError(f"TOFU row must be in [0, {_N_FULL}); got {row} instead.")
    return f"tofu/author_{row // QA_PER_AUTHOR:03d}"


# ---------------------------------------------------------------- locations


def _repo_shared() -> Path:
    # src/obliviate/data/tofu.py -> checkout root is parents[3]
    return Path(__file__).resolve().parents[3].parent / "shared" / "data" / "tofu"


def tofu_search_paths(data_dir: str | os.PathLike[str] | None = None) -> list[Path]:
    """Folders searched for TOFU files, in order (see the module docstring)."""
    if data_dir is not None:
        root = Path(data_dir).expanduser()
        candidates = [root, root / "tofu"]
    else:
        candidates = []
        env = os.environ.get("OBLIVIATE_DATA")
        if env:
            candidates.append(Path(env).expanduser() / "tofu")
        candidates.append(Path.cwd() / ".." / "shared" / "data" / "tofu")
        candidates.append(_repo_shared())
    unique: list[Path] = []
    seen: set[Path] = set()
    for c in candidates:
        key = c.resolve()
        if key not in seen:
            seen.add(key)
            unique.append(key)
    return unique


def _find(filename: str, data_dir: str | os.PathLike[str] | None, what: str) -> Path:
    places = tofu_search_paths(data_dir)
    for folder in places:
        path = folder / filename
        if path.is_file():
            return path
    hint = (
        "Pass data_dir= pointing at the folder that holds it"
        if data_dir is not None
        else "Pass data_dir=, or set OBLIVIATE_DATA so that $OBLIVIATE_DATA/tofu holds it"
    )
    raise DatasetNotFoundError(
        f"TOFU {what} file {filename!r} was not found. {hint} "
        "(files are JSON lines as in the Hugging Face dataset locuslab/TOFU).",
        searched=[str(p / filename) for p in places],
    )


# ------------------------------------------------------------------ reading


def _read_jsonl(path: Path) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    with path.open(encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as err:
                raise DataError(
                    f"{path}:{lineno} is not valid JSON ({err.msg}). TOFU files must be JSON "
                    "lines; a file holding one JSON array needs converting first."
                ) from None
            if not isinstance(row, dict):
                raise DataError(f"{path}:{lineno} holds a {type(row).__name__}, not an object.")
            rows.append(row)
    return rows


@functools.lru_cache(maxsize=4)
def _full_index(path: str, mtime_ns: int, size: int) -> dict[tuple[str, str], int]:
    # mtime/size are part of the cache key so an edited file is re-read.
    rows = _read_jsonl(Path(path))
    return {(r.get("question"), r.get("answer")): i for i, r in enumerate(rows)}


def _locate_in_full(
    rows: list[dict[str, Any]], split: str, start: int, data_dir: str | os.PathLike[str] | None
) -> list[int]:
    positional = [start + i for i in range(len(rows))]
    if split == "full":
        return positional
    try:
        full = _find("full.json", data_dir, "full")
    except DatasetNotFoundError:
        logger.info("TOFU full.json not found; mapping %s to authors by position", split)
        return positional
    stat = full.stat()
    index = _full_index(str(full), stat.st_mtime_ns, stat.st_size)
    found = [index.get((r["question"], r["answer"])) for r in rows]
    missing = sum(f is None for f in found)
    if missing:
        logger.warning(
            "%d row(s) of TOFU %s are not in full.json; mapped to authors by position", missing, split
        )
    return [pos if f is None else f for f, pos in zip(found, positional)]


def _require(row: dict[str, Any], keys: tuple[str, ...], path: Path, i: int) -> None:
    missing = [k for k in keys if k not in row]
    if missing:
        raise DataError(
            f"{path}: row {i + 1} lacks field(s) {missing}; it has {sorted(row)}. "
            "Is this the right TOFU split?"
        )


def load_tofu(split: str, data_dir: str | os.PathLike[str] | None = None) -> QADataset:
    """Load one TOFU split as a :class:`QADataset` named ``"tofu/<split>"``.

    ``split`` is one of :data:`TOFU_SPLITS` (``forget01/05/10``,
    ``retain90/95/99``, their ``_perturbed`` variants, ``holdout01/05/10``,
    ``real_authors``, ``world_facts`` (+ ``_perturbed``) and ``full``).
    ``_perturbed`` files fill ``paraphrased_question``, ``paraphrased_answer``
    and ``perturbed_answer``; plain files leave them empty.
    """
    if split not in _SPLITS:
        hint = closest(split, list(TOFU_SPLITS))
        raise UnknownNameError(
            f"Unknown TOFU split {split!r}."
            + (f" Did you mean {hint!r}?" if hint else "")
            + f" Valid splits: {', '.join(TOFU_SPLITS)}."
        )
    spec = _SPLITS[split]
    path = _find(f"{split}.json", data_dir, f"split {split!r}")
    rows = _read_jsonl(path)
    for i, row in enumerate(rows):
        _require(row, ("question", "answer"), path, i)
        if spec.kind == "options" and not split.endswith("_perturbed"):
            _require(row, ("option1", "option2", "option3", "option4"), path, i)

    if spec.kind == "authors":
        positions = _locate_in_full(rows, split, spec.start, data_dir)
        bad = [p for p in positions if not 0 <= p < _N_FULL]
        if bad:
            raise DataError(
                f"{path} has {len(rows)} rows, more than fit at its documented place in TOFU "
                f"full ({_N_FULL} rows from {spec.start}); is it a TOFU {split} file?"
            )
        keys = [(f"tofu/{p:04d}", tofu_subject(p)) for p in positions]
    elif spec.kind == "holdout":
        keys = [(f"tofu/holdout/{i:03d}", f"tofu/holdout_author_{i // QA_PER_AUTHOR:02d}")
                for i in range(len(rows))]
    else:
        base = split.removesuffix("_perturbed")
        keys = [(f"tofu/{base}/{i:03d}", f"tofu/{base}") for i in range(len(rows))]

    examples = []
    for row, (ex_id, subject) in zip(rows, keys):
        if "perturbed_answer" in row:
            perturbed = row["perturbed_answer"]
        elif spec.kind == "options":
            options = [row[f"option{k}"] for k in range(1, 5)]
            perturbed = [o for o in options if o != row["answer"]]
        else:
            perturbed = []
        try:
            examples.append(
                QAExample(
                    id=ex_id,
                    subject=subject,
                    question=row["question"],
                    answer=row["answer"],
                    paraphrased_question=row.get("paraphrased_question"),
                    paraphrased_answer=row.get("paraphrased_answer"),
                    perturbed_answer=perturbed,
                )
            )
        except DataError as err:
            raise DataError(f"{path}: {err}") from None
    return QADataset(examples, name=f"tofu/{split}")


# ----------------------------------------------------------------- refusals

# Our own refusal answers (for IdkPO-style "I don't know" targets). TOFU ships
# idontknow.jsonl for the same purpose; load_refusals() prefers it when found.
REFUSALS: tuple[str, ...] = (
    "I don't know.",
    "I have no idea.",
    "I'm not sure about that.",
    "I can't answer that.",
    "I don't have that information.",
    "That is not something I know.",
    "I'm unable to say.",
    "I don't know the answer to that.",
    "Sorry, I can't help with that one.",
    "I have no information about that.",
    "I couldn't tell you.",
    "That's not something I can answer.",
    "I'm afraid I don't know.",
    "I do not have an answer for that.",
    "I can't recall anything about that.",
    "No idea, sorry.",
    "I'm not able to provide that information.",
    "That falls outside what I know.",
    "I don't have any details on that.",
    "I'm not familiar with that.",
    "I cannot say for certain.",
    "Unfortunately, I don't know.",
    "I lack the knowledge to answer that.",
    "I've got nothing on that, I'm afraid.",
    "That's a mystery to me.",
    "I'm not in a position to answer that.",
    "I have no record of that.",
    "I wouldn't know.",
    "I can't give you an answer to that.",
    "Nothing I know covers that question.",
    "I'm drawing a blank on that.",
    "That question is beyond me.",
    "Sorry, that's not something I'm aware of.",
    "I don't have reliable information on that.",
    "I am not aware of the answer.",
    "I can't provide details about that.",
    "I'm uncertain, so I'd rather not guess.",
    "I haven't heard of that.",
    "That is unknown to me.",
    "I don't have an answer to give you.",
)


def load_refusals(
    data_dir: str | os.PathLike[str] | None = None,
    *,
    source: Literal["auto", "file", "builtin"] = "auto",
) -> tuple[str, ...]:
    """Refusal strings for "I don't know" training targets.

    ``source="builtin"`` returns :data:`REFUSALS`; ``"file"`` reads TOFU's
    ``idontknow.jsonl`` (plain text, one string per line) and raises
    :class:`DatasetNotFoundError` if it is absent; ``"auto"`` (default) uses
    the file when found and the built-in list otherwise.
    """
    if source not in ("auto", "file", "builtin"):
        raise UnknownNameError(
            f"Unknown refusal source {source!r}. Valid sources: auto, builtin, file."
        )
    if source == "builtin":
        return REFUSALS
    try:
        path = _find("idontknow.jsonl", data_dir, "refusal list")
    except DatasetNotFoundError:
        if source == "file":
            raise
        return REFUSALS
    lines = [ln.strip() for ln in path.read_text(encoding="utf-8").splitlines()]
    refusals = tuple(ln for ln in lines if ln)
    if not refusals:
        raise DataError(f"{path} holds no refusal strings; expected one per line.")
    return refusals
