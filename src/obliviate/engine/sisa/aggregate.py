"""How shard models' outputs combine into one prediction (the A in SISA).

An aggregator takes per-shard class probabilities ``probs`` (K, n, C) and shard sizes
``sizes`` (K,) and returns scores (n, C) whose rows sum to 1; the prediction is their
argmax. Register new ones in ``AGGREGATORS``.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from obliviate.registry import Registry

Aggregator = Callable[[np.ndarray, np.ndarray], np.ndarray]
AGGREGATORS: Registry[Aggregator] = Registry("aggregation")


@AGGREGATORS.register("mean")
def mean_softmax(probs: np.ndarray, sizes: np.ndarray) -> np.ndarray:
    """Mean of the shard models' softmax outputs."""
    return probs.mean(axis=0)


@AGGREGATORS.register("weighted")
def size_weighted(probs: np.ndarray, sizes: np.ndarray) -> np.ndarray:
    """Mean of softmax outputs weighted by the number of examples each shard now holds."""
    w = np.asarray(sizes, dtype=np.float64)
    return np.tensordot(w / w.sum(), probs, axes=1)


@AGGREGATORS.register("vote")
def majority_vote(probs: np.ndarray, sizes: np.ndarray) -> np.ndarray:
    """Majority vote of the shard models' labels (the paper's default).

    Scores are ``(votes + 0.5 * mean softmax) / (K + 0.5)``: the vote fractions, with ties
    broken by the mean softmax (half a vote can never outweigh a whole one).
    """
    k, _, c = probs.shape
    votes = np.eye(c)[probs.argmax(axis=2)].sum(axis=0)
    return (votes + 0.5 * probs.mean(axis=0)) / (k + 0.5)


__all__ = ["AGGREGATORS", "majority_vote", "mean_softmax", "size_weighted"]
