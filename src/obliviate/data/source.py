"""Where training data comes from, as one serialisable value.

A :class:`DataSource` is either a built-in dataset (``dataset`` + ``data_dir``) or the
user's own files (``data``: a :class:`TabularConfig` table or an :class:`ImageFolderConfig`
folder, as in a bench config's ``data`` section), optionally cut to a class-stratified
``train_subset`` drawn with ``subset_seed``. ``load()`` gives the :class:`DataBundle`;
``to_dict``/``from_dict`` round-trip it through JSON (a store records it, so ``sisa
forget`` can load the data again); ``fingerprint()`` hashes the description and the
bytes of the files it names, so a changed file is noticed before it is trusted.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from obliviate.data.dataset import DataBundle
from obliviate.data.images import ImageFolderConfig
from obliviate.data.tabular import TabularConfig
from obliviate.errors import ConfigError, DataError

_KINDS: dict[str, type[TabularConfig] | type[ImageFolderConfig]] = {"tabular": TabularConfig,
                                                                     "images": ImageFolderConfig}


@dataclass(frozen=True)
class LoadedSource:
    """What :meth:`DataSource.open` returns: the bundle, and for a table its fitted schema."""

    bundle: DataBundle
    schema: dict[str, Any] | None = None  # TabularSchema.to_dict() (encodes new rows), else None
    classes: list[str] | None = None


@dataclass(frozen=True)
class DataSource:
    """A built-in dataset or the user's own table / image folder.

    Attributes:
        dataset: a built-in dataset name (``digits``, ``mnist1d``, ``mnist``, ``fashion-mnist``).
        data_dir: where the built-in's files are (None: the default places).
        data: the user's own data instead of ``dataset``.
        train_subset: train on a class-stratified random subset of this many examples.
        subset_seed: the seed of that subset.
    """

    dataset: str | None = None
    data_dir: str | None = None
    data: TabularConfig | ImageFolderConfig | None = None
    train_subset: int | None = None
    subset_seed: int = 0

    def __post_init__(self) -> None:
        p = []
        if (self.dataset is None) == (self.data is None):
            p.append("give exactly one of 'dataset' (a built-in name) or 'data' (your own table or image folder); "
                     f"got dataset={self.dataset!r} and data={'given' if self.data is not None else None}")
        if self.data is not None and not isinstance(self.data, (TabularConfig, ImageFolderConfig)):
            p.append(f"'data' must be a TabularConfig or an ImageFolderConfig; got {type(self.data).__name__}")
        if self.train_subset is not None and (isinstance(self.train_subset, bool) or not isinstance(
                self.train_subset, int) or self.train_subset < 2):
            p.append(f"'train_subset' must be an int >= 2; got {self.train_subset!r}")
        if isinstance(self.subset_seed, bool) or not isinstance(self.subset_seed, int) or self.subset_seed < 0:
            p.append(f"'subset_seed' must be an int >= 0; got {self.subset_seed!r}")
        if p:
            raise ConfigError("Invalid DataSource:", p)

    # -- loading ----------------------------------------------------------
    def open(self) -> LoadedSource:
        """Load the data; for a table also return the fitted schema that encodes new rows."""
        schema: dict[str, Any] | None = None
        classes: list[str] | None = None
        if self.data is not None:
            loaded = self.data.load()
            bundle = loaded.bundle
            if isinstance(self.data, TabularConfig):
                schema = loaded.schema.to_dict()  # type: ignore[union-attr]
            else:
                classes = list(loaded.classes)  # type: ignore[union-attr]
        else:
            from obliviate.data.builtin import load_dataset

            bundle = load_dataset(str(self.dataset), data_dir=self.data_dir)
        if self.train_subset is not None:
            bundle = DataBundle(train=bundle.train.stratified_sample(self.train_subset, seed=self.subset_seed),
                                test=bundle.test, name=bundle.name)
        return LoadedSource(bundle, schema, classes)

    def load(self) -> DataBundle:
        return self.open().bundle

    @property
    def name(self) -> str:
        return str(self.dataset) if self.data is None else Path(self.data.path).stem

    # -- identity ---------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return {"dataset": self.dataset, "data_dir": self.data_dir,
                "data": None if self.data is None else self.data.model_dump(mode="json"),
                "train_subset": self.train_subset, "subset_seed": self.subset_seed}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> DataSource:
        """Inverse of :meth:`to_dict`; also reads the older ``{"dataset", "data_dir"}`` records."""
        if not isinstance(d, dict):
            raise ConfigError(f"A data source must be a JSON object; got {type(d).__name__}.")
        from obliviate.config import validate

        valid = {"dataset", "data_dir", "data", "train_subset", "subset_seed"}
        unknown = sorted(set(d) - valid)
        if unknown:
            raise ConfigError(f"Unknown data source key(s) {unknown}; valid keys: {sorted(valid)}.")
        data = d.get("data")
        if isinstance(data, dict):
            kind = data.get("kind", "tabular")
            if kind not in _KINDS:
                raise ConfigError(f"Unknown data kind {kind!r}; valid kinds: {', '.join(_KINDS)}.")
            data = validate(_KINDS[kind], data, source=f"{kind} data source")
        return cls(dataset=d.get("dataset"), data_dir=d.get("data_dir"), data=data,
                   train_subset=d.get("train_subset"), subset_seed=int(d.get("subset_seed", 0)))

    def files(self) -> list[Path]:
        """The files this source reads (for a folder: every file under it), sorted."""
        if self.data is None:
            return []
        out: list[Path] = []
        for p in (self.data.path, self.data.test_path):
            if p is None:
                continue
            path = Path(p)
            out += sorted(q for q in path.rglob("*") if q.is_file()) if path.is_dir() else [path]
        return out

    def fingerprint(self) -> str:
        """sha256 of the description and of the bytes of every file it reads.

        Built-in datasets are identified by name (their loaders check their own files).
        """
        h = hashlib.sha256(json.dumps(self.to_dict(), sort_keys=True).encode())
        for path in self.files():
            h.update(f"\n{os.fspath(path)}\n".encode())
            try:
                with open(path, "rb") as fh:
                    for block in iter(lambda: fh.read(1 << 20), b""):
                        h.update(block)
            except OSError:
                h.update(b"<missing>")
        return h.hexdigest()


@dataclass(frozen=True)
class EncodedRows:
    """Raw rows encoded with a stored schema: features, labels (None without a label column), ids."""

    x: np.ndarray
    y: np.ndarray | None
    ids: np.ndarray
    classes: list[str]


def encode_rows(path: str | os.PathLike[str], schema: dict[str, Any], *,
                config: TabularConfig | None = None) -> EncodedRows:
    """Read a file in the training file's format and encode it exactly as the training rows were.

    Rows with a missing or non-finite feature are refused (DataError naming their row
    numbers, counted from 0 without the header); labels are read when the label column is
    present, so the caller can report accuracy.
    """
    import pandas as pd

    from obliviate.data.tabular import TabularSchema, read_table

    fitted = TabularSchema.from_dict(schema)
    frame = read_table(path, config=config)
    features = fitted.encoder.numeric + fitted.encoder.categorical
    absent = [c for c in features if c not in frame.columns]
    if absent:
        raise DataError(f"{path} lacks the feature column(s) {', '.join(map(repr, absent))} that the model was "
                        f"trained on; its columns are {', '.join(map(str, frame.columns))}.")
    bad_rows: set[int] = set()
    for col in features:
        values = frame[col]
        missing = values.isna().to_numpy().copy()
        if col in fitted.encoder.numeric:
            numbers = pd.to_numeric(values, errors="coerce").to_numpy(dtype=np.float64)
            missing |= ~np.isfinite(numbers)
        bad_rows.update(int(i) for i in np.flatnonzero(missing))
    if bad_rows:
        rows = sorted(bad_rows)
        shown = ", ".join(map(str, rows[:20])) + (f" (+{len(rows) - 20} more)" if len(rows) > 20 else "")
        raise DataError(f"{path}: {len(rows)} row(s) have missing, NaN or infinite feature values: rows {shown} "
                        "(rows count data rows from 0, header excluded). Fill them in or drop them; nothing "
                        "was predicted.")
    x = fitted.encoder.transform(frame)
    y = fitted.labels(frame, source=str(path)) if fitted.label_column in frame.columns else None
    ids = (frame[fitted.id_column].astype(str).to_numpy() if fitted.id_column and fitted.id_column in frame.columns
           else np.arange(len(frame)).astype(str))
    return EncodedRows(x, y, ids, list(fitted.classes))


def encode_images(path: str | os.PathLike[str], config: ImageFolderConfig, classes: list[str]) -> EncodedRows:
    """Images read and resized exactly as the training folder's were.

    ``path`` is one image, a folder of images (unlabelled), or a folder with one subfolder
    per training class (labelled, so the caller can report accuracy).
    """
    from obliviate.data.images import IMAGE_EXTENSIONS, list_image_folder, read_image

    root = Path(path)
    exts = {e.lower() if e.startswith(".") else f".{e.lower()}" for e in (config.extensions or IMAGE_EXTENSIONS)}
    labelled = root.is_dir() and any(p.is_dir() and not p.name.startswith(".") for p in root.iterdir())
    if labelled:
        files = list_image_folder(root, extensions=config.extensions)
        unknown = [c for c in files if c not in classes]
        if unknown:
            raise DataError(f"{root} has class folder(s) {', '.join(unknown)} that the training folder lacks "
                            f"(training classes: {', '.join(classes)}).")
        pairs = [(p, classes.index(c)) for c, paths in files.items() for p in paths]
    elif root.is_dir():
        pairs = [(p, -1) for p in sorted(root.iterdir()) if p.is_file() and p.suffix.lower() in exts]
    elif root.is_file():
        pairs = [(root, -1)]
    else:
        raise DataError(f"{root} does not exist; give an image, a folder of images, or a folder with one "
                        "subfolder per class.")
    if not pairs:
        raise DataError(f"{root} holds no images ({', '.join(sorted(exts))}).")
    x = np.stack([read_image(p, hw=config.hw, mode=config.mode) for p, _ in pairs])
    ids = np.array([p.relative_to(root).as_posix() if root.is_dir() else p.name for p, _ in pairs])
    y = np.array([c for _, c in pairs], dtype=np.int64) if labelled else None
    return EncodedRows(x, y, ids, list(classes))


__all__ = ["DataSource", "EncodedRows", "LoadedSource", "encode_images", "encode_rows"]
