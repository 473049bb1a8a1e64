"""``obliviate bench`` on the user's own table, image folder, model factory and weights."""

import json
import textwrap

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image
from safetensors.torch import save_file
from typer.testing import CliRunner

from obliviate.cli.main import app
from obliviate.data import load_tabular

runner = CliRunner()
FAST = ["--no-progress", "--epochs", "2", "--methods", "finetune", "--seeds", "1"]


@pytest.fixture
def table(tmp_path):
    rng = np.random.default_rng(0)
    n = 120
    age = rng.integers(18, 80, n)
    plan = rng.choice(["basic", "plus", "pro"], n)
    frame = pd.DataFrame({
        "row_id": [f"r{i:03d}" for i in range(n)], "person": [f"p{i % 15}" for i in range(n)],
        "age": age, "plan": plan, "region": rng.choice([1, 2], n),
        "churn": np.where((age < 40) ^ (plan == "pro"), "yes", "no"),
    })
    path = tmp_path / "people.csv"
    frame.to_csv(path, index=False)
    return path


SCHEMA = ["--label-column", "churn", "--id-column", "row_id", "--subject-column", "person",
          "--categorical", "region"]


@pytest.fixture
def user_model(tmp_path, monkeypatch):
    """A model factory in a module the test writes, importable as user_churn_models:tiny."""
    (tmp_path / "user_churn_models.py").write_text(textwrap.dedent("""
        import math
        from torch import nn

        def tiny(input_shape, n_classes, width=8):
            return nn.Sequential(nn.Flatten(), nn.Linear(math.prod(input_shape), width), nn.ReLU(),
                                 nn.Linear(width, n_classes))
    """))
    monkeypatch.syspath_prepend(str(tmp_path))
    import user_churn_models

    return user_churn_models


def test_forget_one_subject_end_to_end_with_user_model(table, user_model, tmp_path):
    out = tmp_path / "run"
    res = runner.invoke(app, ["bench", "--data", str(table), *SCHEMA, "--forget", "subjects:p3",
                              "--model", "user_churn_models:tiny", "--out", str(out), *FAST])
    assert res.exit_code == 0, res.output
    records = json.loads((out / "results.json").read_text())
    assert {r["method"] for r in records} == {"original", "retrain", "finetune"}
    meta = json.loads((out / "meta.json").read_text())
    train = load_tabular(table, label_column="churn", id_column="row_id", subject_column="person",
                         categorical_columns=["region"]).bundle.train
    assert meta["seeds"]["0"]["n_forget"] == int((train.subjects == "p3").sum()) > 0  # p3's training rows
    assert meta["n_train"] + meta["n_test"] == len(pd.read_csv(table))
    assert meta["data"]["schema"]["classes"] == ["no", "yes"]
    assert "region=1" in meta["data"]["schema"]["encoder"]["feature_names"]
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["dataset"] == "custom" and cfg["data"]["subject_column"] == "person"
    assert cfg["data"]["categorical_columns"] == ["region"]


def test_config_file_data_section_and_flag_override(table, tmp_path):
    cfg = tmp_path / "run.yaml"
    cfg.write_text(f"data:\n  kind: tabular\n  path: {table}\n  label_column: churn\n  id_column: row_id\n"
                   "methods: [finetune]\nprogress: false\n")
    # the flag wins over the file (and fails fast, so no training is needed to see it)
    res = runner.invoke(app, ["bench", "--config", str(cfg), "--label-column", "plna"])
    assert res.exit_code == 2 and "label_column 'plna'" in res.output and "did you mean 'plan'" in res.output
    res = runner.invoke(app, ["bench", "--config", str(cfg), "--id-column", "person"])
    assert res.exit_code == 2 and "id 'p0' occurs in rows 0, 15" in res.output


def test_image_folder_through_the_cli(tmp_path):
    rng = np.random.default_rng(0)
    for k, c in enumerate(["dark", "light"]):
        (tmp_path / "imgs" / c).mkdir(parents=True)
        for i in range(6):
            Image.fromarray(rng.integers(k * 128, k * 128 + 120, (9, 9), dtype=np.uint8)).save(
                tmp_path / "imgs" / c / f"{i}.png")
    out = tmp_path / "img-run"
    res = runner.invoke(app, ["bench", "--data", str(tmp_path / "imgs"), "--forget", "class:dark",
                              "--test-fraction", "0.25", "--out", str(out), *FAST])
    assert res.exit_code == 0, res.output
    meta = json.loads((out / "meta.json").read_text())
    assert meta["data"]["classes"] == ["dark", "light"] and meta["n_test"] == 4


