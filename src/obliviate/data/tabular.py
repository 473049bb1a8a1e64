"""Bring your own table: CSV, Parquet or NPZ files into a :class:`DataBundle`.

A :class:`TabularConfig` names the file(s) and the schema: the label column,
the feature columns (default: every other column except the id and subject
columns), an optional id column (default: the row number, as a string), an
optional subject column (the person a row belongs to, for ``subjects:ID``
forget sets) and which columns are categorical. Non-numeric columns are
always categorical. Categorical columns are one-hot (default) or ordinal
encoded; numeric columns are standardised with the mean and standard
deviation of the *training split only*, so nothing about the test rows leaks
into the features. The fitted state is a :class:`TabularSchema` (JSON
round-trip with ``save``/``load``) that re-encodes new rows identically.

Labels may be integers (any, e.g. 1..30 or 2e9) or names ("yes"/"no"): the
labels found are mapped to class indices 0..K-1 in sorted order (numeric
order for integers) and their names, as text ("1".."30", "no", "yes"), are the
dataset's ``classes``, which reports and ``class:NAME`` forget specs use. A
label column with a single value is refused: a classifier needs two classes.

Missing values: empty cells and NaN are missing, and so are the markers in
``na_values`` (e.g. Adult's ``?``; compared after stripping spaces). By
default (``missing="error"``) a missing feature is an error naming the column
and rows; ``missing="impute"`` encodes it as the training mean (numeric) or as
no category (one-hot all zeros, ordinal -1). Either way the schema records
how many cells were missing per feature column (``schema.missing``). A column
that is numeric except for a few cells (at most 5% of its filled cells, or one
or two cells up to a fifth) is refused as a probable typo, naming the rows and
values, instead of silently becoming categorical.

Row numbers in messages count data rows from 0 (the header is not a row);
they are also the default ids. NPZ files hold arrays ``x`` (n, d) numeric
features, ``y`` (n,) labels, and optionally ``ids`` (n,) and ``subjects`` (n,);
their feature columns are called ``x0 .. x{d-1}`` and the label, id and
subject columns take the names the config gives (or ``label``, ``id``,
``subject``).
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
from pydantic import Field, field_validator

from obliviate.config import StrictModel
from obliviate.data.dataset import ArrayDataset, DataBundle
from obliviate.errors import ConfigError, DataError, DatasetNotFoundError
from obliviate.registry import closest

if TYPE_CHECKING:
    import pandas as pd

log = logging.getLogger(__name__)

SUFFIXES = {".csv": "csv", ".tsv": "csv", ".txt": "csv", ".parquet": "parquet", ".pq": "parquet", ".npz": "npz"}
ROWS_NOTE = "rows count data rows from 0, header excluded"
MANY_CATEGORIES = 100  # a categorical column with more distinct values is probably an identifier
TYPO_SHARE = 0.05  # a column numeric except for at most this share of its cells has typos, not categories


class TabularConfig(StrictModel):
    """Where a table lives and how to read it. Only ``path`` is required."""

    kind: Literal["tabular"] = "tabular"
    path: str
    test_path: str | None = None          # a second file with the held-out rows
    test_fraction: float = 0.2            # else this seeded, stratified share of ``path``
    label_column: str = "label"
    feature_columns: list[str] | None = None  # None: all columns but label, id and subject
    id_column: str | None = None          # None: the row number
    subject_column: str | None = None
    categorical_columns: list[str] = Field(default_factory=list)  # non-numeric ones are added
    encoding: Literal["onehot", "ordinal"] = "onehot"
    na_values: list[str] = Field(default_factory=list)  # extra missing-value markers, e.g. ["?", "n/a"]
    missing: Literal["error", "impute"] = "error"  # what a missing feature cell does
    seed: int = 0

    @field_validator("feature_columns", "categorical_columns", "na_values", mode="before")
    @classmethod
    def _comma_list(cls, v: Any) -> Any:
        # "a,b" on the command line means ["a", "b"]
        if isinstance(v, str):
            return [c.strip() for c in v.split(",") if c.strip()]
        return v

    @field_validator("test_fraction")
    @classmethod
    def _fraction(cls, v: float) -> float:
        if not 0.0 < v < 1.0:
            raise ValueError("test_fraction must be in (0, 1), e.g. 0.2")
        return v

    def load(self) -> TabularData:
        return load_tabular(self)


# --- reading files -------------------------------------------------------------------

def read_table(path: str | os.PathLike[str], *, config: TabularConfig | None = None) -> pd.DataFrame:
    """Read a CSV, Parquet or NPZ file into a DataFrame; every failure is a typed error naming the file."""
    import pandas as pd

    path = Path(path)
    if not path.exists():
        raise DatasetNotFoundError(f"Data file {path} does not exist.", searched=[str(path.resolve())])
    if path.is_dir():
        raise ConfigError(f"{path} is a folder; tabular data is one CSV, Parquet or NPZ file "
                          "(an image folder is data kind 'images').")
    fmt = SUFFIXES.get(path.suffix.lower())
    if fmt is None:
        raise ConfigError(f"Cannot tell the format of {path}: its name must end in "
                          f"{', '.join(sorted(SUFFIXES))}.")
    strings = {c: str for c in (config.id_column, config.subject_column) if c} if config else {}
    if fmt == "csv":
        sep = "\t" if path.suffix.lower() == ".tsv" else ","
        try:
            # ids and subjects stay text: "007" is not 7
            frame = pd.read_csv(path, sep=sep, dtype=strings or None,
                                na_values=list(config.na_values) if config and config.na_values else None)
        except pd.errors.EmptyDataError:
            raise DataError(f"{path} is empty: a CSV file needs a header line and at least one row.") from None
        except (pd.errors.ParserError, UnicodeDecodeError, ValueError) as exc:
            raise DataError(f"Could not parse CSV file {path}: {str(exc).strip()}. Check the delimiter, quoting and "
                            "that every line has as many fields as the header.") from None
    elif fmt == "parquet":
        try:
            frame = pd.read_parquet(path)
        except Exception as exc:  # pyarrow raises several types; all mean "not a readable parquet file"
            raise DataError(f"{path} is not a readable Parquet file: {exc}.") from None
    else:
        frame = _read_npz(path, config)
    if len(frame) == 0:
        raise DataError(f"{path} has a header but no rows.")
    if config is not None and config.na_values:
        frame = _mark_missing(frame, config.na_values)
    for col in strings:
        if col in frame.columns and not frame[col].isna().any():
            frame[col] = frame[col].astype(str)
    return frame


def _mark_missing(frame: pd.DataFrame, markers: list[str]) -> pd.DataFrame:
    """Cells equal to a marker (spaces stripped) become missing; a text column left all numbers becomes numeric."""
    import pandas as pd

    wanted = {m.strip() for m in markers}
    frame = frame.copy()
    for col in frame.columns:
        series = frame[col]
        if _is_numeric(series):
            continue
        hit = series.notna() & series.astype(str).str.strip().isin(wanted)
        if not hit.any():
            continue
        series = series.mask(hit)
        filled = series.dropna()
        numbers = pd.to_numeric(filled.astype(str).str.strip(), errors="coerce")
        if len(filled) and numbers.notna().all():  # "?" was what kept this column from being numeric
            series = pd.to_numeric(series.astype(str).str.strip().where(series.notna()), errors="coerce")
        frame[col] = series
    return frame


def _read_npz(path: Path, config: TabularConfig | None) -> pd.DataFrame:
    import zipfile

    import pandas as pd

    try:
        with np.load(path, allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in npz.files}
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as exc:
        raise DataError(f"{path} is not a readable NPZ file (np.savez): {exc}. Save arrays x, y "
                        "(and optionally ids, subjects) as numbers or strings, not Python objects.") from None
    missing = [k for k in ("x", "y") if k not in arrays]
    if missing:
        raise DataError(f"{path} lacks the array(s) {', '.join(missing)}; it holds "
                        f"{', '.join(arrays) or 'nothing'}. An NPZ file needs x (n, d) features and y (n,) "
                        "labels, optionally ids (n,) and subjects (n,).")
    x, y = arrays["x"], arrays["y"]
    if x.ndim != 2 or not np.issubdtype(x.dtype, np.number):
        raise DataError(f"{path}: x must be a numeric array of shape (n, d); got {x.dtype} {x.shape}. "
                        "Flatten each example to one row (images: use data kind 'images').")
    n = len(x)
    problems = [f"{k} has shape {arrays[k].shape}, expected ({n},)"
                for k in ("y", "ids", "subjects") if k in arrays and arrays[k].shape != (n,)]
    if problems:
        raise DataError(f"{path}: array lengths disagree with x ({n} rows): {'; '.join(problems)}.")
    if np.iscomplexobj(x):
        raise DataError(f"{path}: x is complex ({x.dtype}); features must be real numbers. Store the real and "
                        "imaginary parts as separate columns.")
    text = {}
    for k in ("y", "ids", "subjects"):
        if k in arrays and arrays[k].dtype.kind == "S":  # bytes: decode, so b"a" is the label "a", not "b'a'"
            try:
                text[k] = np.char.decode(arrays[k], "utf-8")
            except UnicodeDecodeError:
                raise DataError(f"{path}: {k} holds bytes that are not UTF-8 text; save it as text "
                                f"(np.array(..., dtype=str)) or as numbers.") from None
    arrays = {**arrays, **text}
    cfg = config or TabularConfig(path=str(path))
    frame = pd.DataFrame(x, columns=[f"x{j}" for j in range(x.shape[1])])
    frame[cfg.label_column] = arrays["y"]
    if "ids" in arrays:
        frame[cfg.id_column or "id"] = arrays["ids"].astype(str)
    if "subjects" in arrays:
        frame[cfg.subject_column or "subject"] = arrays["subjects"].astype(str)
    return frame


# --- the fitted schema -----------------------------------------------------------------

@dataclass
class TabularEncoder:
    """Encodes feature columns into a float matrix: scaled numbers, one-hot or ordinal categories.

    ``fit`` learns means, standard deviations and category lists from the rows
    it is given (the training split) and returns ``self``; ``transform``
    applies them to any rows. A category ``fit`` never saw encodes as all
    zeros (one-hot) or -1 (ordinal). A missing cell is an error with
    ``missing="error"``; with ``missing="impute"`` it encodes as the training
    mean (numeric) or like an unseen category. ``transform`` never returns
    NaN or infinity: it raises a DataError naming the columns instead.
    """

    numeric: list[str]
    categorical: list[str]
    encoding: Literal["onehot", "ordinal"] = "onehot"
    means_: dict[str, float] = field(default_factory=dict)
    stds_: dict[str, float] = field(default_factory=dict)
    categories_: dict[str, list[str]] = field(default_factory=dict)
    missing: Literal["error", "impute"] = "error"

    def fit(self, frame: pd.DataFrame, *, source: str = "data") -> TabularEncoder:
        if self.missing == "error":
            _check_features(frame, self.numeric + self.categorical, source)
        problems = []
        for col in self.numeric:
            v = frame[col].to_numpy(dtype=np.float64, na_value=np.nan)
            v = v[np.isfinite(v)]
            with np.errstate(over="ignore", invalid="ignore"):
                mean = float(v.mean()) if len(v) else 0.0
                std = float(v.std()) if len(v) else 0.0
            if not (np.isfinite(mean) and np.isfinite(std)):
                problems.append(f"column {col!r}: its values (up to {np.abs(v).max():.3g}) are too large to "
                                "standardise in float64; rescale the column (e.g. to thousands)")
            self.means_[col] = mean
            self.stds_[col] = std if std > 0 else 1.0  # a constant column stays constant (0)
        for col in self.categorical:
            cats = sorted(set(frame[col].dropna().astype(str)))
            if len(cats) > MANY_CATEGORIES:
                log.warning("categorical column %r has %d distinct values; if it identifies rows "
                            "(a name, an email) leave it out of feature_columns", col, len(cats))
            self.categories_[col] = cats
        if problems:
            raise DataError(f"{source}: cannot standardise the features:\n" + "\n".join(f"  - {p}" for p in problems))
        return self

    @property
    def feature_names_(self) -> list[str]:
        names = list(self.numeric)
        for col in self.categorical:
            if self.encoding == "onehot":
                names += [f"{col}={c}" for c in self.categories_[col]]
            else:
                names.append(col)
        return names

    def transform(self, frame: pd.DataFrame, *, source: str = "data") -> np.ndarray:
        if (self.numeric and not self.means_) or (self.categorical and not self.categories_):
            from obliviate.errors import NotFittedError

            raise NotFittedError("TabularEncoder.transform called before fit.")
        if self.missing == "error":
            _check_features(frame, self.numeric + self.categorical, source)
        blocks, names = [], []
        for c in self.numeric:
            v = frame[c].to_numpy(dtype=np.float64, na_value=np.nan)
            with np.errstate(over="ignore", invalid="ignore"):
                z = (v - self.means_[c]) / self.stds_[c]
            blocks.append(np.where(np.isnan(v), 0.0, z)[:, None])  # NaN only when imputing: the mean
            names.append([c])
        for col in self.categorical:
            index = {c: i for i, c in enumerate(self.categories_[col])}
            values = frame[col]
            codes = np.array([-1 if m else index.get(v, -1)
                              for v, m in zip(values.astype(str), values.isna(), strict=True)], dtype=np.int64)
            if self.encoding == "onehot":
                block = np.zeros((len(frame), len(index)))
                known = codes >= 0
                block[np.flatnonzero(known), codes[known]] = 1.0
                names.append([col] * len(index))
            else:
                block = codes[:, None].astype(np.float64)
                names.append([col])
            blocks.append(block)
        if not blocks:
            return np.zeros((len(frame), 0), dtype=np.float32)
        with np.errstate(over="ignore"):
            out = np.concatenate(blocks, axis=1).astype(np.float32)
        bad = ~np.isfinite(out)
        if bad.any():
            flat = [n for group in names for n in group]
            cols = sorted({flat[j] for j in np.flatnonzero(bad.any(axis=0))})
            rows = np.flatnonzero(bad.any(axis=1))
            raise DataError(f"{source}: encoding column(s) {', '.join(map(repr, cols))} gives non-finite values "
                            f"in rows {_rows(rows)} ({ROWS_NOTE}): the values are missing, infinite, or too far "
                            "from the training mean for float32. Fix or drop those rows, or rescale the column.")
        return out

    def to_dict(self) -> dict[str, Any]:
        return {"numeric": self.numeric, "categorical": self.categorical, "encoding": self.encoding,
                "means": self.means_, "stds": self.stds_, "categories": self.categories_,
                "feature_names": self.feature_names_, "missing": self.missing}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TabularEncoder:
        return cls(list(d["numeric"]), list(d["categorical"]), d["encoding"], dict(d["means"]),
                   dict(d["stds"]), {k: list(v) for k, v in d["categories"].items()}, d.get("missing", "error"))


@dataclass
class TabularSchema:
    """The resolved columns, the label classes and the fitted :class:`TabularEncoder`.

    ``classes`` are the label names found, as text, in class-index order;
    ``labels_are_integers`` says they were integers (so ``2`` and ``2.0`` in
    another file name the same class). ``missing`` counts the missing cells
    per feature column in the rows loaded (training file and test file).
    """

    label_column: str
    classes: list[str]
    labels_are_integers: bool
    encoder: TabularEncoder
    id_column: str | None = None
    subject_column: str | None = None
    missing: dict[str, int] = field(default_factory=dict)

    def labels(self, frame: pd.DataFrame, *, source: str = "data") -> np.ndarray:
        """Class indices of ``frame``'s labels; unknown or missing labels raise DataError naming rows."""
        col = frame[self.label_column]
        bad = _missing_rows(col)
        if len(bad):
            raise DataError(f"{source}: the label column {self.label_column!r} is empty in {len(bad)} "
                            f"row(s): {_rows(bad)} ({ROWS_NOTE}). Drop those rows or fill in their labels.")
        if self.labels_are_integers:
            _, integers = _label_kind(col, source, self.label_column)
            if not integers:
                raise DataError(f"{source}: labels in {self.label_column!r} must be integers like the "
                                f"training file's; got text such as {str(col.iloc[0])!r}.")
            values = _integer_names(col)
        else:
            values = col.astype(str).to_numpy()
        index = {c: i for i, c in enumerate(self.classes)}
        unknown = np.flatnonzero([v not in index for v in values])
        if len(unknown):
            more = len(self.classes) - 20
            shown = ", ".join(self.classes[:20]) + (f" (+{more} more)" if more > 0 else "")
            raise DataError(f"{source}: label {values[unknown[0]]!r} in row {unknown[0]} (and "
                            f"{len(unknown) - 1} more) is not one of the training classes {shown}.")
        return np.array([index[v] for v in values], dtype=np.int64)

    def dataset(self, frame: pd.DataFrame, *, name: str, source: str | None = None,
                default_ids: np.ndarray | None = None) -> ArrayDataset:
        """Encode ``frame`` (same columns as the training file) into an :class:`ArrayDataset`."""
        source = source or name
        if self.encoder.missing == "error":
            _check_features(frame, self.encoder.numeric + self.encoder.categorical, source)
        problems = []
        for c in self.encoder.numeric:
            if not _is_numeric(frame[c]):
                rows, values = _text_cells(frame[c])
                problems.append(f"column {c!r} is numeric in the training data but holds text here: "
                                + _cells(rows, values))
        if problems:
            raise DataError(f"{source}: numeric feature column(s) hold text ({ROWS_NOTE}):\n"
                            + "\n".join(f"  - {p}" for p in problems)
                            + "\nFix the values, mark them as missing (na_values) or list the column(s) in "
                            "categorical_columns.")
        ids = (frame[self.id_column].astype(str).to_numpy() if self.id_column
               else default_ids if default_ids is not None else np.arange(len(frame)).astype(str))
        subjects = frame[self.subject_column].astype(str).to_numpy() if self.subject_column else None
        n_classes = len(self.classes)
        return ArrayDataset(self.encoder.transform(frame, source=source), self.labels(frame, source=source), ids,
                            subjects=subjects, name=name, classes=tuple(self.classes), n_classes_=n_classes)

    def to_dict(self) -> dict[str, Any]:
        return {"label_column": self.label_column, "classes": self.classes,
                "labels_are_integers": self.labels_are_integers, "id_column": self.id_column,
                "subject_column": self.subject_column, "missing": self.missing, "encoder": self.encoder.to_dict()}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TabularSchema:
        return cls(d["label_column"], list(d["classes"]), bool(d["labels_are_integers"]),
                   TabularEncoder.from_dict(d["encoder"]), d.get("id_column"), d.get("subject_column"),
                   {str(k): int(v) for k, v in d.get("missing", {}).items()})

    def save(self, path: str | os.PathLike[str]) -> Path:
        from obliviate.fileio import atomic_write_json

        atomic_write_json(path, self.to_dict())
        return Path(path)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> TabularSchema:
        try:
            return cls.from_dict(json.loads(Path(path).read_text()))
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise DataError(f"{path} is not a saved tabular schema: {exc}.") from None


