"""Built-in datasets, each a loader registered under a name.

A loader takes ``data_dir`` (may be None) and returns a :class:`DataBundle`
with stable ids (``"train-<row>"`` / ``"test-<row>"`` for the built-ins).
New datasets register with ``DATASETS.register("name", loader)``.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
from collections.abc import Callable
from pathlib import Path

import numpy as np

from obliviate.data.dataset import ArrayDataset, DataBundle, seeded_split
from obliviate.data.idx import read_idx
from obliviate.errors import DatasetNotFoundError
from obliviate.registry import Registry

log = logging.getLogger(__name__)

DatasetLoader = Callable[..., DataBundle]
DATASETS: Registry[DatasetLoader] = Registry("dataset")

ENV_VAR = "OBLIVIATE_DATA"


def _ids(prefix: str, n: int) -> np.ndarray:
    return np.array([f"{prefix}-{i}" for i in range(n)])


def data_roots(data_dir: str | os.PathLike[str] | None) -> list[Path]:
    """Where file-backed datasets are looked for, in order."""
    roots: list[Path] = []
    if data_dir is not None:
        roots.append(Path(data_dir))
    if os.environ.get(ENV_VAR):
        roots.append(Path(os.environ[ENV_VAR]))
    roots.append(Path.cwd() / "data")
    return roots


def find_files(name: str, files: list[str], data_dir: str | os.PathLike[str] | None) -> dict[str, Path]:
    """Find all ``files`` of dataset ``name`` under one root (``root/name/`` or ``root/``)."""
    searched: list[str] = []
    for root in data_roots(data_dir):
        for folder in (root / name, root):
            paths = {f: folder / f for f in files}
            if all(p.is_file() for p in paths.values()):
                return paths
            searched.append(str(folder))
    raise DatasetNotFoundError(
        f"Could not find the {name} files ({', '.join(files)}). Pass --data-dir DIR "
        f"(or set {ENV_VAR}) pointing at a folder that holds them, or a folder with a '{name}/' subfolder.",
        searched=searched,
    )


def load_digits_bundle(data_dir: str | None = None, *, test_fraction: float = 0.2) -> DataBundle:
    """scikit-learn's 8x8 digits (1797 images), a fixed seeded 80/20 split."""
    from sklearn.datasets import load_digits

    d = load_digits()
    x = (d.images / 16.0).astype(np.float32)[:, None, :, :]
    y = d.target.astype(np.int64)
    tr, te = seeded_split(len(y), test_fraction, seed=0)
    classes = tuple(str(c) for c in range(10))
    return DataBundle(
        train=ArrayDataset(x[tr], y[tr], _ids("train", len(y))[tr], name="digits-train", classes=classes),
        test=ArrayDataset(x[te], y[te], _ids("test", len(y))[te], name="digits-test", classes=classes),
        name="digits",
    )


def load_mnist1d_bundle(data_dir: str | None = None, *, num_samples: int = 5000) -> DataBundle:
    """MNIST-1D (Greydanus 2020) generated locally by the ``mnist1d`` package (seed 42)."""
    from mnist1d.data import get_dataset_args, make_dataset

    args = get_dataset_args()
    args.num_samples = num_samples
    with contextlib.redirect_stdout(io.StringIO()):  # the package prints progress
        d = make_dataset(args)
    classes = tuple(str(c) for c in range(10))
    xtr = d["x"].astype(np.float32)[:, None, :]
    xte = d["x_test"].astype(np.float32)[:, None, :]
    return DataBundle(
        train=ArrayDataset(xtr, d["y"], _ids("train", len(xtr)), name="mnist1d-train", classes=classes),
        test=ArrayDataset(xte, d["y_test"], _ids("test", len(xte)), name="mnist1d-test", classes=classes),
        name="mnist1d",
    )


_IDX_FILES = [
    "train-images-idx3-ubyte.gz",
    "train-labels-idx1-ubyte.gz",
    "t10k-images-idx3-ubyte.gz",
    "t10k-labels-idx1-ubyte.gz",
]

_FASHION_CLASSES = (
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
)


def _idx_bundle(name: str, data_dir: str | None, classes: tuple[str, ...]) -> DataBundle:
    paths = find_files(name, _IDX_FILES, data_dir)
    log.info("loading %s from %s", name, paths[_IDX_FILES[0]].parent)
    xtr = read_idx(paths[_IDX_FILES[0]]).astype(np.float32)[:, None] / 255.0
    ytr = read_idx(paths[_IDX_FILES[1]]).astype(np.int64)
    xte = read_idx(paths[_IDX_FILES[2]]).astype(np.float32)[:, None] / 255.0
    yte = read_idx(paths[_IDX_FILES[3]]).astype(np.int64)
    return DataBundle(
        train=ArrayDataset(xtr, ytr, _ids("train", len(ytr)), name=f"{name}-train", classes=classes),
        test=ArrayDataset(xte, yte, _ids("test", len(yte)), name=f"{name}-test", classes=classes),
        name=name,
    )


def load_mnist_bundle(data_dir: str | None = None) -> DataBundle:
    """MNIST from the original IDX ``.gz`` files (60k train, 10k test)."""
    return _idx_bundle("mnist", data_dir, tuple(str(c) for c in range(10)))


def load_fashion_mnist_bundle(data_dir: str | None = None) -> DataBundle:
    """Fashion-MNIST from the original IDX ``.gz`` files (60k train, 10k test)."""
    return _idx_bundle("fashion-mnist", data_dir, _FASHION_CLASSES)


DATASETS.register("digits", load_digits_bundle)
DATASETS.register("mnist1d", load_mnist1d_bundle)
DATASETS.register("mnist", load_mnist_bundle)
DATASETS.register("fashion-mnist", load_fashion_mnist_bundle)


def load_dataset(name: str, *, data_dir: str | os.PathLike[str] | None = None, **options: object) -> DataBundle:
    """Load a registered dataset by name."""
    return DATASETS.get(name)(data_dir, **options)