def test_model_weights_replace_training_the_original(table, user_model, tmp_path):
    bundle = load_tabular(table, label_column="churn", id_column="row_id", subject_column="person",
                          categorical_columns=["region"]).bundle
    torch.manual_seed(0)
    model = user_model.tiny(bundle.train.input_shape, 2)
    weights = tmp_path / "mine.safetensors"
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(weights))
    out = tmp_path / "w"
    res = runner.invoke(app, ["bench", "--data", str(table), *SCHEMA, "--forget", "subjects:p1",
                              "--model", "user_churn_models:tiny", "--model-weights", str(weights),
                              "--out", str(out), *FAST])
    assert res.exit_code == 0, res.output
    meta = json.loads((out / "meta.json").read_text())
    assert meta["seeds"]["0"]["original_train_s"] == 0.0
    with torch.no_grad():
        expected = (model(torch.from_numpy(bundle.test.x)).argmax(1).numpy() == bundle.test.y).mean()
    original = next(r for r in json.loads((out / "results.json").read_text()) if r["method"] == "original")
    assert original["test_acc"] == pytest.approx(expected)


def test_corrupt_and_wrong_shape_weights_are_clean_errors(table, user_model, tmp_path):
    corrupt = tmp_path / "corrupt.safetensors"
    corrupt.write_bytes(b"\x00garbage" * 10)
    wrong = tmp_path / "wrong.safetensors"
    save_file({k: v.contiguous() for k, v in user_model.tiny((9,), 2, width=4).state_dict().items()}, str(wrong))
    base = ["bench", "--data", str(table), *SCHEMA, "--model", "user_churn_models:tiny", "--out",
            str(tmp_path / "x"), *FAST]
    res = runner.invoke(app, [*base, "--model-weights", str(corrupt)])
    assert res.exit_code == 2 and "corrupt.safetensors" in res.output and "corrupt" in res.output
    res = runner.invoke(app, [*base, "--model-weights", str(wrong)])
    assert res.exit_code == 2 and "shape mismatch" in res.output and "Traceback" not in res.output


@pytest.mark.parametrize("args,message", [
    (["--label-column", "churn"], "add --data"),
    (["--data", "{table}", "--label-column", "chrun"], "did you mean 'churn'"),
    (["--data", "{table}", "--dataset", "digits"], "not both"),
    (["--data", "{table}", "--label-column", "churn", "--forget", "subjects:p1"], "no subject column"),
    (["--data", "{missing}"], "does not exist"),
])
def test_bad_user_data_gives_clean_error(args, message, table, tmp_path):
    args = [a.format(table=table, missing=tmp_path / "missing.csv") for a in args]
    res = runner.invoke(app, ["bench", *FAST, "--out", str(tmp_path / "o"), *args])
    assert res.exit_code == 2, res.output
    assert message in res.output and "Traceback" not in res.output


def test_unknown_key_in_data_section_names_nearest(table, tmp_path):
    cfg = tmp_path / "run.toml"
    cfg.write_text(f'[data]\npath = "{table}"\nlable_column = "churn"\n')
    res = runner.invoke(app, ["bench", "--config", str(cfg), "--no-progress"])
    assert res.exit_code == 2 and "did you mean 'label_column'" in res.output


def test_missing_markers_and_integer_label_names(tmp_path):
    """--na-values/--missing reach the loader, and class:NAME with labels 1..3 names a label, not an index."""
    rng = np.random.default_rng(1)
    n = 90
    frame = pd.DataFrame({"x": rng.normal(size=n).round(3).astype(str), "grade": rng.integers(1, 4, n)})
    frame.loc[[4, 9], "x"] = "?"
    path = tmp_path / "graded.csv"
    frame.to_csv(path, index=False)
    base = ["bench", "--data", str(path), "--label-column", "grade", *FAST]
    refused = runner.invoke(app, [*base, "--na-values", "?", "--out", str(tmp_path / "a")])
    assert refused.exit_code == 2 and "missing" in refused.output and "'x'" in refused.output
    out = tmp_path / "b"
    ok = runner.invoke(app, [*base, "--na-values", "?", "--missing", "impute", "--forget", "class:1",
                             "--out", str(out)])
    assert ok.exit_code == 0, ok.output
    meta = json.loads((out / "meta.json").read_text())
    assert meta["data"]["missing"]["x"] == 2
    from obliviate.data import TabularConfig

    train = TabularConfig(path=str(path), label_column="grade", na_values=["?"], missing="impute").load().bundle.train
    assert train.classes == ("1", "2", "3")
    assert meta["seeds"]["0"]["n_forget"] == int((train.y == 0).sum())  # the label "1", not index 1
    none = runner.invoke(app, [*base, "--na-values", "?", "--missing", "impute", "--forget", "class:0",
                               "--out", str(tmp_path / "c")])
    assert none.exit_code == 2 and "class:0 is not a class" in none.output and "1, 2, 3" in none.output