@dataclass(frozen=True)
class TabularData:
    """What :func:`load_tabular` returns: the bundle and the schema that produced it."""

    bundle: DataBundle
    schema: TabularSchema
    config: TabularConfig

    def to_dict(self) -> dict[str, Any]:
        return {"kind": "tabular", "config": self.config.model_dump(), "schema": self.schema.to_dict(),
                "missing": dict(self.schema.missing)}


# --- validation helpers -------------------------------------------------------------------

def _rows(positions: np.ndarray, limit: int = 5) -> str:
    shown = ", ".join(str(int(p)) for p in positions[:limit])
    return shown + (f" (+{len(positions) - limit} more)" if len(positions) > limit else "")


def _missing_rows(col: pd.Series) -> np.ndarray:
    import pandas as pd

    missing = col.isna().to_numpy().copy()
    if pd.api.types.is_numeric_dtype(col):
        missing |= ~np.isfinite(col.to_numpy(dtype=np.float64, na_value=np.nan))
    return np.flatnonzero(missing)


def _check_features(frame: pd.DataFrame, columns: list[str], source: str) -> None:
    problems = []
    for col in columns:
        bad = _missing_rows(frame[col])
        if len(bad):
            problems.append(f"column {col!r}: {len(bad)} missing or infinite value(s), first in rows {_rows(bad)}")
    if problems:
        raise DataError(f"{source}: features have missing values ({ROWS_NOTE}):\n"
                        + "\n".join(f"  - {p}" for p in problems)
                        + "\nImpute them (e.g. with the training median or a 'missing' category) or drop "
                        "those rows before loading, or load with missing='impute' (the training mean for "
                        "numbers, no category for categories).")


