"""Retrieval instead of weights: forgetting is deleting from a datastore.

A k-nearest-neighbour classifier keeps its training rows (as embeddings from a
frozen encoder) in a datastore keyed by stable ids, and reads them at
prediction time instead of compressing them into weights. ``forget(ids)``
deletes entries; nothing has to be retrained.

When is this exact removal?

- The datastore part always is: after ``forget`` the stored embeddings,
  labels and ids are exactly those of a store built from the remaining rows,
  in the same order, so predictions equal a fresh ``fit`` without those rows
  bit for bit. (A fresh fit re-embeds the rows; that matches the stored
  embeddings bit for bit when the encoder's output for a row does not depend on
  which other rows share its batch - true for ``encoder=None`` and for typical
  CPU inference, but not promised by every library or device.)
- The model as a whole is exact only if the encoder never saw the deleted
  rows. An encoder trained (or fine-tuned) on them still carries what it
  learned; deleting the datastore entries does not touch that. Say what you
  know with ``encoder_saw_data`` and :meth:`KNNRetrievalClassifier.guarantee`
  reports accordingly.
- Removal is not suppression: near neighbours of a deleted row may still
  produce the same prediction (generalisation from the remaining data).
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin

from obliviate.errors import DataError, ForgetSetError, ShapeError
from obliviate.removal.exact.summation import (
    check_classifier_targets,
    check_fit_data,
    check_predict_X,
    param_problem,
    raise_problems,
    require_fitted,
)

logger = logging.getLogger(__name__)

__all__ = ["METRICS", "KNNRetrievalClassifier", "RetrievalGuarantee"]


# --------------------------------------------------------------------------
# Metrics: prepare the store once per row, then distances by one matrix product.
# Every per-row preparation depends on that row only, so deleting rows leaves the
# other rows' prepared values unchanged (what makes deletion == fresh fit).
# --------------------------------------------------------------------------


class _Cosine:
    """``1 - cos(q, s)``; a zero vector has distance 1 to everything."""

    @staticmethod
    def prepare(E: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        norms = np.sqrt(np.einsum("ij,ij->i", E, E))
        safe = np.where(norms > 0, norms, 1.0)
        return E / safe[:, None], np.zeros(E.shape[0])

    @staticmethod
    def distances(Q: np.ndarray, _qa: np.ndarray, S: np.ndarray, _sa: np.ndarray) -> np.ndarray:
        return 1.0 - Q @ S.T


class _Euclidean:
    """``||q - s||_2`` via ``|q|^2 - 2 q.s + |s|^2`` (clipped at 0)."""

    @staticmethod
    def prepare(E: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return E, np.einsum("ij,ij->i", E, E)

    @staticmethod
    def distances(Q: np.ndarray, qa: np.ndarray, S: np.ndarray, sa: np.ndarray) -> np.ndarray:
        return np.sqrt(np.maximum(qa[:, None] - 2.0 * (Q @ S.T) + sa[None, :], 0.0))


#: Distance name -> implementation (add a metric by adding an entry).
METRICS: dict[str, Any] = {"cosine": _Cosine, "euclidean": _Euclidean}
_WEIGHTS = ("uniform", "distance")


@dataclass(frozen=True)
class RetrievalGuarantee:
    """What ``forget`` on a :class:`KNNRetrievalClassifier` achieves."""

    exact_datastore: bool
    exact_model: bool | None  # None: depends on whether the encoder saw the rows (unknown)
    epsilon: float | None
    delta: float | None
    n_forgotten: int
    statement: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class KNNRetrievalClassifier(ClassifierMixin, BaseEstimator):
    """k-nearest-neighbour classifier over a deletable datastore.

    Parameters
    ----------
    encoder : callable or torch.nn.Module or None, default=None
        Frozen map from a batch of inputs (numpy array, first axis = rows) to
        embeddings (n, e). An ``nn.Module`` is run in eval mode under
        ``torch.no_grad()`` on the device of its parameters, and its
        train/eval mode is restored afterwards. None = identity (X must be
        2-D numeric).
    k : int, default=5
        Neighbours per query; if the store holds fewer rows, all are used.
    metric : {"cosine", "euclidean"}, default="cosine"
    weights : {"uniform", "distance"}, default="uniform"
        Vote weights; "distance" uses 1/d, and exact matches (d <= 0) win outright.
    batch_size : int, default=1024
        Rows per encoder call, and queries per distance block.
    encoder_saw_data : bool or None, default=None
        Whether the encoder was trained on rows that may later be deleted;
        None = unknown. Only used by :meth:`guarantee`.

    Attributes
    ----------
    classes_ : labels present in the store (recomputed after ``forget``).
    ids_ : ndarray of the stored rows' ids, in store order.
    n_forgotten_, forgotten_ids_ : what ``forget`` removed so far.

    Ties are broken deterministically: among equally distant rows the one
    stored first wins, and among equally voted classes the smallest label.
    """

    def __init__(
        self,
        encoder: Callable[..., Any] | None = None,
        *,
        k: int = 5,
        metric: str = "cosine",
        weights: str = "uniform",
        batch_size: int = 1024,
        encoder_saw_data: bool | None = None,
    ) -> None:
        self.encoder = encoder
        self.k = k
        self.metric = metric
        self.weights = weights
        self.batch_size = batch_size
        self.encoder_saw_data = encoder_saw_data

    def _check_params(self) -> None:
        owner = type(self).__name__
        problems = []
        for name in ("k", "batch_size"):
            v = getattr(self, name)
            if not isinstance(v, (int, np.integer)) or isinstance(v, bool) or v < 1:
                problems.append(param_problem(owner, name, "an int in the range [1, inf)", v))
        if self.metric not in METRICS:
            problems.append(param_problem(owner, "metric", f"one of {sorted(METRICS)}", self.metric))
        if self.weights not in _WEIGHTS:
            problems.append(param_problem(owner, "weights", f"one of {_WEIGHTS}", self.weights))
        if self.encoder is not None and not callable(self.encoder):
            problems.append(param_problem(owner, "encoder", "None, a callable or a torch.nn.Module", self.encoder))
        if self.encoder_saw_data not in (None, True, False):
            problems.append(param_problem(owner, "encoder_saw_data", "None, True or False", self.encoder_saw_data))
        raise_problems(owner, problems)

    # ---- embedding ----------------------------------------------------------

    def _call_encoder(self, batch: np.ndarray) -> np.ndarray:
        enc = self.encoder
        torch = sys.modules.get("torch")  # an nn.Module implies torch is already imported
        if torch is not None and isinstance(enc, torch.nn.Module):
            param = next(enc.parameters(), None)
            dtype = param.dtype if param is not None and param.is_floating_point() else torch.float32
            device = param.device if param is not None else torch.device("cpu")
            was_training = enc.training
            enc.eval()
            try:
                with torch.no_grad():
                    out = enc(torch.as_tensor(batch, dtype=dtype, device=device))
            finally:
                enc.train(was_training)
            return out.detach().cpu().double().numpy()
        return np.asarray(enc(batch), dtype=np.float64)  # type: ignore[misc]

    def _embed(self, X: np.ndarray) -> np.ndarray:
        if self.encoder is None:
            return X
        parts = []
        for start in range(0, X.shape[0], self.batch_size):
            batch = X[start : start + self.batch_size]
            out = self._call_encoder(batch)
            if out.ndim != 2 or out.shape[0] != batch.shape[0]:
                raise ShapeError(
                    f"The encoder of {type(self).__name__} must map a batch of {batch.shape[0]} rows to an "
                    f"array of shape ({batch.shape[0]}, embedding_dim); got shape {out.shape}. "
                    "Flatten its output or wrap it in a function that does."
                )
            parts.append(out)
        E = np.concatenate(parts, axis=0)
        if not np.all(np.isfinite(E)):
            raise DataError(f"The encoder of {type(self).__name__} produced NaN or infinite embeddings; check its inputs.")
        return E

    def _inputs(self, X: Any, *, fitting: bool, y: Any = None) -> tuple[np.ndarray, Any]:
        if self.encoder is None:
            if fitting:
                return check_fit_data(self, X, y)
            return check_predict_X(self, X), None
        arr = np.asarray(X)
        if arr.ndim < 1 or arr.shape[0] == 0:
            raise ShapeError(f"{type(self).__name__} needs at least one input row; got shape {arr.shape}.")
        if fitting:
            self.input_shape_ = arr.shape[1:]
            if y is None:
                raise DataError(f"{type(self).__name__} requires y to be passed, but the target y is None.")
            y = np.asarray(y)
            if y.ndim != 1 or y.shape[0] != arr.shape[0]:
                raise ShapeError(f"y must be 1-D with one label per row of X ({arr.shape[0]}); got shape {y.shape}.")
        elif arr.shape[1:] != self.input_shape_:
            raise ShapeError(
                f"X rows have shape {arr.shape[1:]}, but {type(self).__name__} was fitted on rows of shape "
                f"{self.input_shape_}; pass inputs shaped like the training data."
            )
        return arr, y

    # ---- fit / forget -----------------------------------------------------

    def fit(self, X: Any, y: Any, ids: Any = None) -> KNNRetrievalClassifier:
        """Embed ``X`` and store it with labels ``y`` under ``ids`` (default: row positions)."""
        self._check_params()
        X, y = self._inputs(X, fitting=True, y=y)
        check_classifier_targets(self, y)
        n = X.shape[0]
        if ids is None:
            ids_arr = np.arange(n)
        else:
            ids_arr = np.asarray(ids)
            if ids_arr.ndim != 1 or ids_arr.shape[0] != n:
                raise ShapeError(f"ids must be 1-D with one id per row of X ({n}); got shape {ids_arr.shape}.")
            uniq, counts = np.unique(ids_arr, return_counts=True)
            if np.any(counts > 1):
                raise DataError(f"ids must be unique; repeated: {uniq[counts > 1][:10].tolist()}.")
        E = self._embed(X)
        self._store, self._aux = METRICS[self.metric].prepare(E)
        self._labels = np.asarray(y).copy()
        self.ids_ = ids_arr.copy()
        self._reindex()
        self.n_forgotten_ = 0
        self.forgotten_ids_: list[Any] = []
        return self

    def _reindex(self) -> None:
        self.classes_, self._codes = np.unique(self._labels, return_inverse=True)
        self._position = {key: i for i, key in enumerate(self.ids_.tolist())}

    def forget(self, ids: Any) -> KNNRetrievalClassifier:
        """Delete the entries stored under ``ids``; the store then equals a fresh fit without them."""
        require_fitted(self, "ids_")
        owner = type(self).__name__
        req = np.asarray(ids)
        if req.ndim == 0:
            req = req.reshape(1)
        if req.ndim != 1 or req.size == 0:
            raise ForgetSetError(f"{owner}.forget takes a non-empty 1-D list of ids; got shape {req.shape}.")
        keys = req.tolist()
        if len(set(keys)) != len(keys):
            raise ForgetSetError(f"{owner}.forget got duplicate ids; list each id once.")
        unknown = [key for key in keys if key not in self._position]
        if unknown:
            gone = set(self.forgotten_ids_)
            already = [key for key in unknown if key in gone]
            hint = f" Already forgotten: {already[:10]}." if already else ""
            raise ForgetSetError(
                f"{owner}.forget got ids that are not in the datastore: {unknown[:10]}.{hint} "
                "Pass ids as given to fit (default: row positions of X)."
            )
        if len(keys) >= self.ids_.shape[0]:
            raise ForgetSetError(
                f"{owner}.forget would delete every entry of the datastore; a classifier needs at least "
                "one. Discard the model instead."
            )
        pos = np.sort(np.fromiter((self._position[key] for key in keys), dtype=np.int64, count=len(keys)))
        self._store[pos] = 0.0  # scrub before dropping the old buffers
        self._store = np.delete(self._store, pos, axis=0)
        self._aux = np.delete(self._aux, pos)
        self._labels = np.delete(self._labels, pos)
        self.ids_ = np.delete(self.ids_, pos)
        self._reindex()
        self.n_forgotten_ += len(keys)
        self.forgotten_ids_.extend(keys)
        return self

    # ---- prediction -------------------------------------------------------

    def _votes(self, X: Any) -> np.ndarray:
        require_fitted(self, "ids_")
        X, _ = self._inputs(X, fitting=False)
        metric = METRICS[self.metric]
        Q, qa = metric.prepare(self._embed(X))
        n_store, n_classes = self._store.shape[0], self.classes_.size
        k = min(self.k, n_store)
        votes = np.zeros((Q.shape[0], n_classes))
        for start in range(0, Q.shape[0], self.batch_size):
            D = metric.distances(Q[start : start + self.batch_size], qa[start : start + self.batch_size], self._store, self._aux)
            kth = np.partition(D, k - 1, axis=1)[:, k - 1]
            for r in range(D.shape[0]):
                cand = np.flatnonzero(D[r] <= kth[r])  # ascending store order
                nn = cand[np.argsort(D[r, cand], kind="stable")[:k]]  # ties -> stored first
                if self.weights == "uniform":
                    w = np.ones(k)
                else:
                    d = D[r, nn]
                    w = (d <= 0).astype(np.float64) if np.any(d <= 0) else 1.0 / d
                np.add.at(votes[start + r], self._codes[nn], w)
        return votes

    def predict_proba(self, X: Any) -> np.ndarray:
        """Share of (weighted) neighbour votes per class, columns ordered as ``classes_``."""
        votes = self._votes(X)
        return votes / votes.sum(axis=1, keepdims=True)

    def predict(self, X: Any) -> np.ndarray:
        votes = self._votes(X)
        return self.classes_[np.argmax(votes, axis=1)]

    # ---- guarantee --------------------------------------------------------

    def guarantee(self) -> RetrievalGuarantee:
        """When this deletion is exact, in words."""
        require_fitted(self, "ids_")
        n = self.n_forgotten_
        base = (
            f"Exact datastore removal: after forgetting {n} {'entry' if n == 1 else 'entries'}, the datastore and "
            "therefore the predictions are identical, bit for bit, to a store built without those rows."
        )
        if self.encoder is None or self.encoder_saw_data is False:
            exact: bool | None = True
            why = (
                "The encoder is the identity" if self.encoder is None
                else "You declared that the encoder never saw these rows"
            )
            model = f" {why}, so the whole model is exact removal (epsilon=0, delta=0)."
        elif self.encoder_saw_data:
            exact = False
            model = (
                " The encoder was trained on the data, so only the datastore part is exact: the encoder's "
                "weights still carry whatever they learned from the deleted rows. Retrain or exactly unlearn "
                "the encoder to remove that too."
            )
        else:
            exact = None
            model = (
                " The whole model is exact removal only if the encoder never saw the deleted rows; that is "
                "unknown here (set encoder_saw_data=True/False). If it did, only the datastore part is exact."
            )
        caveat = (
            " Removal is not suppression: similar remaining rows may still produce the same prediction, and "
            "copies of the data outside this object (pickles, caches, the caller's arrays) are not touched."
        )
        return RetrievalGuarantee(
            exact_datastore=True,
            exact_model=exact,
            epsilon=0.0 if exact else None,
            delta=0.0 if exact else None,
            n_forgotten=self.n_forgotten_,
            statement=base + model + caveat,
        )
