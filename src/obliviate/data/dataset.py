"""The in-memory dataset type every classifier path uses.

An :class:`ArrayDataset` holds features, integer labels, a stable id per
example and, optionally, a subject id (the person an example belongs to).
Ids are strings so that built-in row numbers, database keys and UUIDs are all
treated alike; they must be unique. Validation happens once, here.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
import torch

from obliviate.errors import DataError, ForgetSetError, ShapeError

SPARSE_LABELS = 100_000  # a label at least this large, and 10x the rows, is an identifier, not a class index


@dataclass(frozen=True, eq=False)
class ArrayDataset:
    """Features ``x`` (n, *input_shape), labels ``y`` (n,), ids (n,), optional subjects (n,)."""

    x: np.ndarray
    y: np.ndarray
    ids: np.ndarray
    subjects: np.ndarray | None = None
    name: str = "dataset"
    classes: tuple[str, ...] | None = None
    n_classes_: int | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        x = np.asarray(self.x)
        y = np.asarray(self.y)
        ids = np.asarray(self.ids).astype(str)
        if x.ndim < 2:
            raise ShapeError(
                f"{self.name}: features must have shape (n, ...) with one row per example; "
                f"got shape {x.shape}. Reshape a single feature column to (n, 1)."
            )
        if y.ndim != 1 or len(y) != len(x):
            raise ShapeError(
                f"{self.name}: labels must have shape ({len(x)},) to match the features; got {y.shape}."
            )
        if len(ids) != len(x) or ids.ndim != 1:
            raise ShapeError(f"{self.name}: ids must have shape ({len(x)},); got {ids.shape}.")
        if not np.issubdtype(y.dtype, np.integer):
            if np.issubdtype(y.dtype, np.floating) and np.all(np.isfinite(y)) and np.all(y == np.round(y)):
                y = y.astype(np.int64)
            else:
                raise DataError(
                    f"{self.name}: labels must be integer class indices 0..C-1; got dtype {y.dtype}. "
                    "Map class names to integers first (the tabular loader does this for you)."
                )
        if not np.issubdtype(x.dtype, np.floating):
            x = x.astype(np.float32)
        elif x.dtype != np.float32:
            x = x.astype(np.float32)
        if not np.all(np.isfinite(x)):
            bad = np.argwhere(~np.isfinite(x.reshape(len(x), -1)).all(axis=1)).ravel()
            raise DataError(
                f"{self.name}: features contain NaN or infinite values in {len(bad)} rows "
                f"(first ids: {', '.join(ids[bad[:5]])}). Impute or drop those rows before unlearning."
            )
        if len(y) and y.min() < 0:
            raise DataError(f"{self.name}: labels must be >= 0; got minimum {y.min()}.")
        declared = self.n_classes_ if self.n_classes_ is not None else \
            len(self.classes) if self.classes is not None else None
        if len(y) and declared is not None and y.max() >= declared:
            raise DataError(f"{self.name}: label {y.max()} is out of range for {declared} classes (0..{declared - 1}). "
                            "Pass classes naming every class, or map the labels to 0..C-1.")
        if len(y) and declared is None and y.max() >= max(SPARSE_LABELS, 10 * len(y)):
            raise DataError(
                f"{self.name}: the largest label is {y.max()} for {len(y)} examples, so a model would need "
                f"{y.max() + 1} outputs, nearly all for classes without examples. Labels are class indices "
                "0..C-1: map them first (np.unique(y, return_inverse=True)), or pass n_classes_ when the "
                "dataset really has that many classes."
            )
        uniq, counts = np.unique(ids, return_counts=True)
        if len(uniq) != len(ids):
            dup = uniq[counts > 1][:5]
            raise DataError(
                f"{self.name}: example ids must be unique; duplicated: {', '.join(dup)}. "
                "Give every row its own id (the row number is used when none is given)."
            )
        subjects = None if self.subjects is None else np.asarray(self.subjects).astype(str)
        if subjects is not None and subjects.shape != ids.shape:
            raise ShapeError(f"{self.name}: subjects must have shape ({len(x)},); got {subjects.shape}.")
        object.__setattr__(self, "x", x)
        object.__setattr__(self, "y", y.astype(np.int64))
        object.__setattr__(self, "ids", ids)
        object.__setattr__(self, "subjects", subjects)

    # -- basic properties -------------------------------------------------
    def __len__(self) -> int:
        return len(self.y)

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(self.x.shape[1:])

    @property
    def n_classes(self) -> int:
        if self.n_classes_ is not None:
            return self.n_classes_
        if self.classes is not None:
            return len(self.classes)
        return int(self.y.max()) + 1 if len(self.y) else 0

    @cached_property
    def _id_index(self) -> dict[str, int]:
        return {k: i for i, k in enumerate(self.ids)}

    @cached_property
    def fingerprint(self) -> str:
        """A content hash over ids, labels and features (order-sensitive)."""
        h = hashlib.sha256()
        h.update(self.name.encode())
        h.update("\0".join(self.ids).encode())
        h.update(np.ascontiguousarray(self.y).tobytes())
        h.update(np.ascontiguousarray(self.x).tobytes())
        return h.hexdigest()

    # -- selection --------------------------------------------------------
    def subset(self, index: np.ndarray, *, name: str | None = None) -> ArrayDataset:
        """Rows at integer positions or a boolean mask, keeping everything else."""
        index = np.asarray(index)
        if index.dtype == bool:
            index = np.flatnonzero(index)
        return ArrayDataset(
            x=self.x[index],
            y=self.y[index],
            ids=self.ids[index],
            subjects=None if self.subjects is None else self.subjects[index],
            name=name or self.name,
            classes=self.classes,
            n_classes_=self.n_classes,
        )

    def stratified_sample(self, n: int, *, seed: int, name: str | None = None) -> ArrayDataset:
        """``n`` rows drawn without replacement, each class in proportion (scikit-learn's stratified split)."""
        from sklearn.model_selection import train_test_split

        if not 1 < n < len(self):
            raise DataError(f"{self.name}: cannot draw a subset of {n} from {len(self)} examples; "
                            f"choose 2 <= n < {len(self)}, or leave the subset out to use them all.")
        counts = np.bincount(self.y, minlength=self.n_classes)
        stratify = self.y if n >= self.n_classes and (counts[counts > 0] >= 2).all() else None
        index, _ = train_test_split(np.arange(len(self)), train_size=n, random_state=seed, stratify=stratify)
        return self.subset(np.sort(index), name=name or f"{self.name}[{n}]")

    def positions(self, ids: list[str] | np.ndarray) -> np.ndarray:
        """Row positions of ``ids``; unknown ids raise :class:`ForgetSetError` naming them."""
        ids = [str(i) for i in ids]
        missing = [i for i in ids if i not in self._id_index]
        if missing:
            raise ForgetSetError(
                f"{len(missing)} id(s) are not in {self.name} (first: {', '.join(missing[:5])}). "
                f"Ids look like {', '.join(self.ids[:3])}; check the id column and the split."
            )
        return np.array([self._id_index[i] for i in ids], dtype=np.int64)

    def tensors(self, device: str | torch.device = "cpu") -> tuple[torch.Tensor, torch.Tensor]:
        return (
            torch.from_numpy(self.x).to(device),
            torch.from_numpy(self.y).to(device),
        )


@dataclass(frozen=True)
class DataBundle:
    """A train split and a held-out test split of one dataset."""

    train: ArrayDataset
    test: ArrayDataset
    name: str

    def __post_init__(self) -> None:
        if self.train.input_shape != self.test.input_shape:
            raise ShapeError(
                f"{self.name}: train features have shape {self.train.input_shape} per example "
                f"but test features have {self.test.input_shape}."
            )
        if len(self.train) == 0:
            raise DataError(f"{self.name}: the training split is empty; give more examples or a smaller test share.")
        present = np.unique(self.train.y)
        if len(present) < 2:
            only = int(present[0])
            name = self.train.classes[only] if self.train.classes and only < len(self.train.classes) else only
            raise DataError(
                f"{self.name}: all {len(self.train)} training examples have the same label ({name!r}). "
                "A classifier needs at least two classes: with one, any model scores accuracy 1.0 and "
                "there is nothing to learn or unlearn. Check the label column, or add examples of other classes."
            )
        overlap = set(self.train.ids) & set(self.test.ids)
        if overlap:
            raise DataError(
                f"{self.name}: {len(overlap)} ids occur in both train and test "
                f"(e.g. {sorted(overlap)[:3]}); ids must identify examples across splits."
            )

    @property
    def n_classes(self) -> int:
        return max(self.train.n_classes, self.test.n_classes)


def seeded_split(n: int, test_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Split ``range(n)`` into (train, test) positions with a seeded permutation."""
    if not 0.0 < test_fraction < 1.0:
        raise DataError(f"test_fraction must be in (0, 1); got {test_fraction}.")
    if n < 2:
        raise DataError(f"Cannot split {n} example(s) into a training and a test part; at least 2 are needed.")
    rng = np.random.default_rng(seed)
    perm = rng.permutation(n)
    n_test = min(n - 1, max(1, int(round(n * test_fraction))))  # both parts keep at least one example
    return np.sort(perm[n_test:]), np.sort(perm[:n_test])


__all__ = ["ArrayDataset", "DataBundle", "seeded_split", "ForgetSetError"]
