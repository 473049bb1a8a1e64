import numpy as np
import pandas as pd
import pytest

from obliviate.data import TabularConfig, TabularSchema, load_tabular, split_forget
from obliviate.data.tabular import stratified_split
from obliviate.errors import ConfigError, DataError, DatasetNotFoundError


def people(n=60, seed=0):
    """Mixed numeric and categorical columns, a row id, a person (subject) and a text label."""
    rng = np.random.default_rng(seed)
    return pd.DataFrame({
        "row_id": [f"r{i:03d}" for i in range(n)],
        "person": [f"p{i % 12}" for i in range(n)],
        "age": rng.integers(18, 80, n),
        "income": rng.normal(50_000, 9_000, n).round(2),
        "plan": rng.choice(["basic", "plus", "pro"], n),
        "region": rng.choice([1, 2, 3], n),  # numeric codes that mean categories
        "churn": rng.choice(["no", "yes"], n),
    })


SCHEMA = dict(label_column="churn", id_column="row_id", subject_column="person", categorical_columns=["region"])


@pytest.fixture
def csv(tmp_path):
    path = tmp_path / "people.csv"
    people().to_csv(path, index=False)
    return path


def test_csv_parquet_and_npz_load_alike(tmp_path, csv):
    frame = people()
    frame.to_parquet(tmp_path / "people.parquet")
    a = load_tabular(csv, **SCHEMA)
    b = load_tabular(tmp_path / "people.parquet", **SCHEMA)
    assert np.array_equal(a.bundle.train.x, b.bundle.train.x) and np.array_equal(a.bundle.test.ids, b.bundle.test.ids)
    assert a.schema.classes == ["no", "yes"]
    assert a.schema.encoder.feature_names_ == ["age", "income", "plan=basic", "plan=plus", "plan=pro",
                                               "region=1", "region=2", "region=3"]
    assert set(a.bundle.train.subjects) <= {f"p{i}" for i in range(12)}
    assert len(a.bundle.train) + len(a.bundle.test) == 60 and not set(a.bundle.train.ids) & set(a.bundle.test.ids)

    x = a.schema.encoder.transform(frame)
    np.savez(tmp_path / "people.npz", x=x, y=(frame["churn"] == "yes").to_numpy().astype(int),
             ids=frame["row_id"].to_numpy(dtype=str), subjects=frame["person"].to_numpy(dtype=str))
    c = load_tabular(tmp_path / "people.npz")
    assert c.bundle.train.input_shape == (8,) and c.schema.classes == ["0", "1"]
    assert c.bundle.train.ids[0].startswith("r") and c.bundle.train.subjects[0].startswith("p")


def test_standardisation_uses_training_rows_only(tmp_path, csv):
    d = load_tabular(csv, **SCHEMA)
    train_rows = people().set_index("row_id").loc[d.bundle.train.ids]
    enc = d.schema.encoder
    assert enc.means_["age"] == pytest.approx(train_rows["age"].mean())
    assert enc.stds_["income"] == pytest.approx(train_rows["income"].std(ddof=0))
    assert np.allclose(d.bundle.train.x[:, :2].mean(0), 0, atol=1e-5)
    assert np.allclose(d.bundle.train.x[:, :2].std(0), 1, atol=1e-4)
    # test rows are scaled with the training statistics, so their mean is not forced to 0
    assert not np.allclose(d.bundle.test.x[:, :2].mean(0), 0, atol=1e-3)
    everything = people()
    assert enc.means_["age"] != pytest.approx(everything["age"].mean())


