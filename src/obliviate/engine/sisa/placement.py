"""Where each training example goes: shard and slice (the S and the first half of the S in SISA).

A placement takes the dataset's ids and subjects and returns, for each shard, its R slices
as arrays of row positions. It is a pure function of its inputs and the seed; the store
saves its result, so it is computed once per store. Register new ones in ``PLACEMENTS``.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from obliviate.errors import ConfigError
from obliviate.registry import Registry

Assignment = list[list[np.ndarray]]  # [shard][slice] -> row positions
Placement = Callable[[np.ndarray, "np.ndarray | None", int, int, int], Assignment]
PLACEMENTS: Registry[Placement] = Registry("placement")


def _rng(seed: int, tag: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([seed, tag]))


def _slices(positions: np.ndarray, slices: int) -> list[np.ndarray]:
    return [np.asarray(s, dtype=np.int64) for s in np.array_split(positions, slices)]


@PLACEMENTS.register("uniform")
def uniform(ids: np.ndarray, subjects: np.ndarray | None, shards: int, slices: int, seed: int) -> Assignment:
    """A seeded random permutation cut into S equal shards, each cut into R equal slices."""
    perm = _rng(seed, 0x5A1D).permutation(len(ids))
    return [_slices(part, slices) for part in np.array_split(perm, shards)]


@PLACEMENTS.register("subject")
def by_subject(ids: np.ndarray, subjects: np.ndarray | None, shards: int, slices: int, seed: int) -> Assignment:
    """Every subject's examples in one shard (so erasing a person retrains one shard).

    Subjects are placed largest first onto the least-filled shard (ties in a seeded order),
    which keeps shards within one subject's size of each other; inside a shard, examples are
    shuffled (seeded) and cut into R slices.
    """
    if subjects is None:
        raise ConfigError("Placement 'subject' needs a dataset with subjects (ArrayDataset.subjects); "
                          "this one has none. Use placement 'uniform'.")
    rng = _rng(seed, 0x5B1E)
    names, inverse, counts = np.unique(subjects, return_inverse=True, return_counts=True)
    if len(names) < shards:
        raise ConfigError(f"Placement 'subject' needs at least as many subjects as shards; "
                          f"got {len(names)} subjects for {shards} shards.")
    tiebreak = rng.permutation(len(names))
    order = np.lexsort((tiebreak, -counts))
    load = np.zeros(shards, dtype=np.int64)
    shard_of = np.empty(len(names), dtype=np.int64)
    for s in order:
        k = int(np.argmin(load))
        shard_of[s] = k
        load[k] += counts[s]
    row_shard = shard_of[inverse]
    out: Assignment = []
    for k in range(shards):
        rows = np.flatnonzero(row_shard == k)
        out.append(_slices(rows[_rng(seed, 0x5C00 + k).permutation(len(rows))], slices))
    return out


__all__ = ["PLACEMENTS", "Assignment", "by_subject", "uniform"]
