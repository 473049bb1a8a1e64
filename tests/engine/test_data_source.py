"""DataSource: one serialisable value for built-in or user data, as a SISA store records it."""

import json

import numpy as np
import pandas as pd
import pytest

from obliviate.data.images import ImageFolderConfig
from obliviate.data.source import DataSource, encode_rows
from obliviate.data.tabular import TabularConfig
from obliviate.errors import ConfigError, DataError


@pytest.fixture
def table(tmp_path):
    rng = np.random.default_rng(1)
    n = 60
    frame = pd.DataFrame({"uid": [f"u{i}" for i in range(n)], "x": rng.normal(size=n),
                          "kind": rng.choice(["a", "b"], n), "y": rng.choice(["no", "yes"], n)})
    path = tmp_path / "t.csv"
    frame.to_csv(path, index=False)
    return path, frame


def test_builtin_round_trip_and_subset(digits):
    src = DataSource(dataset="digits", train_subset=100, subset_seed=2)
    again = DataSource.from_dict(json.loads(json.dumps(src.to_dict())))
    assert again == src and again.fingerprint() == src.fingerprint()
    bundle = src.load()
    assert len(bundle.train) == 100 and len(bundle.test) == len(digits.test)
    assert bundle.train.fingerprint == again.load().train.fingerprint  # same seed, same subset
    assert DataSource.from_dict({"dataset": "digits", "data_dir": None}) == DataSource(dataset="digits")


def test_table_round_trip_schema_and_fingerprint(table):
    path, frame = table
    src = DataSource(data=TabularConfig(path=str(path), label_column="y", id_column="uid"))
    again = DataSource.from_dict(json.loads(json.dumps(src.to_dict())))
    assert again == src
    loaded = src.open()
    assert loaded.schema["label_column"] == "y" and len(loaded.bundle.train) + len(loaded.bundle.test) == 60
    before = src.fingerprint()
    frame.iloc[:59].to_csv(path, index=False)
    assert src.fingerprint() != before  # a changed file is noticed


def test_encode_rows_refuses_nan_rows_by_number(table, tmp_path):
    path, frame = table
    src = DataSource(data=TabularConfig(path=str(path), label_column="y", id_column="uid"))
    schema = src.open().schema
    rows = tmp_path / "rows.csv"
    frame.drop(columns=["y"]).iloc[:5].to_csv(rows, index=False)
    enc = encode_rows(rows, schema)
    assert enc.x.shape[0] == 5 and enc.y is None and enc.ids.tolist()[0] == "u0"
    bad = frame.iloc[:6].copy()
    bad["x"] = bad["x"].astype(object)
    bad.loc[2, "x"] = np.nan
    bad.loc[4, "x"] = "oops"
    bad.to_csv(rows, index=False)
    with pytest.raises(DataError, match=r"rows 2, 4 \(rows count data rows from 0"):
        encode_rows(rows, schema)
    frame.drop(columns=["x"]).to_csv(rows, index=False)
    with pytest.raises(DataError, match="lacks the feature column"):
        encode_rows(rows, schema)


def test_bad_sources_are_refused_with_every_problem(tmp_path):
    with pytest.raises(ConfigError) as err:
        DataSource(train_subset=1, subset_seed=-1)
    text = str(err.value)
    assert "exactly one of" in text and "train_subset" in text and "subset_seed" in text
    with pytest.raises(ConfigError, match="exactly one of"):
        DataSource(dataset="digits", data=ImageFolderConfig(path=str(tmp_path)))
    with pytest.raises(ConfigError, match="Unknown data source key"):
        DataSource.from_dict({"dataset": "digits", "path": "x"})
    with pytest.raises(ConfigError, match="Unknown data kind"):
        DataSource.from_dict({"data": {"kind": "audio", "path": "x"}})
