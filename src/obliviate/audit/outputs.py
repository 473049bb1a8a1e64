"""Model outputs (the signals attacks and metrics read), computed once per model and split."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from torch import nn

from obliviate.audit.metrics import cross_entropy_per_example, softmax
from obliviate.data.dataset import ArrayDataset
from obliviate.training.trainer import predict_logits


@dataclass(frozen=True)
class Outputs:
    """Per-example outputs of one model on one split."""

    probs: np.ndarray   # (n, C)
    labels: np.ndarray  # (n,)

    @property
    def predictions(self) -> np.ndarray:
        return self.probs.argmax(axis=1)

    @property
    def loss(self) -> np.ndarray:
        return cross_entropy_per_example(self.probs, self.labels)

    @property
    def confidence(self) -> np.ndarray:
        """Probability of the true class."""
        return self.probs[np.arange(len(self.labels)), self.labels]

    @property
    def accuracy(self) -> float:
        return float(np.mean(self.predictions == self.labels))


def outputs_of(model: nn.Module, data: ArrayDataset, *, device: str = "cpu") -> Outputs:
    return Outputs(probs=softmax(predict_logits(model, data.x, device=device)), labels=data.y)
