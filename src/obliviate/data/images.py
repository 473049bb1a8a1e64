"""Bring your own images: a folder with one subfolder per class, like torchvision's ImageFolder.

::

    pets/
      cat/001.png  cat/002.jpg ...
      dog/001.png ...

Classes are the subfolder names in sorted order. Every image is opened with
Pillow, converted to grayscale or RGB, resized to ``size`` (bilinear) and
scaled to [0, 1]; examples have shape (C, H, W). An example's id is its path
relative to the folder (``cat/001.png``); ids from a separate test folder get
the prefix ``test/`` so they never collide with training ids. Files whose
extension is not an image extension, and hidden files, are skipped.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import Field, field_validator

from obliviate.config import StrictModel
from obliviate.data.dataset import ArrayDataset, DataBundle
from obliviate.data.tabular import stratified_split
from obliviate.errors import DataError, DatasetNotFoundError

log = logging.getLogger(__name__)

IMAGE_EXTENSIONS = [".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm"]


class ImageFolderConfig(StrictModel):
    """An image folder and how to turn its files into arrays. Only ``path`` is required."""

    kind: Literal["images"] = "images"
    path: str
    test_path: str | None = None     # a second folder with the same class subfolders
    test_fraction: float = 0.2       # else this seeded, stratified share of ``path``
    size: int | tuple[int, int] = 28  # one side, or (height, width)
    mode: Literal["grayscale", "rgb"] = "grayscale"
    extensions: list[str] = Field(default_factory=lambda: list(IMAGE_EXTENSIONS))
    seed: int = 0

    @field_validator("size")
    @classmethod
    def _size(cls, v: int | tuple[int, int]) -> int | tuple[int, int]:
        sides = (v,) if isinstance(v, int) else v
        if any(s < 1 for s in sides):
            raise ValueError("size must be positive, e.g. 28 or [32, 48]")
        return v

    @field_validator("test_fraction")
    @classmethod
    def _fraction(cls, v: float) -> float:
        if not 0.0 < v < 1.0:
            raise ValueError("test_fraction must be in (0, 1), e.g. 0.2")
        return v

    @property
    def hw(self) -> tuple[int, int]:
        return (self.size, self.size) if isinstance(self.size, int) else (self.size[0], self.size[1])

    def load(self) -> ImageFolderData:
        return load_image_folder(self)


@dataclass(frozen=True)
class ImageFolderData:
    """What :func:`load_image_folder` returns: the bundle and how it was made."""

    bundle: DataBundle
    classes: tuple[str, ...]
    config: ImageFolderConfig

    def to_dict(self) -> dict[str, Any]:
        return {"kind": "images", "config": self.config.model_dump(), "classes": list(self.classes)}


def list_image_folder(root: str | os.PathLike[str], *,
                      extensions: list[str] | None = None) -> dict[str, list[Path]]:
    """Class name -> sorted image files under ``root/<class>/`` (recursively). Typed errors name the folder."""
    root = Path(root)
    if not root.exists():
        raise DatasetNotFoundError(f"Image folder {root} does not exist.", searched=[str(root.resolve())])
    if not root.is_dir():
        raise DataError(f"{root} is a file; image data is a folder with one subfolder per class "
                        "(a table is data kind 'tabular').")
    exts = {e.lower() if e.startswith(".") else f".{e.lower()}" for e in (extensions or IMAGE_EXTENSIONS)}
    classes = sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not classes:
        raise DataError(f"Image folder {root} has no class subfolders. Put each class's images in its "
                        "own subfolder, e.g. {root}/cat/1.png and {root}/dog/2.png.".replace("{root}", str(root)))
    files: dict[str, list[Path]] = {}
    empty = []
    for c in classes:
        found = sorted(p for p in (root / c).rglob("*")
                       if p.is_file() and p.suffix.lower() in exts
                       and not any(part.startswith(".") for part in p.relative_to(root).parts))
        if not found:
            empty.append(str(root / c))
        files[c] = found
    if empty:
        raise DataError(f"Class folder(s) without images ({', '.join(sorted(exts))}): {', '.join(empty)}. "
                        "Add images or remove the folder.")
    return files


def read_image(path: str | os.PathLike[str], *, hw: tuple[int, int], mode: str = "grayscale") -> np.ndarray:
    """One image as float32 (C, H, W) in [0, 1]; an unreadable file raises DataError naming it."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            im = im.convert("L" if mode == "grayscale" else "RGB")
            im = im.resize((hw[1], hw[0]), Image.Resampling.BILINEAR)
            arr = np.asarray(im, dtype=np.float32) / 255.0
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as exc:
        raise DataError(f"Cannot read image {path}: {exc}. Remove or replace the file.") from None
    return arr[None] if arr.ndim == 2 else arr.transpose(2, 0, 1)


def _read_folder(root: Path, cfg: ImageFolderConfig, classes: list[str] | None,
                 prefix: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[str]]:
    files = list_image_folder(root, extensions=cfg.extensions)
    if classes is None:
        classes = list(files)
    unknown = [c for c in files if c not in classes]
    if unknown:
        raise DataError(f"Test folder {root} has class folder(s) {', '.join(unknown)} that the training "
                        f"folder lacks (training classes: {', '.join(classes)}).")
    xs, ys, ids = [], [], []
    for c, paths in files.items():
        for p in paths:
            xs.append(read_image(p, hw=cfg.hw, mode=cfg.mode))
            ys.append(classes.index(c))
            ids.append(prefix + p.relative_to(root).as_posix())
    return np.stack(xs), np.array(ys, dtype=np.int64), np.array(ids), classes


def load_image_folder(config: ImageFolderConfig | str | os.PathLike[str], **options: Any) -> ImageFolderData:
    """Load an image folder (and a test folder or a seeded stratified test share) into a bundle.

    ``config`` is an :class:`ImageFolderConfig` or a path; keyword options fill
    or override its fields, e.g. ``load_image_folder("pets", size=32, mode="rgb")``.
    """
    from obliviate.config import validate

    base = config.model_dump() if isinstance(config, ImageFolderConfig) else {"path": str(config)}
    cfg = config if isinstance(config, ImageFolderConfig) and not options else \
        validate(ImageFolderConfig, {**base, **options}, source="image folder options")
    root = Path(cfg.path)
    x, y, ids, classes = _read_folder(root, cfg, None, "")
    name = root.resolve().name or "images"
    if cfg.test_path:
        xt, yt, idt, _ = _read_folder(Path(cfg.test_path), cfg, classes, "test/")
        train = ArrayDataset(x, y, ids, name=f"{name}-train", classes=tuple(classes))
        test = ArrayDataset(xt, yt, idt, name=f"{name}-test", classes=tuple(classes))
    else:
        tr, te = stratified_split(y, cfg.test_fraction, cfg.seed)
        train = ArrayDataset(x[tr], y[tr], ids[tr], name=f"{name}-train", classes=tuple(classes))
        test = ArrayDataset(x[te], y[te], ids[te], name=f"{name}-test", classes=tuple(classes))
    log.info("loaded %s: %d train, %d test images of shape %s, %d classes", root, len(train), len(test),
             train.input_shape, len(classes))
    return ImageFolderData(DataBundle(train=train, test=test, name=name), tuple(classes), cfg)


__all__ = ["IMAGE_EXTENSIONS", "ImageFolderConfig", "ImageFolderData", "list_image_folder",
           "load_image_folder", "read_image"]
