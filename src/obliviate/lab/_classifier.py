"""Shared by the classifier experiments: data, an original, an UnlearningTask, penultimate features."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from obliviate.data.builtin import DATASETS, load_dataset
from obliviate.data.dataset import ArrayDataset, DataBundle
from obliviate.data.forget import ForgetSplit, split_forget
from obliviate.errors import ConfigError
from obliviate.models.zoo import ModelSpec
from obliviate.removal.base import UnlearningTask
from obliviate.removal.objective import ClassificationObjective
from obliviate.training.cache import ModelCache, train_cached
from obliviate.training.recipe import Recipe
from obliviate.training.trainer import predict_logits

#: trained models are not cached: each run's seconds are its own
NO_CACHE = ModelCache(enabled=False)


def data_problems(dataset: str, forget_class: int, train_subset: int | None) -> list[str]:
    p = []
    if dataset not in DATASETS:
        p.append(f"dataset {dataset!r} is unknown; use one of {', '.join(DATASETS.names())}.")
    if forget_class < 0:
        p.append(f"forget_class must be a class index >= 0; got {forget_class}.")
    if train_subset is not None and train_subset < 20:
        p.append(f"train_subset must be >= 20 (or None for all); got {train_subset}.")
    return p


def load(dataset: str, data_dir: str | None, train_subset: int | None, forget_class: int) -> DataBundle:
    bundle = load_dataset(dataset, data_dir=data_dir)
    if forget_class >= bundle.n_classes:
        raise ConfigError(f"forget_class {forget_class} is not a class of {dataset} (0..{bundle.n_classes - 1}).")
    if train_subset is not None and train_subset < len(bundle.train):
        bundle = DataBundle(train=bundle.train.stratified_sample(train_subset, seed=0), test=bundle.test,
                            name=bundle.name)
    return bundle


@dataclass
class Setup:
    bundle: DataBundle
    split: ForgetSplit
    spec: ModelSpec
    recipe: Recipe
    original: nn.Module
    task: UnlearningTask


def setup(bundle: DataBundle, forget_class: int, hidden: list[int], recipe: Recipe, seed: int) -> Setup:
    """The original trained on all training data and the UnlearningTask for forgetting one class."""
    spec = ModelSpec("mlp", {"hidden": list(hidden)})
    n_classes = bundle.n_classes
    split = split_forget(bundle.train, f"class:{forget_class}", seed=seed)
    original = train_cached(spec, bundle.train, recipe, seed=seed, n_classes=n_classes, cache=NO_CACHE).model

    def fit_from_scratch(data: ArrayDataset) -> tuple[nn.Module, float, dict[str, Any]]:
        tm = train_cached(spec, data, recipe, seed=seed, n_classes=n_classes, cache=NO_CACHE)
        return tm.model, tm.wall_s, {"steps": tm.manifest.get("steps", 0)}

    task = UnlearningTask(forget=split.forget, retain=split.retain, objective=ClassificationObjective(n_classes),
                          recipe=recipe, seed=seed, fit_from_scratch=fit_from_scratch,
                          extras={"train": bundle.train, "test": bundle.test, "model_spec": spec})
    return Setup(bundle, split, spec, recipe, original, task)


@torch.no_grad()
def penultimate(model: nn.Module, x: np.ndarray) -> np.ndarray:
    """The input of the model's final linear layer (``model.classifier``), as float64."""
    head = getattr(model, "classifier", None)
    if not isinstance(head, nn.Module):
        raise ConfigError(f"{type(model).__name__} has no 'classifier' layer to read penultimate features from.")
    seen: list[torch.Tensor] = []
    handle = head.register_forward_hook(lambda _m, inp, _out: seen.append(inp[0].detach()))
    try:
        predict_logits(model, x)
    finally:
        handle.remove()
    return torch.cat(seen).double().numpy()


def logits(model: nn.Module, x: np.ndarray) -> np.ndarray:
    return predict_logits(model, x)


def per_class_accuracy(model: nn.Module, data: ArrayDataset) -> np.ndarray:
    pred = predict_logits(model, data.x).argmax(1)
    return np.array([float(np.mean(pred[data.y == k] == k)) if (data.y == k).any() else float("nan")
                     for k in range(data.n_classes)])