def test_separate_test_file_and_schema_round_trip(tmp_path):
    frame = people(80)
    frame.iloc[:60].to_csv(tmp_path / "train.csv", index=False)
    test = frame.iloc[60:].copy()
    test.loc[test.index[0], "plan"] = "enterprise"  # a category training never saw
    test.to_csv(tmp_path / "test.csv", index=False)
    d = load_tabular(tmp_path / "train.csv", test_path=str(tmp_path / "test.csv"), **SCHEMA)
    assert len(d.bundle.train) == 60 and len(d.bundle.test) == 20
    assert d.schema.encoder.means_["age"] == pytest.approx(frame.iloc[:60]["age"].mean())
    plan = [i for i, n in enumerate(d.schema.encoder.feature_names_) if n.startswith("plan=")]
    assert d.bundle.test.x[0, plan].sum() == 0  # unseen category: all-zero one-hot
    saved = TabularSchema.load(d.schema.save(tmp_path / "schema.json"))
    again = saved.dataset(test, name="again")
    assert np.array_equal(again.x, d.bundle.test.x) and np.array_equal(again.y, d.bundle.test.y)


def test_default_ids_are_row_numbers_and_ordinal_encoding(csv):
    d = load_tabular(csv, label_column="churn", feature_columns=["age", "plan"], encoding="ordinal")
    assert sorted(map(int, np.concatenate([d.bundle.train.ids, d.bundle.test.ids]))) == list(range(60))
    assert d.schema.encoder.feature_names_ == ["age", "plan"]
    assert set(np.unique(d.bundle.train.x[:, 1])) <= {0.0, 1.0, 2.0}


def test_integer_labels_kept_and_split_is_seeded_and_stratified(tmp_path):
    frame = people(100).assign(churn=lambda f: (np.arange(len(f)) % 4 == 0).astype(int))
    frame.to_csv(tmp_path / "ints.csv", index=False)
    a = load_tabular(tmp_path / "ints.csv", label_column="churn", seed=3)
    b = load_tabular(tmp_path / "ints.csv", label_column="churn", seed=3)
    assert a.schema.classes == ["0", "1"] and np.array_equal(a.bundle.test.ids, b.bundle.test.ids)
    assert a.bundle.test.y.mean() == pytest.approx(0.25)
    assert not np.array_equal(load_tabular(tmp_path / "ints.csv", label_column="churn", seed=4).bundle.test.ids,
                              a.bundle.test.ids)
    tr, te = stratified_split(np.array([0, 0, 0, 0, 1]), 0.4, 0)
    assert 4 not in te and len(te) == 2  # a class of one stays in training


def test_forget_one_subject(csv):
    d = load_tabular(csv, **SCHEMA)
    split = split_forget(d.bundle.train, "subjects:p3")
    assert set(split.forget.subjects) == {"p3"} and "p3" not in set(split.retain.subjects)


# --- every bad input is a typed error naming the file, row or column ----------------------

