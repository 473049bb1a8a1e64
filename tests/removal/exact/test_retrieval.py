"""Retrieval datastore: forget == fresh fit without the rows, bit for bit; typed errors; the guarantee."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.utils.estimator_checks import parametrize_with_checks

from obliviate.errors import ConfigError, DataError, ForgetSetError, NotFittedError, ShapeError
from obliviate.removal.exact.retrieval import KNNRetrievalClassifier


@pytest.fixture(autouse=True)
def _one_torch_thread():
    # Tiny matrices: intra-op threads only add contention (badly so on shared CI machines).
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _data(seed: int, n: int = 300, d: int = 10):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d))
    y = rng.integers(0, 4, n)
    X[:, 0] += y  # some signal
    return X, y, rng


def _torch_encoder() -> torch.nn.Module:
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(10, 16), torch.nn.Dropout(0.5), torch.nn.Tanh(), torch.nn.Linear(16, 6))


ENCODERS = {
    "identity": lambda: None,
    "torch": _torch_encoder,
    "function": lambda: (lambda batch: np.tanh(batch[:, :5] * 2.0)),
}


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("encoder", sorted(ENCODERS))
@pytest.mark.parametrize("metric, weights", [("cosine", "uniform"), ("euclidean", "distance")])
def test_forget_equals_fresh_fit_bit_for_bit(seed, encoder, metric, weights):
    X, y, rng = _data(seed)
    Q = rng.normal(size=(80, 10))
    ids = np.array([f"user-{i}" for i in range(len(X))])
    params = dict(k=7, metric=metric, weights=weights, batch_size=64)
    est = KNNRetrievalClassifier(ENCODERS[encoder](), **params).fit(X, y, ids=ids)
    gone = rng.choice(len(X), 40, replace=False)
    est.forget(ids[gone[:5]]).forget(ids[gone[5:]].tolist())
    keep = np.setdiff1d(np.arange(len(X)), gone)
    fresh = KNNRetrievalClassifier(ENCODERS[encoder](), **params).fit(X[keep], y[keep], ids=ids[keep])
    assert est.predict_proba(Q).tobytes() == fresh.predict_proba(Q).tobytes()
    assert est.predict(Q).tobytes() == fresh.predict(Q).tobytes()
    np.testing.assert_array_equal(est.ids_, fresh.ids_)
    assert est.n_forgotten_ == 40 and sorted(est.forgotten_ids_) == sorted(ids[gone].tolist())


def test_forgetting_a_whole_class_removes_it_like_a_fresh_fit():
    X, y, _ = _data(3)
    gone = np.flatnonzero(y == 2)
    est = KNNRetrievalClassifier(k=3).fit(X, y).forget(gone)
    fresh = KNNRetrievalClassifier(k=3).fit(X[y != 2], y[y != 2], ids=np.flatnonzero(y != 2))
    np.testing.assert_array_equal(est.classes_, [0, 1, 3])
    assert est.predict_proba(X).tobytes() == fresh.predict_proba(X).tobytes()


def test_k_larger_than_the_store_uses_every_row():
    X, y, _ = _data(4, n=10)
    est = KNNRetrievalClassifier(k=8, metric="euclidean").fit(X, y).forget(np.arange(5))
    proba = est.predict_proba(X[:2])
    np.testing.assert_allclose(proba, np.tile(np.bincount(y[5:], minlength=4)[est.classes_] / 5, (2, 1)))


def test_ties_go_to_the_row_stored_first():
    X = np.array([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    est = KNNRetrievalClassifier(k=1).fit(X, ["b", "a", "c"])
    assert est.predict([[2.0, 0.0]])[0] == "b"
    est.forget([0])
    assert est.predict([[2.0, 0.0]])[0] == "a"


def test_torch_encoder_is_frozen_and_its_mode_restored():
    X, y, _ = _data(5)
    enc = _torch_encoder()
    enc.train()
    before = [p.detach().clone() for p in enc.parameters()]
    est = KNNRetrievalClassifier(enc).fit(X, y)
    a = est.predict_proba(X[:20])
    b = est.predict_proba(X[:20])  # dropout is off during embedding, so this is deterministic
    assert a.tobytes() == b.tobytes()
    assert enc.training
    assert all(torch.equal(p, q) for p, q in zip(before, enc.parameters()))


def test_bad_forget_requests_raise():
    X, y, _ = _data(6, n=20)
    est = KNNRetrievalClassifier().fit(X, y, ids=[f"id{i}" for i in range(20)])
    with pytest.raises(ForgetSetError, match=r"not in the datastore: \['nobody'\]"):
        est.forget(["nobody"])
    est.forget(["id3"])
    with pytest.raises(ForgetSetError, match=r"Already forgotten: \['id3'\]"):
        est.forget(["id3"])
    with pytest.raises(ForgetSetError, match="duplicate"):
        est.forget(["id4", "id4"])
    with pytest.raises(ForgetSetError, match="non-empty"):
        est.forget([])
    with pytest.raises(ForgetSetError, match="every entry"):
        est.forget([f"id{i}" for i in range(20) if i != 3])
    assert est.n_forgotten_ == 1 and len(est.ids_) == 19


def test_bad_inputs_raise_typed_errors():
    X, y, _ = _data(7, n=20)
    with pytest.raises(DataError, match="unique"):
        KNNRetrievalClassifier().fit(X, y, ids=[0] * 20)
    with pytest.raises(ShapeError, match="one id per row"):
        KNNRetrievalClassifier().fit(X, y, ids=[1, 2])
    bad = X.copy()
    bad[0, 0] = np.nan
    with pytest.raises(DataError, match="NaN"):
        KNNRetrievalClassifier().fit(bad, y)
    with pytest.raises(ShapeError, match="embedding_dim"):
        KNNRetrievalClassifier(lambda b: b.sum(axis=1)).fit(X, y)
    with pytest.raises(DataError, match="NaN or infinite embeddings"):
        KNNRetrievalClassifier(lambda b: np.full_like(b, np.inf)).fit(X, y)
    est = KNNRetrievalClassifier().fit(X, y)
    with pytest.raises(ShapeError, match="features"):
        est.predict(X[:, :3])
    est = KNNRetrievalClassifier(lambda b: b[:, :2]).fit(X, y)
    with pytest.raises(ShapeError, match="fitted on rows of shape"):
        est.predict(X[:, :4])
    with pytest.raises(NotFittedError):
        KNNRetrievalClassifier().forget([0])
    with pytest.raises(ConfigError) as info:
        KNNRetrievalClassifier(k=0, metric="manhattan", weights="rank").fit(X, y)
    assert len(info.value.problems) == 3


def test_guarantee_depends_on_what_the_encoder_saw():
    X, y, _ = _data(8, n=30)
    g = KNNRetrievalClassifier().fit(X, y).forget([1]).guarantee()
    assert g.exact_datastore and g.exact_model and g.epsilon == 0.0 and "identity" in g.statement
    g = KNNRetrievalClassifier(_torch_encoder()).fit(X, y).guarantee()
    assert g.exact_model is None and "only if the encoder never saw the deleted rows" in g.statement
    g = KNNRetrievalClassifier(_torch_encoder(), encoder_saw_data=True).fit(X, y).guarantee()
    assert g.exact_model is False and g.epsilon is None and "only the datastore part is exact" in g.statement
    g = KNNRetrievalClassifier(_torch_encoder(), encoder_saw_data=False).fit(X, y).guarantee()
    assert g.exact_model is True and "bit for bit" in g.statement


@parametrize_with_checks(
    [KNNRetrievalClassifier(), KNNRetrievalClassifier(metric="euclidean", weights="distance")]
)
def test_sklearn_conformance(estimator, check):
    check(estimator)
