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
