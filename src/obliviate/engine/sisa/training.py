"""Deterministic per-shard training with content-addressed slice checkpoints.

What a shard's slice-r model is depends only on: the configuration (model, recipe, seed,
threads, epochs per slice), the dataset's fingerprint, the shard index, and the exact
ordered ids of the cumulative data of slices 1..r (which includes those of every earlier
slice). A checkpoint's key is a hash chain over exactly that, so after a deletion the
slices before the first affected one keep their keys (their checkpoints are reused) and
the rest get new keys and are trained again, starting from the last unaffected one.

Bit-exactness: init comes from ``build_model(seed=derive_seed(seed, shard))``, each
slice's data order from ``derive_seed(seed, shard, slice)``; training runs with
``torch.use_deterministic_algorithms(True)`` and a fixed number of CPU threads; weights
round-trip through safetensors losslessly. So retraining from the last unaffected
checkpoint gives, bit for bit, the weights of training the shard from scratch without
the deleted examples (:func:`train_shard_reference`; the tests assert it).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import torch
from torch import nn

from obliviate.data.dataset import ArrayDataset
from obliviate.engine.sisa.config import SisaConfig
from obliviate.engine.sisa.placement import PLACEMENTS, Assignment
from obliviate.engine.store import ModelStore
from obliviate.models.zoo import ModelSpec, build_model
from obliviate.training.checkpoint import load_into, state_to_tensors
from obliviate.training.recipe import Recipe
from obliviate.training.trainer import train_classifier

log = logging.getLogger(__name__)

KEY_FORMAT = "obliviate-sisa-slice-v1"


def derive_seed(*parts: int) -> int:
    """A 31-bit seed derived from several integers (run seed, shard, slice)."""
    ss = np.random.SeedSequence([int(p) for p in parts])
    return int(ss.generate_state(1, dtype=np.uint32)[0] & 0x7FFFFFFF)


def key_base(config: SisaConfig, *, fingerprint: str, input_shape: Sequence[int], n_classes: int) -> str:
    """Hash of everything shared by all slice checkpoints of a store."""
    blob = json.dumps({"format": KEY_FORMAT, "model": config.model.to_dict(), "recipe": config.recipe.to_dict(),
                       "seed": config.seed, "threads": config.threads, "epochs_per_slice": config.epochs_per_slice,
                       "input_shape": list(input_shape), "n_classes": int(n_classes), "data": fingerprint},
                      sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()


def slice_keys(base: str, shard: int, ids: Sequence[str], prefix: Sequence[int]) -> list[str]:
    """Keys of a shard's R slice checkpoints: ``key_r = H(base, shard, r, key_{r-1}, ids[:prefix[r]])``."""
    keys: list[str] = []
    parent = ""
    ids_hash = hashlib.sha256()  # over "id\n" for every id of the cumulative data, in order
    done = 0
    for r, n in enumerate(prefix):
        if n > done:
            ids_hash.update(("\n".join(map(str, ids[done:n])) + "\n").encode())
        done = n
        h = hashlib.sha256(f"{base}|{shard}|{r}|{parent}|{n}|".encode())
        h.update(ids_hash.copy().digest())
        parent = h.hexdigest()[:40]
        keys.append(parent)
    return keys


def place(data: ArrayDataset, config: SisaConfig) -> Assignment:
    return PLACEMENTS.get(config.placement)(data.ids, data.subjects, config.shards, config.slices, config.seed)


def live_rows(slices: Sequence[np.ndarray], forgotten: np.ndarray) -> tuple[np.ndarray, list[int]]:
    """A shard's rows still present, in order, and the cumulative count after each slice."""
    rows: list[np.ndarray] = []
    prefix: list[int] = []
    total = 0
    for s in slices:
        keep = s[~forgotten[s]] if len(s) else s
        rows.append(keep)
        total += len(keep)
        prefix.append(total)
    return (np.concatenate(rows) if rows else np.zeros(0, dtype=np.int64)), prefix


def _set_deterministic(mode: bool) -> None:
    # torch.use_deterministic_algorithms also sets torch._inductor's flag, which imports the
    # whole compiler stack (~2.5 s per process, paid by every CLI call and worker); eager
    # training only reads the C++ flag, so set that one when this torch has the setter.
    setter = getattr(torch._C, "_set_deterministic_algorithms", None)
    if setter is None:  # pragma: no cover - other torch versions
        torch.use_deterministic_algorithms(mode)
    else:
        setter(mode)


@contextlib.contextmanager
def deterministic(threads: int) -> Iterator[None]:
    """Fixed CPU threads and deterministic algorithms; restores the caller's settings."""
    prev_threads = torch.get_num_threads()
    prev_det = torch.are_deterministic_algorithms_enabled()
    torch.set_num_threads(threads)
    _set_deterministic(True)
    try:
        yield
    finally:
        _set_deterministic(prev_det)
        torch.set_num_threads(prev_threads)


