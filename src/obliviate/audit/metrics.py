"""Core unlearning metrics as pure functions over numpy arrays.

Conventions: accuracies are fractions in [0, 1]; UA/RA/TA follow the SalUn /
Unlearn-Sparse papers (UA = 1 - forget accuracy); ToW is Zhao et al.'s
tug-of-war against the retrained model of the same seed.
"""

from __future__ import annotations

import numpy as np

from obliviate.errors import ShapeError


def accuracy(predictions: np.ndarray, labels: np.ndarray) -> float:
    """Fraction of ``predictions`` (class indices, or logits/probabilities (n, C)) equal to ``labels``."""
    predictions = np.asarray(predictions)
    labels = np.asarray(labels)
    if predictions.ndim == 2:
        predictions = predictions.argmax(axis=1)
    if predictions.shape != labels.shape:
        raise ShapeError(f"accuracy: predictions {predictions.shape} and labels {labels.shape} differ in shape.")
    if len(labels) == 0:
        raise ShapeError("accuracy: no examples; an empty split has no accuracy.")
    return float(np.mean(predictions == labels))


def tug_of_war(acc: tuple[float, float, float], acc_retrain: tuple[float, float, float]) -> float:
    """ToW = (1 - |Δforget|)(1 - |Δretain|)(1 - |Δtest|) against the retrained model (Zhao et al. 2024).

    ``acc`` and ``acc_retrain`` are (forget, retain, test) accuracies as fractions.
    1.0 means indistinguishable accuracy from retraining on all three splits.
    """
    a = np.asarray(acc, dtype=float)
    r = np.asarray(acc_retrain, dtype=float)
    if a.shape != (3,) or r.shape != (3,):
        raise ShapeError("tug_of_war takes (forget, retain, test) accuracy triples.")
    return float(np.prod(1.0 - np.abs(a - r)))


def gap_closed(value: float, original: float, ideal: float = 1.0) -> float:
    """Share of the original model's gap to ``ideal`` that a method closed.

    ``(value - original) / (ideal - original)``; 1 = fully closed, 0 = no
    better than doing nothing, negative = worse than doing nothing. NaN when
    the original already sits at the ideal (there was no gap to close).
    """
    gap = ideal - original
    if abs(gap) < 1e-12:
        return float("nan")
    return float((value - original) / gap)


def softmax(logits: np.ndarray) -> np.ndarray:
    z = np.asarray(logits, dtype=np.float64)
    z = z - z.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


def js_divergence(p: np.ndarray, q: np.ndarray, *, per_example: bool = False) -> float | np.ndarray:
    """Jensen-Shannon divergence between rows of two probability matrices, in bits (0..1).

    Mean over rows unless ``per_example``. Used between the unlearned and the
    retrained model's output distributions on the forget set.
    """
    p = np.asarray(p, dtype=np.float64)
    q = np.asarray(q, dtype=np.float64)
    if p.shape != q.shape or p.ndim != 2:
        raise ShapeError(f"js_divergence needs two (n, C) matrices of equal shape; got {p.shape} and {q.shape}.")
    p = p / p.sum(axis=1, keepdims=True)
    q = q / q.sum(axis=1, keepdims=True)
    m = 0.5 * (p + q)

    def _kl(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        with np.errstate(divide="ignore", invalid="ignore"):
            t = np.where(a > 0, a * (np.log2(a) - np.log2(b)), 0.0)
        return t.sum(axis=1)

    js = np.clip(0.5 * _kl(p, m) + 0.5 * _kl(q, m), 0.0, 1.0)
    return js if per_example else float(js.mean())


def cross_entropy_per_example(probs: np.ndarray, labels: np.ndarray, *, eps: float = 1e-12) -> np.ndarray:
    """``-log p[label]`` per row."""
    probs = np.asarray(probs, dtype=np.float64)
    labels = np.asarray(labels)
    return -np.log(np.clip(probs[np.arange(len(labels)), labels], eps, 1.0))


def mean_ci(values: np.ndarray, level: float = 0.95) -> tuple[float, float]:
    """Mean and half-width of a Student-t confidence interval (half-width NaN for one value)."""
    from scipy import stats

    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v)]
    if len(v) == 0:
        return float("nan"), float("nan")
    if len(v) == 1:
        return float(v[0]), float("nan")
    half = stats.t.ppf(0.5 + level / 2, len(v) - 1) * v.std(ddof=1) / np.sqrt(len(v))
    return float(v.mean()), float(half)
