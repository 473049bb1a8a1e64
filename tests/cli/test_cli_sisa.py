"""`obliviate sisa ...` and `obliviate ledger ...` through the Typer runner."""

import json
import shutil
import sqlite3

import pytest
from typer.testing import CliRunner

from obliviate.cli.main import app

runner = CliRunner()


@pytest.fixture(scope="module", autouse=True)
def _ledger_key(tmp_path_factory):
    """Sign these stores' ledgers with a key in a temporary folder, never the user's own."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("OBLIVIATE_LEDGER_KEY", str(tmp_path_factory.mktemp("keys") / "ledger-ed25519.pem"))
        yield
TRAIN = ["--dataset", "digits", "--shards", "3", "--slices", "2", "--epochs", "4", "--lr", "0.01",
         "--model-options", '{"hidden": [32]}', "--no-progress"]


def _json(res):
    assert res.exit_code == 0, res.output
    return json.loads(res.stdout)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("cli") / "store"
    out = _json(runner.invoke(app, ["sisa", "train", "--store", str(root), *TRAIN]))
    assert out["model_version"] == 1 and len(out["shard_sizes"]) == 3 and out["epochs_per_slice"] == 3
    assert out["test_accuracy"] > 0.7
    return root


@pytest.fixture
def store(trained, tmp_path):
    root = tmp_path / "store"
    shutil.copytree(trained, root)
    return root


def test_forget_prints_a_receipt_and_is_idempotent(store):
    args = ["sisa", "forget", "--store", str(store), "--ids", "3,train-17", "--reason", "gdpr art. 17",
            "--subject", "alice", "--no-progress"]
    receipt = _json(runner.invoke(app, args))
    assert receipt["status"] == "applied" and receipt["example_ids"] == ["train-3", "train-17"]
    assert receipt["model_version_after"] == 2 and receipt["shards_retrained"]
    assert receipt["slices_replayed"] >= 1 and receipt["seconds"] > 0 and not receipt["duplicate"]
    again = _json(runner.invoke(app, args))
    assert again["duplicate"] and again["request_id"] == receipt["request_id"] and again["model_version_after"] == 2

    status = _json(runner.invoke(app, ["sisa", "status", "--store", str(store)]))
    assert status["model_version"] == 2 and status["forgotten"] == 2 and status["requests"] == {"applied": 1}
    listed = _json(runner.invoke(app, ["ledger", "list", "--store", str(store)]))
    assert [r["request_id"] for r in listed] == [receipt["request_id"]] and listed[0]["reason"] == "gdpr art. 17"
    verified = _json(runner.invoke(app, ["ledger", "verify", "--store", str(store)]))
    assert verified["ok"] and verified["requests"] == 1


def test_predict(store, tmp_path):
    out = _json(runner.invoke(app, ["sisa", "predict", "--store", str(store)]))
    assert out["model_version"] == 1 and out["split"] == "test" and out["accuracy"] > 0.7
    some = _json(runner.invoke(app, ["sisa", "predict", "--store", str(store), "--split", "train",
                                     "--ids", "train-3,train-17"]))
    assert [p["id"] for p in some["predictions"]] == ["train-3", "train-17"]
    import numpy as np

    np.save(tmp_path / "x.npy", np.zeros((4, 1, 8, 8), dtype=np.float32))
    raw = _json(runner.invoke(app, ["sisa", "predict", "--store", str(store), "--input", str(tmp_path / "x.npy")]))
    assert len(raw["predictions"]) == 4


def test_recover_with_nothing_pending(store):
    assert _json(runner.invoke(app, ["sisa", "recover", "--store", str(store)])) == []


def _clean_error(res, message):
    assert res.exit_code == 2, res.output
    assert message in res.output and "Traceback" not in res.output


@pytest.mark.parametrize("ids, message", [
    ("train-3,nope", "not in digits-train"),
    ("", "Give --ids"),
])
def test_bad_forget_input(store, ids, message):
    before = (store / "current.json").read_text()
    _clean_error(runner.invoke(app, ["sisa", "forget", "--store", str(store), "--ids", ids, "--no-progress"]), message)
    assert (store / "current.json").read_text() == before


def test_already_forgotten_and_corrupt_checkpoint(store):
    _json(runner.invoke(app, ["sisa", "forget", "--store", str(store), "--ids", "3", "--no-progress"]))
    _clean_error(runner.invoke(app, ["sisa", "forget", "--store", str(store), "--ids", "3,17", "--reason", "x",
                                     "--no-progress"]), "already forgotten")
    version = json.loads((store / "current.json").read_text())["version"]
    doc = json.loads((store / "versions" / f"{version}.json").read_text())
    for shard in doc["shards"]:
        (store / "checkpoints" / f"{shard['slices'][-1]['key']}.safetensors").write_bytes(b"corrupt")
    _clean_error(runner.invoke(app, ["sisa", "predict", "--store", str(store)]), "does not match")


def test_edited_ledger_fails_verify_and_forget(store):
    _json(runner.invoke(app, ["sisa", "forget", "--store", str(store), "--ids", "3", "--no-progress"]))
    db = sqlite3.connect(store / "ledger.sqlite")
    db.execute("UPDATE events SET payload = replace(payload, 'train-3', 'train-4') WHERE request_id IS NOT NULL")
    db.commit()
    db.close()
    _clean_error(runner.invoke(app, ["ledger", "verify", "--store", str(store)]), "was edited")
    _clean_error(runner.invoke(app, ["sisa", "forget", "--store", str(store), "--ids", "17", "--no-progress"]),
                 "was edited")
    assert json.loads((store / "current.json").read_text()) == {"version": 2}


def test_missing_store_and_bad_options(tmp_path):
    _clean_error(runner.invoke(app, ["sisa", "status", "--store", str(tmp_path / "none")]), "No store configuration")
    _clean_error(runner.invoke(app, ["ledger", "verify", "--store", str(tmp_path / "none")]), "No ledger")
    _clean_error(runner.invoke(app, ["sisa", "train", "--store", str(tmp_path / "s"), "--dataset", "digits",
                                     "--shards", "0", "--aggregation", "avg"]), "'shards' parameter")
    _clean_error(runner.invoke(app, ["sisa", "train", "--store", str(tmp_path / "s"), "--dataset", "digits",
                                     "--model-options", "{hidden"]), "--model-options must be a JSON object")


# ---------------------------------------------------------------- your own table, end to end
@pytest.fixture(scope="module")
def people(tmp_path_factory):
    import numpy as np
    import pandas as pd

    folder = tmp_path_factory.mktemp("people")
    rng = np.random.default_rng(0)
    n = 300
    a, b = rng.normal(size=n), rng.normal(size=n)
    color = rng.choice(["red", "blue", "green"], n)
    frame = pd.DataFrame({"pid": [f"p{i}" for i in range(n)], "person": [f"s{i % 40}" for i in range(n)],
                          "a": a, "b": b, "color": color,
                          "churn": np.where(a + b + (color == "red") > 0.5, "yes", "no")})
    frame.to_csv(folder / "people.csv", index=False)
    frame.iloc[:12].drop(columns=["churn"]).to_csv(folder / "new.csv", index=False)
    frame.iloc[:40].to_csv(folder / "labelled.csv", index=False)
    bad = frame.iloc[:10].copy()
    bad.loc[3, "a"] = np.nan
    bad.loc[7, "b"] = np.inf
    bad.to_csv(folder / "bad.csv", index=False)
    return folder


CSV_TRAIN = ["--label-column", "churn", "--id-column", "pid", "--subject-column", "person", "--shards", "3",
             "--slices", "2", "--epochs", "8", "--lr", "0.01", "--model-options", '{"hidden": [16]}', "--no-progress"]


def test_a_csv_store_trains_forgets_predicts_and_verifies_from_the_cli(people, tmp_path):
    store = tmp_path / "store"
    out = _json(runner.invoke(app, ["sisa", "train", "--store", str(store), "--data", str(people / "people.csv"),
                                    *CSV_TRAIN]))
    assert out["n_train"] == 240 and out["n_test"] == 60 and out["test_accuracy"] > 0.7
    doc = json.loads((store / "store.json").read_text())
    assert doc["source"]["data"]["path"] == str(people / "people.csv") and doc["source_fingerprint"]
    assert doc["schema"]["label_column"] == "churn"

    receipt = _json(runner.invoke(app, ["sisa", "forget", "--store", str(store), "--subject", "s7", "--reason", "gdpr",
                                        "--no-progress"]))
    assert receipt["status"] == "applied" and receipt["model_version_after"] == 2
    assert set(receipt["example_ids"]) <= {f"p{i}" for i in range(7, 300, 40)} and receipt["example_ids"]
    assert receipt["signature"] and receipt["key_fingerprint"].startswith("sha256:")
    (tmp_path / "receipt.json").write_text(json.dumps(receipt))
    status = _json(runner.invoke(app, ["sisa", "status", "--store", str(store)]))
    assert status["source_matches"] is True and status["residue"] == [] and status["forgotten"] == len(
        receipt["example_ids"])
    # the requester, without the store: the receipt's own signatures
    alone = _json(runner.invoke(app, ["ledger", "verify", "--receipt", str(tmp_path / "receipt.json"),
                                      "--expect-key", receipt["key_fingerprint"]]))
    assert alone["receipts"][0]["request_id"] == receipt["request_id"]
    (tmp_path / "edited.json").write_text(json.dumps({**receipt, "subject": "s8"}))
    _clean_error(runner.invoke(app, ["ledger", "verify", "--receipt", str(tmp_path / "edited.json")]),
                 "edited after it was issued")
    _clean_error(runner.invoke(app, ["ledger", "verify"]), "Give --store")

    rows = _json(runner.invoke(app, ["sisa", "predict", "--store", str(store), "--input", str(people / "new.csv")]))
    assert rows["n"] == 12 and rows["accuracy"] is None and rows["model_version"] == 2
    assert rows["predictions"][0]["id"] == "p0" and rows["predictions"][0]["prediction"] in ("yes", "no")
    labelled = _json(runner.invoke(app, ["sisa", "predict", "--store", str(store), "--input",
                                         str(people / "labelled.csv")]))
    assert labelled["accuracy"] > 0.7 and labelled["predictions"][0]["label"] in ("yes", "no")
    _clean_error(runner.invoke(app, ["sisa", "predict", "--store", str(store), "--input", str(people / "bad.csv")]),
                 "rows 3, 7")
    split = _json(runner.invoke(app, ["sisa", "predict", "--store", str(store)]))
    assert split["n"] == 60 and split["accuracy"] > 0.7

    verified = _json(runner.invoke(app, ["ledger", "verify", "--store", str(store), "--receipt",
                                         str(tmp_path / "receipt.json")]))
    assert verified["receipts"][0]["request_id"] == receipt["request_id"]
    _clean_error(runner.invoke(app, ["ledger", "verify", "--store", str(store), "--receipt",
                                     str(tmp_path / "receipt.json"), "--expect-key", "sha256:" + "0" * 64]),
                 "not by the expected")
    # the requester catches the erasure of their own request
    db = sqlite3.connect(store / "ledger.sqlite")
    db.execute("DELETE FROM events WHERE request_id IS NOT NULL")
    db.execute("DELETE FROM requests")
    head = list(db.execute("SELECT seq, entry_hash FROM events ORDER BY seq DESC LIMIT 1").fetchone())
    db.commit()
    db.close()
    _clean_error(runner.invoke(app, ["ledger", "verify", "--store", str(store), "--receipt",
                                     str(tmp_path / "receipt.json")]), "truncated")
    # ... and points the signed model version's head at what is left: its signature breaks
    version = json.loads((store / "versions" / "2.json").read_text())
    (store / "versions" / "2.json").write_text(json.dumps({**version, "ledger_head": head, "requests": []}))
    _clean_error(runner.invoke(app, ["ledger", "verify", "--store", str(store)]), "not signed")


def test_train_refuses_a_folder_that_is_not_a_store_unless_overwrite(people, tmp_path):
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "notes.txt").write_text("x")
    args = ["sisa", "train", "--store", str(folder), "--data", str(people / "people.csv"), *CSV_TRAIN]
    _clean_error(runner.invoke(app, args), "not a SISA store")
    assert _json(runner.invoke(app, [*args, "--overwrite"]))["model_version"] == 1
    _clean_error(runner.invoke(app, args), "already holds a trained SISA model")
    assert _json(runner.invoke(app, [*args, "--overwrite"]))["model_version"] == 1
    assert (folder / "notes.txt").read_text() == "x"


def test_data_option_mistakes(people, tmp_path):
    _clean_error(runner.invoke(app, ["sisa", "train", "--store", str(tmp_path / "s"), "--label-column", "churn"]),
                 "add --data")
    _clean_error(runner.invoke(app, ["sisa", "train", "--store", str(tmp_path / "s"), "--dataset", "digits",
                                     "--data", str(people / "people.csv")]), "not both")
    _clean_error(runner.invoke(app, ["sisa", "train", "--store", str(tmp_path / "s"), "--data",
                                     str(people / "people.csv"), "--label-column", "nope"]), "nope")


def test_status_fails_when_the_ledger_is_deleted(store):
    (store / "ledger.sqlite").unlink()
    for suffix in ("-wal", "-shm"):
        (store / f"ledger.sqlite{suffix}").unlink(missing_ok=True)
    _clean_error(runner.invoke(app, ["sisa", "status", "--store", str(store)]), "it was deleted")
    _clean_error(runner.invoke(app, ["ledger", "list", "--store", str(store)]), "No ledger")


def test_status_lists_residue_and_verifies_the_ledger(store):
    status = _json(runner.invoke(app, ["sisa", "status", "--store", str(store)]))
    assert status["residue"] == [] and status["ledger"]["ok"]


def test_api_stores_work_from_the_cli(digits, tmp_path):
    from obliviate.data.source import DataSource
    from obliviate.engine.sisa import Sisa, SisaConfig
    from obliviate.models import ModelSpec
    from obliviate.training import Recipe

    config = SisaConfig(shards=2, model=ModelSpec("mlp", {"hidden": [16]}), recipe=Recipe(epochs=1))
    bare, sourced = tmp_path / "bare", tmp_path / "sourced"
    Sisa(config, store=bare).fit(digits.train).close()
    _clean_error(runner.invoke(app, ["sisa", "forget", "--store", str(bare), "--ids", "3", "--no-progress"]),
                 "obliviate sisa train --data")
    Sisa(config, store=sourced).fit(DataSource(dataset="digits")).close()
    receipt = _json(runner.invoke(app, ["sisa", "forget", "--store", str(sourced), "--ids", "3", "--no-progress"]))
    assert receipt["status"] == "applied"


@pytest.fixture(scope="module")
def pictures(tmp_path_factory):
    import numpy as np
    from PIL import Image

    root = tmp_path_factory.mktemp("pictures") / "pets"
    rng = np.random.default_rng(0)
    for c, base in (("cat", 150), ("dog", 0)):
        (root / c).mkdir(parents=True)
        for i in range(16):
            Image.fromarray((rng.random((8, 8)) * 80 + base).astype(np.uint8)).save(root / c / f"{i}.png")
    return root


def test_an_image_folder_store_from_the_cli(pictures, tmp_path):
    store = tmp_path / "store"
    out = _json(runner.invoke(app, ["sisa", "train", "--store", str(store), "--data", str(pictures), "--shards", "2",
                                    "--epochs", "20", "--lr", "0.01", "--model-options", '{"hidden": [16]}',
                                    "--no-progress"]))
    assert out["n_train"] + out["n_test"] == 32
    with_labels = _json(runner.invoke(app, ["sisa", "predict", "--store", str(store), "--input", str(pictures)]))
    assert with_labels["n"] == 32 and with_labels["accuracy"] is not None
    assert {p["prediction"] for p in with_labels["predictions"]} <= {"cat", "dog"}
    flat = _json(runner.invoke(app, ["sisa", "predict", "--store", str(store), "--input", str(pictures / "cat")]))
    assert flat["n"] == 16 and flat["accuracy"] is None
    from obliviate.engine.sisa import Sisa

    with Sisa.open(store) as s:
        victim = str(s.data_.ids[0])
    receipt = _json(runner.invoke(app, ["sisa", "forget", "--store", str(store), "--ids", victim, "--no-progress"]))
    assert receipt["status"] == "applied" and receipt["example_ids"] == [victim]
    _clean_error(runner.invoke(app, ["sisa", "train", "--store", str(tmp_path / "s2"), "--data", str(pictures),
                                     "--label-column", "x"]), "--label-column describes table columns")
