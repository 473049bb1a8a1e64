"""Content-addressed cache of trained models.

A trained model is identified by what determines it: the exact training data
(its fingerprint covers ids, labels and features, so a different split or
forget set is a different key), the model spec, the recipe and the seed.
Re-running a benchmark reuses these instead of retraining. The recorded
training wall time travels with the checkpoint so time ratios stay honest.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from obliviate.data.dataset import ArrayDataset
from obliviate.errors import CheckpointError
from obliviate.models.zoo import ModelSpec, build_model
from obliviate.progress import Progress
from obliviate.training.checkpoint import load_checkpoint, save_checkpoint
from obliviate.training.recipe import Recipe
from obliviate.training.trainer import train_classifier

log = logging.getLogger(__name__)

CACHE_ENV = "OBLIVIATE_CACHE"
CACHE_FORMAT = "obliviate-train-v1"


def default_cache_dir() -> Path:
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV])
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "obliviate" / "models"


def cache_key(**parts: Any) -> str:
    blob = json.dumps({"format": CACHE_FORMAT, **parts}, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:24]


@dataclass
class TrainedModel:
    model: nn.Module
    wall_s: float
    cached: bool
    key: str
    manifest: dict[str, Any]


class ModelCache:
    """Stores trained models under ``root/<key>/`` (safetensors + manifest)."""

    def __init__(self, root: str | os.PathLike[str] | None = None, *, enabled: bool = True) -> None:
        self.root = Path(root) if root is not None else default_cache_dir()
        self.enabled = enabled

    def path(self, key: str) -> Path:
        return self.root / key

    def load(self, key: str, model: nn.Module) -> dict[str, Any] | None:
        if not self.enabled or not (self.path(key) / "manifest.json").is_file():
            return None
        try:
            return load_checkpoint(model, self.path(key))
        except CheckpointError as exc:
            log.warning("ignoring unusable cached model %s: %s", key, exc)
            return None

    def store(self, key: str, model: nn.Module, manifest: dict[str, Any]) -> None:
        if self.enabled:
            save_checkpoint(model, self.path(key), manifest)


def train_cached(spec: ModelSpec, data: ArrayDataset, recipe: Recipe, *, seed: int, n_classes: int,
                 cache: ModelCache | None = None, progress: Progress | None = None,
                 device: str | torch.device = "cpu", description: str = "train") -> TrainedModel:
    """Build and train a model from scratch, or load the identical one from the cache."""
    key = cache_key(data=data.fingerprint, model=spec.to_dict(), input_shape=list(data.input_shape),
                    n_classes=n_classes, recipe=recipe.to_dict(), seed=seed)
    model = build_model(spec, data.input_shape, n_classes, seed=seed)
    if cache is not None:
        manifest = cache.load(key, model)
        if manifest is not None:
            log.info("%s: reusing cached model %s", description, key)
            return TrainedModel(model.to(device).eval(), float(manifest["wall_s"]), True, key, manifest)
    t0 = time.perf_counter()
    result = train_classifier(model, data, recipe, seed=seed, device=device, progress=progress,
                              description=description)
    wall = time.perf_counter() - t0
    manifest = {
        "key": key,
        "dataset": data.name,
        "data_fingerprint": data.fingerprint,
        "n_train": len(data),
        "model": spec.to_dict(),
        "recipe": recipe.to_dict(),
        "seed": seed,
        "wall_s": wall,
        "steps": result.steps,
        "final_loss": result.final_loss,
        "torch": torch.__version__,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    if cache is not None:
        cache.store(key, model, manifest)
    return TrainedModel(model.eval(), wall, False, key, manifest)