def _text_cells(col: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """Positions and values of the filled cells of ``col`` that do not parse as numbers."""
    import pandas as pd

    filled = col.notna().to_numpy()
    text = col.astype(str).str.strip()
    bad = filled & pd.to_numeric(text, errors="coerce").isna().to_numpy()
    rows = np.flatnonzero(bad)
    return rows, text.to_numpy()[rows]


def _cells(rows: np.ndarray, values: np.ndarray, limit: int = 5) -> str:
    shown = ", ".join(f"row {int(r)} {str(v)[:40]!r}" for r, v in zip(rows[:limit], values[:limit], strict=True))
    return shown + (f" (+{len(rows) - limit} more)" if len(rows) > limit else "")


def _check_numeric_typos(frame: pd.DataFrame, columns: list[str], declared: list[str], source: str) -> None:
    """Refuse text columns that are numbers except for a few cells: typos, not categories."""
    problems = []
    for col in columns:
        if col in declared or _is_numeric(frame[col]):
            continue
        n = int(frame[col].notna().sum())
        rows, values = _text_cells(frame[col])
        n_bad = len(rows)
        if n == 0 or n_bad == 0 or n_bad == n:
            continue
        if n_bad <= TYPO_SHARE * n or (n_bad <= 2 and n_bad <= 0.2 * n):
            markers = sorted({str(v) for v in values})[:3]
            problems.append(f"column {col!r} holds numbers except in {n_bad} of {n} cells: {_cells(rows, values)}. "
                            f"Fix those cells, mark them as missing (na_values={markers!r}), or declare the "
                            f"column categorical (categorical_columns=[{col!r}]).")
    if problems:
        raise DataError(f"{source}: numeric column(s) with text cells, probably typos ({ROWS_NOTE}):\n"
                        + "\n".join(f"  - {p}" for p in problems))


def _integer_names(col: pd.Series) -> np.ndarray:
    """Integer labels as exact text ("7", not "7.0"); the column's values are integral numbers."""
    import pandas as pd

    if pd.api.types.is_integer_dtype(col):
        return col.to_numpy().astype(str)
    values = col.to_numpy(dtype=np.float64)
    names = {v: str(int(v)) for v in np.unique(values)}
    return np.array([names[v] for v in values], dtype=str)


def _check_columns(frame: pd.DataFrame, wanted: dict[str, list[str]], source: str) -> None:
    available = [str(c) for c in frame.columns]
    problems = []
    for role, cols in wanted.items():
        for col in cols:
            if col not in frame.columns:
                hint = closest(col, available)
                problems.append(f"{role} {col!r} is not a column" + (f"; did you mean {hint!r}?" if hint else ""))
    if problems:
        raise ConfigError(f"{source}: columns not found (available: {', '.join(available)}):", problems)


def _check_unique_ids(ids: np.ndarray, source: str) -> None:
    uniq, inverse, counts = np.unique(ids, return_inverse=True, return_counts=True)
    if len(uniq) == len(ids):
        return
    dup = int(np.flatnonzero(counts > 1)[0])
    rows = np.flatnonzero(inverse == dup)
    n_dup = int((counts > 1).sum())
    raise DataError(f"{source}: id {uniq[dup]!r} occurs in rows {_rows(rows)} ({ROWS_NOTE}); "
                    f"{n_dup} id(s) are duplicated. Ids must be unique: fix the id column or leave "
                    "id_column unset to use row numbers.")


def _label_kind(col: pd.Series, source: str, label_column: str) -> tuple[list[str], bool]:
    """The training file's classes, and whether its labels are integers kept as they are."""
    import pandas as pd

    if pd.api.types.is_complex_dtype(col):
        raise DataError(f"{source}: the label column {label_column!r} holds complex numbers ({col.dtype}); "
                        "labels must be integers or names.")
    bad = _missing_rows(col)
    if len(bad):
        raise DataError(f"{source}: the label column {label_column!r} is empty or NaN in {len(bad)} "
                        f"row(s): {_rows(bad)} ({ROWS_NOTE}). Drop those rows or fill in their labels.")
    if pd.api.types.is_numeric_dtype(col) and not pd.api.types.is_bool_dtype(col):
        if not pd.api.types.is_integer_dtype(col):
            y = col.to_numpy(dtype=np.float64)
            frac = np.flatnonzero(y != np.round(y))
            if len(frac):
                raise DataError(f"{source}: label {y[frac[0]]} in row {frac[0]} of {label_column!r} is not a "
                                "class: labels must be integers or names, not continuous values.")
        # the labels found, in numeric order, become classes 0..K-1: labels 1..30 make 30 classes, not 31
        names = _integer_names(col)
        return [str(v) for v in sorted({int(n) for n in set(names)})], True
    return sorted(set(col.astype(str))), False


def stratified_split(labels: np.ndarray, test_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Seeded (train, test) positions keeping each class's share; a class of one stays in train.

    When no class has two examples, nothing can be held out without taking a
    class away from training: that is a DataError.
    """
    if not 0.0 < test_fraction < 1.0:
        raise DataError(f"test_fraction must be in (0, 1); got {test_fraction}.")
    rng = np.random.default_rng([seed, 0x5717])
    test: list[np.ndarray] = []
    for c in np.unique(labels):
        pos = np.flatnonzero(labels == c)
        if len(pos) < 2:
            continue
        k = min(len(pos) - 1, max(1, int(round(len(pos) * test_fraction))))
        test.append(rng.permutation(pos)[:k])
    if not test:
        raise DataError(f"Cannot hold out test rows: each of the {len(np.unique(labels))} classes has a single "
                        "example, and holding one out would remove its class from training. Add rows, or give a "
                        "separate test file (test_path).")
    te = np.sort(np.concatenate(test))
    return np.setdiff1d(np.arange(len(labels)), te), te


# --- the loader ---------------------------------------------------------------------------

def load_tabular(config: TabularConfig | str | os.PathLike[str], **options: Any) -> TabularData:
    """Load a table into a :class:`TabularData` (``.bundle``, ``.schema``).

    ``config`` is a :class:`TabularConfig` or a path; keyword options fill or
    override config fields, e.g. ``load_tabular("people.csv", label_column="churn",
    subject_column="customer_id")``.
    """
    from obliviate.config import validate

    base = config.model_dump() if isinstance(config, TabularConfig) else {"path": str(config)}
    cfg = config if isinstance(config, TabularConfig) and not options else \
        validate(TabularConfig, {**base, **options}, source="tabular data options")
    path = Path(cfg.path)
    frame = read_table(path, config=cfg)
    if SUFFIXES.get(path.suffix.lower()) == "npz":  # the optional arrays name their own roles
        cfg = cfg.model_copy(update={k: v for k, v in (("id_column", "id"), ("subject_column", "subject"))
                                     if getattr(cfg, k) is None and v in frame.columns})
    role_columns = [c for c in (cfg.label_column, cfg.id_column, cfg.subject_column) if c]
    features = list(cfg.feature_columns) if cfg.feature_columns is not None else \
        [str(c) for c in frame.columns if c not in role_columns]
    wanted = {"label_column": [cfg.label_column], "id_column": [cfg.id_column] if cfg.id_column else [],
              "subject_column": [cfg.subject_column] if cfg.subject_column else [],
              "feature column": features, "categorical column": list(cfg.categorical_columns)}
    _check_columns(frame, wanted, str(path))
    not_features = [c for c in cfg.categorical_columns if c not in features]
    overlap = [c for c in features if c in role_columns]
    if not features or not_features or overlap:
        problems = (["no feature columns are left"] if not features else []) + \
            [f"categorical column {c!r} is not a feature column" for c in not_features] + \
            [f"{c!r} is both a feature and the label/id/subject column" for c in overlap]
        raise ConfigError(f"{path}: inconsistent column roles:", problems)
    if cfg.missing == "error":
        _check_features(frame, features, str(path))
    _check_numeric_typos(frame, features, list(cfg.categorical_columns), str(path))
    classes, labels_are_integers = _label_kind(frame[cfg.label_column], str(path), cfg.label_column)
    if len(classes) < 2:
        raise DataError(f"{path}: every row has the label {classes[0]!r} in {cfg.label_column!r}. A classifier "
                        "needs at least two classes (with one, any model scores accuracy 1.0 and there is "
                        "nothing to learn or unlearn). Check that label_column names the target, or add rows "
                        "of the other classes.")
    ids = frame[cfg.id_column].astype(str).to_numpy() if cfg.id_column else np.arange(len(frame)).astype(str)
    if cfg.id_column:
        bad = _missing_rows(frame[cfg.id_column])
        if len(bad):
            raise DataError(f"{path}: the id column {cfg.id_column!r} is empty in rows {_rows(bad)} "
                            f"({ROWS_NOTE}). Every row needs an id.")
    _check_unique_ids(ids, str(path))
    if cfg.subject_column:
        bad = _missing_rows(frame[cfg.subject_column])
        if len(bad):
            raise DataError(f"{path}: the subject column {cfg.subject_column!r} is empty in rows "
                            f"{_rows(bad)} ({ROWS_NOTE}). Give every row a subject (e.g. 'unknown').")

    categorical = [c for c in features if c in cfg.categorical_columns
                   or not _is_numeric(frame[c])]
    numeric = [c for c in features if c not in categorical]
    schema = TabularSchema(cfg.label_column, classes, labels_are_integers,
                           TabularEncoder(numeric, categorical, cfg.encoding, missing=cfg.missing),
                           cfg.id_column, cfg.subject_column)
    stem = path.stem
    if cfg.test_path:
        test_path = Path(cfg.test_path)
        test_frame = read_table(test_path, config=cfg)
        _check_columns(test_frame, {"column of the training file": [cfg.label_column, *features]
                                    + [c for c in (cfg.id_column, cfg.subject_column) if c]}, str(test_path))
        if labels_are_integers:
            # integer labels are a fixed code, so the test file may name a class the training file lacks
            test_classes, test_integers = _label_kind(test_frame[cfg.label_column], str(test_path), cfg.label_column)
            extra = sorted({int(c) for c in test_classes} - {int(c) for c in classes}) if test_integers else []
            if extra:
                log.warning("%s: label(s) %s occur only in the test file; they are classes without "
                            "training examples", test_path, ", ".join(map(str, extra[:10])))
                classes = [str(c) for c in sorted({int(c) for c in classes} | set(extra))]
                schema.classes = classes
        train_frame = frame
        test_ids = None if cfg.id_column else np.array([f"test-{i}" for i in range(len(test_frame))])
        if cfg.id_column:
            _check_unique_ids(test_frame[cfg.id_column].astype(str).to_numpy(), str(test_path))
        test_source = str(test_path)
        train_ids = ids
    else:
        tr, te = stratified_split(schema.labels(frame, source=str(path)), cfg.test_fraction, cfg.seed)
        train_frame, test_frame = frame.iloc[tr].reset_index(drop=True), frame.iloc[te].reset_index(drop=True)
        train_ids, test_ids, test_source = ids[tr], ids[te], f"{path} (test split)"
    schema.encoder.fit(train_frame, source=str(path))  # training rows only
    schema.missing = {c: int(frame[c].isna().sum() + (test_frame[c].isna().sum() if cfg.test_path else 0))
                      for c in features}
    if any(schema.missing.values()):
        log.info("%s: missing cells per column: %s", path, {c: n for c, n in schema.missing.items() if n})
    train = schema.dataset(train_frame, name=f"{stem}-train", source=str(path), default_ids=train_ids)
    test = schema.dataset(test_frame, name=f"{stem}-test", source=test_source, default_ids=test_ids)
    overlap_ids = sorted(set(train.ids) & set(test.ids))
    if overlap_ids:
        raise DataError(f"ids {', '.join(overlap_ids[:5])} occur in both {path} and {cfg.test_path}; "
                        "an id must name one example across both files.")
    log.info("loaded %s: %d train, %d test rows, %d features, %d classes", path, len(train), len(test),
             train.x.shape[1], len(schema.classes))
    return TabularData(DataBundle(train=train, test=test, name=stem), schema, cfg)


def _is_numeric(col: pd.Series) -> bool:
    import pandas as pd

    return bool(pd.api.types.is_numeric_dtype(col))


__all__ = ["TabularConfig", "TabularData", "TabularEncoder", "TabularSchema", "load_tabular", "read_table",
           "stratified_split"]
