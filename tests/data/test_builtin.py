import gzip

import numpy as np
import pytest

from obliviate.data import load_dataset
from obliviate.data.idx import read_idx
from obliviate.errors import DataError, DatasetNotFoundError, UnknownNameError


def test_digits_has_stable_ids_and_fixed_split():
    a, b = load_dataset("digits"), load_dataset("digits")
    assert len(a.train) + len(a.test) == 1797
    assert a.train.input_shape == (1, 8, 8)
    assert np.array_equal(a.train.ids, b.train.ids)
    assert not set(a.train.ids) & set(a.test.ids)
    assert 0.0 <= a.train.x.min() and a.train.x.max() <= 1.0


def test_mnist1d_is_generated_locally():
    b = load_dataset("mnist1d")
    assert b.train.input_shape == (1, 40)
    assert len(b.train) == 4000 and len(b.test) == 1000
    assert b.n_classes == 10


@pytest.mark.parametrize("name", ["mnist", "fashion-mnist"])
def test_idx_datasets_load_from_data_dir(name, shared_data):
    b = load_dataset(name, data_dir=shared_data)
    assert len(b.train) == 60000 and len(b.test) == 10000
    assert b.train.input_shape == (1, 28, 28)
    assert set(np.unique(b.train.y)) == set(range(10))


def test_env_var_is_searched(shared_data, monkeypatch):
    monkeypatch.setenv("OBLIVIATE_DATA", str(shared_data))
    assert len(load_dataset("mnist").test) == 10000


def test_missing_files_error_names_every_place(tmp_path, monkeypatch):
    monkeypatch.setenv("OBLIVIATE_DATA", str(tmp_path / "env"))
    with pytest.raises(DatasetNotFoundError) as exc:
        load_dataset("fashion-mnist", data_dir=tmp_path / "given")
    msg = str(exc.value)
    for place in ("given", "env", "--data-dir"):
        assert place in msg
    assert len(exc.value.searched) >= 4


def test_unknown_dataset_suggests_nearest():
    with pytest.raises(UnknownNameError, match="fashion-mnist"):
        load_dataset("fashion_mnist")


def test_idx_reader_checks_header_and_length(tmp_path):
    good = tmp_path / "x-idx1-ubyte.gz"
    with gzip.open(good, "wb") as fh:
        fh.write(bytes([0, 0, 8, 1]) + (3).to_bytes(4, "big") + bytes([7, 8, 9]))
    assert list(read_idx(good)) == [7, 8, 9]
    bad = tmp_path / "bad.gz"
    with gzip.open(bad, "wb") as fh:
        fh.write(bytes([0, 0, 8, 1]) + (5).to_bytes(4, "big") + bytes([7, 8, 9]))
    with pytest.raises(DataError, match="truncated"):
        read_idx(bad)
    junk = tmp_path / "junk"
    junk.write_bytes(b"hello world")
    with pytest.raises(DataError, match="magic"):
        read_idx(junk)
