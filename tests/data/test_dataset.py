import numpy as np
import pytest

from obliviate.data import ArrayDataset
from obliviate.errors import DataError, ForgetSetError, ShapeError


def make(n=10, **kw):
    rng = np.random.default_rng(0)
    args = dict(x=rng.normal(size=(n, 3)).astype(np.float32), y=np.arange(n) % 2, ids=np.arange(n))
    args.update(kw)
    return ArrayDataset(**args)


def test_ids_become_strings_and_positions_resolve():
    d = make()
    assert d.ids.dtype.kind == "U"
    assert list(d.positions([3, "7"])) == [3, 7]


def test_unknown_ids_name_the_missing_ones():
    with pytest.raises(ForgetSetError, match="99"):
        make().positions([1, 99])


def test_duplicate_ids_rejected():
    with pytest.raises(DataError, match="unique"):
        make(ids=np.array([0, 1, 1, 3, 4, 5, 6, 7, 8, 9]))


def test_nan_features_rejected_with_row_ids():
    x = np.zeros((10, 3), dtype=np.float32)
    x[4, 1] = np.nan
    with pytest.raises(DataError, match="NaN.*4"):
        make(x=x)


def test_shape_mismatch_rejected():
    with pytest.raises(ShapeError, match="labels"):
        make(y=np.zeros(9, dtype=int))
    with pytest.raises(ShapeError, match="features"):
        ArrayDataset(x=np.zeros(10), y=np.zeros(10, dtype=int), ids=np.arange(10))


def test_float_labels_must_be_integral():
    with pytest.raises(DataError, match="integer"):
        make(y=np.linspace(0, 1, 10))


def test_subset_keeps_ids_and_subjects_and_fingerprint_changes():
    d = make(subjects=np.array(list("aabbccddee")))
    s = d.subset(np.array([0, 2, 4]))
    assert list(s.ids) == ["0", "2", "4"] and list(s.subjects) == ["a", "b", "c"]
    assert s.n_classes == d.n_classes
    assert s.fingerprint != d.fingerprint
    assert make().fingerprint == make().fingerprint


def test_sparse_labels_are_refused_not_turned_into_a_huge_model():
    with pytest.raises(DataError, match=r"largest label is 2000000000 for 10 examples.*np\.unique"):
        make(y=np.where(np.arange(10) % 2, 2_000_000_000, 0))
    assert make(y=np.where(np.arange(10) % 2, 2_000_000_000, 0), n_classes_=2_000_000_001).n_classes > 10**9


def test_labels_beyond_the_declared_classes_are_refused():
    with pytest.raises(DataError, match=r"label 2 is out of range for 2 classes"):
        make(y=np.arange(10) % 3, classes=("a", "b"))


def test_single_class_training_split_is_refused():
    from obliviate.data import DataBundle

    train = make(y=np.zeros(10, dtype=int), classes=("cat", "dog"))
    test = make(ids=np.arange(10, 20))
    with pytest.raises(DataError, match=r"all 10 training examples have the same label \('cat'\).*two classes"):
        DataBundle(train=train, test=test, name="pets")
    assert DataBundle(train=make(), test=test, name="ok").n_classes == 2