@dataclass
class ShardJob:
    """Everything one worker needs to (re)train slices ``start..R-1`` of one shard."""

    shard: int
    root: str
    model: dict[str, Any]
    input_shape: tuple[int, ...]
    n_classes: int
    recipe: dict[str, Any]
    epochs: int
    seed: int
    threads: int
    x: np.ndarray
    y: np.ndarray
    ids: np.ndarray
    prefix: list[int]
    keys: list[str]
    start: int = 0
    start_sha256: str | None = None


@dataclass
class ShardResult:
    shard: int
    slices: list[dict[str, Any]] = field(default_factory=list)  # for slices start..R-1
    wall_s: float = 0.0
    cpu_s: float = 0.0


def _train_slice(model: nn.Module, x: np.ndarray, y: np.ndarray, ids: np.ndarray, n: int, recipe: Recipe,
                 seed: int, n_classes: int) -> None:
    data = ArrayDataset(x[:n], y[:n], ids[:n], name="sisa-slice", n_classes_=n_classes)
    train_classifier(model, data, recipe, seed=seed)


def run_shard_job(job: ShardJob) -> ShardResult:
    """Train one shard's slices from ``job.start`` on, saving a checkpoint after each.

    A slice whose checkpoint is already complete in the store (a resumed run) is not
    trained again. Module-level so process and Ray workers can run it.
    """
    t0, c0 = time.perf_counter(), time.process_time()
    store = ModelStore(job.root)
    recipe = replace(Recipe(**job.recipe), epochs=job.epochs)
    result = ShardResult(job.shard)
    with deterministic(job.threads):
        model = build_model(ModelSpec(**job.model), job.input_shape, job.n_classes, seed=derive_seed(job.seed, job.shard))
        # Which checkpoint the in-memory model holds; None = fresh init.
        held: str | None = None
        prev_sha = job.start_sha256
        for r in range(job.start, len(job.keys)):
            key = job.keys[r]
            done = store.finished_checkpoint(key)
            if done is not None:
                result.slices.append({"slice": r, "key": key, "sha256": done["sha256"], "n": job.prefix[r],
                                      "epochs": job.epochs, "wall_s": 0.0, "reused": True})
                prev_sha = done["sha256"]
                continue
            if r > 0 and held != job.keys[r - 1]:
                assert prev_sha is not None, "the caller gives start_sha256 whenever start > 0"
                load_into(model, store.load_checkpoint(job.keys[r - 1], prev_sha), source=f"slice {r - 1} checkpoint")
            ts = time.perf_counter()
            _train_slice(model, job.x, job.y, job.ids, job.prefix[r], recipe,
                         derive_seed(job.seed, job.shard, r), job.n_classes)
            wall = time.perf_counter() - ts
            # The sidecar is the checkpoint's lineage: every example id its weights were trained
            # on (the cumulative slices 0..r), so recovery can tell which files hold forgotten data.
            prev_sha = store.save_checkpoint(key, state_to_tensors(model), {
                "shard": job.shard, "slice": r, "n": job.prefix[r], "epochs": job.epochs, "wall_s": wall,
                "parent": job.keys[r - 1] if r > 0 else None,
                "trained_on": [str(i) for i in job.ids[: job.prefix[r]].tolist()]})
            held = key
            result.slices.append({"slice": r, "key": key, "sha256": prev_sha, "n": job.prefix[r],
                                  "epochs": job.epochs, "wall_s": wall, "reused": False})
            log.debug("shard %d slice %d trained on %d examples in %.2fs", job.shard, r, job.prefix[r], wall)
    result.wall_s = time.perf_counter() - t0
    result.cpu_s = time.process_time() - c0
    return result


def train_shard_reference(data: ArrayDataset, config: SisaConfig, shard: int, *,
                          forgotten: Sequence[str] = ()) -> dict[str, torch.Tensor]:
    """Train one shard from scratch, in memory, without ``forgotten``: the exactness oracle.

    Returns the final (slice R) weights. Uses no checkpoint and no store.
    """
    assignment = place(data, config)
    mask = np.zeros(len(data), dtype=bool)
    if len(forgotten):
        mask[data.positions(list(forgotten))] = True
    rows, prefix = live_rows(assignment[shard], mask)
    recipe = replace(config.recipe, epochs=config.epochs_per_slice)
    with deterministic(config.threads):
        model = build_model(config.model, data.input_shape, data.n_classes, seed=derive_seed(config.seed, shard))
        for r, n in enumerate(prefix):
            _train_slice(model, data.x[rows], data.y[rows], data.ids[rows], n, recipe,
                         derive_seed(config.seed, shard, r), data.n_classes)
    return state_to_tensors(model)


__all__ = ["ShardJob", "ShardResult", "deterministic", "derive_seed", "key_base", "live_rows", "place",
           "run_shard_job", "slice_keys", "train_shard_reference"]