def test_malformed_csv(tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("a,b,label\n1,2,0\n3,4,5,6,7\n")
    with pytest.raises(DataError, match=r"bad\.csv.*(fields|line)"):
        load_tabular(bad)
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    with pytest.raises(DataError, match="empty"):
        load_tabular(empty)


def test_not_parquet_and_missing_file_and_unknown_suffix(tmp_path):
    fake = tmp_path / "fake.parquet"
    fake.write_text("not parquet at all")
    with pytest.raises(DataError, match="fake.parquet.*Parquet"):
        load_tabular(fake)
    with pytest.raises(DatasetNotFoundError, match="nope.csv"):
        load_tabular(tmp_path / "nope.csv")
    (tmp_path / "data.xlsx").write_text("x")
    with pytest.raises(ConfigError, match=r"\.csv"):
        load_tabular(tmp_path / "data.xlsx")


def test_npz_without_expected_arrays(tmp_path):
    np.savez(tmp_path / "wrong.npz", features=np.zeros((3, 2)), y=np.zeros(3))
    with pytest.raises(DataError, match=r"wrong\.npz lacks the array\(s\) x.*holds features, y"):
        load_tabular(tmp_path / "wrong.npz")
    (tmp_path / "junk.npz").write_bytes(b"junk")
    with pytest.raises(DataError, match="junk.npz"):
        load_tabular(tmp_path / "junk.npz")


def test_missing_column_lists_available_and_nearest(csv):
    with pytest.raises(ConfigError) as err:
        load_tabular(csv, label_column="chrun", subject_column="persn")
    msg = str(err.value)
    assert "people.csv" in msg and "available: row_id, person, age" in msg
    assert "did you mean 'churn'" in msg and "did you mean 'person'" in msg  # both problems at once


def test_unmappable_label(tmp_path):
    frame = people()
    frame["churn"] = frame["churn"].astype(object)
    frame.loc[7, "churn"] = None
    frame.to_csv(tmp_path / "nanlabel.csv", index=False)
    with pytest.raises(DataError, match=r"nanlabel\.csv.*'churn'.*row\(s\): 7"):
        load_tabular(tmp_path / "nanlabel.csv", label_column="churn")
    frame = people().assign(score=np.linspace(0, 1, 60))
    frame.to_csv(tmp_path / "regression.csv", index=False)
    with pytest.raises(DataError, match="row 1 .*not a class"):
        load_tabular(tmp_path / "regression.csv", label_column="score")


def test_unknown_label_in_test_file(tmp_path):
    frame = people(80)
    frame.iloc[:60].to_csv(tmp_path / "train.csv", index=False)
    test = frame.iloc[60:].copy()
    test.loc[test.index[2], "churn"] = "maybe"
    test.to_csv(tmp_path / "test.csv", index=False)
    with pytest.raises(DataError, match=r"test\.csv: label 'maybe' in row 2"):
        load_tabular(tmp_path / "train.csv", test_path=str(tmp_path / "test.csv"), **SCHEMA)


def test_nan_feature_names_file_column_rows_and_fix(tmp_path):
    frame = people()
    frame["income"] = frame["income"].astype(float)
    frame.loc[[4, 9], "income"] = np.nan
    frame.loc[2, "plan"] = None
    frame.to_csv(tmp_path / "holes.csv", index=False)
    with pytest.raises(DataError) as err:
        load_tabular(tmp_path / "holes.csv", **SCHEMA)
    msg = str(err.value)
    assert "holes.csv" in msg and "'income'" in msg and "4, 9" in msg and "'plan'" in msg
    assert "Impute" in msg and "drop" in msg


def test_duplicate_ids_name_id_and_rows(tmp_path):
    frame = people()
    frame.loc[17, "row_id"] = "r005"
    frame.to_csv(tmp_path / "dups.csv", index=False)
    with pytest.raises(DataError, match=r"dups\.csv: id 'r005' occurs in rows 5, 17"):
        load_tabular(tmp_path / "dups.csv", **SCHEMA)


def test_config_rejects_unknown_keys_and_bad_values():
    from obliviate.config import validate

    with pytest.raises(ConfigError, match="did you mean 'label_column'"):
        validate(TabularConfig, {"path": "x.csv", "lable_column": "y"})
    with pytest.raises(ConfigError, match="test_fraction"):
        validate(TabularConfig, {"path": "x.csv", "test_fraction": 1.5})
    assert TabularConfig(path="x.csv", categorical_columns="a, b").categorical_columns == ["a", "b"]


# --- labels are mapped to 0..K-1 and keep their names ---------------------------------------

def test_huge_integer_label_is_a_class_not_a_model_size(tmp_path):
    frame = people().assign(churn=lambda f: np.where(np.arange(len(f)) % 2, 2_000_000_000, 0))
    frame.to_csv(tmp_path / "huge.csv", index=False)
    d = load_tabular(tmp_path / "huge.csv", label_column="churn")
    assert d.schema.classes == ["0", "2000000000"] and d.bundle.n_classes == 2
    assert d.bundle.train.classes == ("0", "2000000000")


def test_labels_one_to_thirty_make_thirty_classes_named_by_label(tmp_path):
    frame = people(90).assign(grade=lambda f: np.arange(len(f)) % 30 + 1)
    frame.to_csv(tmp_path / "grades.csv", index=False)
    d = load_tabular(tmp_path / "grades.csv", label_column="grade", seed=1)
    assert d.bundle.n_classes == 30 and d.schema.classes == [str(i) for i in range(1, 31)]
    assert np.bincount(d.bundle.train.y, minlength=30).min() > 0  # no empty class 0
    split = split_forget(d.bundle.train, "class:30")  # by the user's label name
    raw = people(90).assign(grade=lambda f: np.arange(len(f)) % 30 + 1)["grade"].to_numpy()
    assert set(raw[split.forget.ids.astype(int)]) == {30}


def test_negative_and_text_labels_keep_their_names(tmp_path):
    people().assign(churn=lambda f: np.where(f["churn"] == "yes", 1, -1)).to_csv(tmp_path / "pm.csv", index=False)
    assert load_tabular(tmp_path / "pm.csv", label_column="churn").schema.classes == ["-1", "1"]
    assert load_tabular(tmp_path / "pm.csv", label_column="plan").bundle.train.classes == ("basic", "plus", "pro")


def test_integer_label_only_in_test_file_is_a_class(tmp_path):
    frame = people(80).assign(churn=lambda f: np.arange(len(f)) % 2 + 1)
    frame.iloc[:60].to_csv(tmp_path / "train.csv", index=False)
    test = frame.iloc[60:].copy()
    test.loc[test.index[0], "churn"] = 7
    test.to_csv(tmp_path / "test.csv", index=False)
    d = load_tabular(tmp_path / "train.csv", test_path=str(tmp_path / "test.csv"), **SCHEMA)
    assert d.schema.classes == ["1", "2", "7"] and d.bundle.test.y[0] == 2


def test_single_class_training_data_is_refused(tmp_path):
    people().assign(churn="yes").to_csv(tmp_path / "one.csv", index=False)
    with pytest.raises(DataError, match=r"one\.csv: every row has the label 'yes' in 'churn'.*two classes"):
        load_tabular(tmp_path / "one.csv", **SCHEMA)


# --- missing-value markers, counts and typos --------------------------------------------------

def adult_like(tmp_path):
    """Adult's style: ', ' separated, '?' for missing, in a text and in a numeric column."""
    frame = people()
    frame["age"] = frame["age"].astype(object)
    frame.loc[[3, 8], "age"] = " ?"
    frame.loc[[1, 2, 5], "plan"] = " ?"
    path = tmp_path / "adult.csv"
    frame.to_csv(path, index=False)
    return path


def test_na_values_mark_missing_cells_instead_of_a_category(tmp_path):
    path = adult_like(tmp_path)
    with pytest.raises(DataError) as err:
        load_tabular(path, na_values=["?"], **SCHEMA)
    msg = str(err.value)
    assert "'age': 2 missing" in msg and "3, 8" in msg and "'plan': 3 missing" in msg and "missing='impute'" in msg
    d = load_tabular(path, na_values="?", missing="impute", **SCHEMA)
    names = d.schema.encoder.feature_names_
    assert "age" in d.schema.encoder.numeric and not any("?" in n for n in names)
    assert d.schema.missing == {"age": 2, "income": 0, "plan": 3, "region": 0}
    assert d.to_dict()["missing"]["plan"] == 3 and d.to_dict()["schema"]["missing"]["age"] == 2
    assert np.isfinite(d.bundle.train.x).all()
    rows = {i: k for k, i in enumerate(np.concatenate([d.bundle.train.ids, d.bundle.test.ids]))}
    x = np.concatenate([d.bundle.train.x, d.bundle.test.x])
    plan = [j for j, n in enumerate(names) if n.startswith("plan=")]
    assert x[rows["r001"], plan].sum() == 0 and x[rows["r003"], names.index("age")] == 0.0  # no category; the mean
    saved = TabularSchema.load(d.schema.save(tmp_path / "schema.json"))
    assert saved.missing == d.schema.missing and saved.encoder.missing == "impute"


def test_numeric_column_with_a_typo_is_refused_with_rows_and_values(tmp_path):
    frame = people()
    frame["income"] = frame["income"].astype(object)
    frame.loc[11, "income"] = "5O000"  # letter O
    frame.to_csv(tmp_path / "typo.csv", index=False)
    with pytest.raises(DataError) as err:
        load_tabular(tmp_path / "typo.csv", **SCHEMA)
    msg = str(err.value)
    assert "typo.csv" in msg and "'income'" in msg and "row 11 '5O000'" in msg
    assert "categorical_columns=['income']" in msg and "na_values" in msg
    # declared categorical, it is the user's choice
    d = load_tabular(tmp_path / "typo.csv", **{**SCHEMA, "categorical_columns": ["region", "income"]})
    assert "income" in d.schema.encoder.categorical
    only_plan = {**SCHEMA, "feature_columns": ["plan"], "categorical_columns": []}
    assert load_tabular(tmp_path / "typo.csv", **only_plan).schema.encoder.categorical == ["plan"]  # not a feature


def test_typo_in_the_test_file_names_rows_and_values(tmp_path):
    frame = people(80)
    frame.iloc[:60].to_csv(tmp_path / "train.csv", index=False)
    test = frame.iloc[60:].copy()
    test["age"] = test["age"].astype(object)
    test.loc[test.index[4], "age"] = "forty"
    test.to_csv(tmp_path / "test.csv", index=False)
    with pytest.raises(DataError, match=r"(?s)test\.csv.*'age' is numeric in the training data.*row 4 'forty'"):
        load_tabular(tmp_path / "train.csv", test_path=str(tmp_path / "test.csv"), **SCHEMA)


def test_encoder_never_returns_nan(csv):
    d = load_tabular(csv, **SCHEMA)
    rows = people().head(3).astype({"income": float})
    rows.loc[1, "income"] = np.nan
    with pytest.raises(DataError, match=r"'income'.*missing.*rows 1"):
        d.schema.encoder.transform(rows)
    rows.loc[1, "income"] = 1e300  # finite, but far beyond float32 once standardised
    with pytest.raises(DataError, match=r"'income'.*non-finite.*rows 1"):
        d.schema.encoder.transform(rows)


def test_npz_bytes_and_complex_arrays(tmp_path):
    """Found by the property tests: bytes ids were a UnicodeDecodeError; complex labels lost their imaginary part."""
    x, y = np.random.default_rng(0).normal(size=(8, 2)), np.array([b"no", b"yes"] * 4)
    np.savez(tmp_path / "bytes.npz", x=x, y=y)
    assert load_tabular(tmp_path / "bytes.npz").schema.classes == ["no", "yes"]
    np.savez(tmp_path / "badids.npz", x=x, y=np.arange(8) % 2, ids=np.array([b"\x80"] * 8, dtype="S2"))
    with pytest.raises(DataError, match=r"badids\.npz: ids holds bytes that are not UTF-8"):
        load_tabular(tmp_path / "badids.npz")
    np.savez(tmp_path / "complex.npz", x=x, y=(np.arange(8) % 2).astype(complex))
    with pytest.raises(DataError, match="complex"):
        load_tabular(tmp_path / "complex.npz")
    np.savez(tmp_path / "complexx.npz", x=x.astype(complex), y=np.arange(8) % 2)
    with pytest.raises(DataError, match="x is complex"):
        load_tabular(tmp_path / "complexx.npz")


def test_a_split_never_leaves_the_training_part_empty(tmp_path):
    """Found by the property tests: one row per class fell back to a split that held out every row."""
    pd.DataFrame({"c0": [0.0, 1.0], "label": [0, 1]}).to_csv(tmp_path / "two.csv", index=False)
    with pytest.raises(DataError, match=r"each of the 2 classes has a single example.*test_path"):
        load_tabular(tmp_path / "two.csv", test_fraction=0.75)
    from obliviate.data.dataset import seeded_split

    assert [len(part) for part in seeded_split(2, 0.75, 0)] == [1, 1]
