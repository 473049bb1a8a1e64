"""``obliviate sisa``: train a SISA ensemble into a store, forget from it, predict, inspect."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer

from obliviate.cli.common import (
    CATEGORICAL,
    DATA_DIR,
    DATA_PATH,
    DATASET,
    ID_COLUMN,
    LABEL_COLUMN,
    SUBJECT_COLUMN,
    SUBSET_SEED,
    NA_VALUES,
    MISSING,
    TEST_DATA,
    TEST_FRACTION,
    TRAIN_SUBSET,
    clean_errors,
    data_source,
    setup_logging,
)

sisa_app = typer.Typer(name="sisa", no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False,
                       help="SISA (Sharded, Isolated, Sliced, Aggregated) training with exact, logged forgetting.")

STORE = typer.Option(..., "--store", help="The store folder (checkpoints, versions, ledger).")
EXECUTOR = typer.Option("serial", "--executor", help="Where shard jobs run: serial, process or ray.")
WORKERS = typer.Option(None, "--workers", help="Worker processes (process) or CPUs (ray). [default: all cores]")
KEY_FILE = typer.Option(None, "--key-file", help="The ledger's Ed25519 signing key, kept outside the store. "
                        "[default: $OBLIVIATE_LEDGER_KEY, else ~/.config/obliviate/keys/ledger-ed25519.pem; created on first use]")
FACTORY = typer.Option(None, "--model-factory", help="A package.module:callable model factory you trust (repeatable); "
                       "a factory the store names is refused unless it is given here.")


def _echo(obj: Any) -> None:
    typer.echo(json.dumps(obj, indent=2, default=str))


def _split_ids(text: str | None) -> list[str]:
    return [t.strip() for t in (text or "").split(",") if t.strip()]


def _resolve_ids(tokens: list[str], ids: Any) -> list[str]:
    """Exact ids; a bare number N that is not an id means the built-in datasets' ``train-N``."""
    known = set(ids.tolist())
    return [t if t in known or not t.isdigit() or f"train-{t}" not in known else f"train-{t}" for t in tokens]


@sisa_app.command("train")
@clean_errors
def train(
    store: Path = STORE,
    dataset: str | None = DATASET,
    data_dir: str | None = DATA_DIR,
    data_path: str | None = DATA_PATH,
    test_data: str | None = TEST_DATA,
    label_column: str | None = LABEL_COLUMN,
    id_column: str | None = ID_COLUMN,
    subject_column: str | None = SUBJECT_COLUMN,
    test_fraction: float | None = TEST_FRACTION,
    categorical: str | None = CATEGORICAL,
    train_subset: int | None = TRAIN_SUBSET,
    subset_seed: int = SUBSET_SEED,
    na_values: str | None = NA_VALUES,
    missing: str | None = MISSING,
    shards: int = typer.Option(4, "--shards", help="S: number of disjoint shards."),
    slices: int = typer.Option(1, "--slices", help="R: cumulative slices per shard (a checkpoint after each)."),
    placement: str = typer.Option("uniform", help="uniform, or subject (one person's data in one shard)."),
    aggregation: str = typer.Option("mean", help="vote (majority), mean (of softmax), weighted (by shard size)."),
    model: str = typer.Option("mlp", help="Model name (mlp, cnn) or package.module:factory."),
    model_options: str | None = typer.Option(None, "--model-options", help='Model options as JSON, e.g. \'{"hidden": [128]}\'.'),
    epochs: int | None = typer.Option(None, help="e: epochs of a whole-shard model; each slice gets 2e/(R+1)."),
    batch_size: int | None = typer.Option(None, "--batch-size", help="Minibatch size."),
    lr: float | None = typer.Option(None, help="Learning rate."),
    seed: int = typer.Option(0, help="Seed of placement, initialisation and data order."),
    threads: int = typer.Option(1, help="Torch CPU threads per shard job (part of every checkpoint's key)."),
    executor: str = EXECUTOR,
    workers: int | None = WORKERS,
    overwrite: bool = typer.Option(False, "--overwrite", help="Train into a folder that is not empty or already holds "
                                   "a store (only the store's own files are deleted)."),
    key_file: Path | None = KEY_FILE,
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Show progress bars on stderr."),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Log what happens."),
) -> None:
    """Train S shard models (R slices each) on a built-in dataset or your own files, and publish model version 1."""
    import time

    from obliviate.tasks.classification import RecipeConfig
    from obliviate.engine.executor import executor_options
    from obliviate.engine.sisa import Sisa, SisaConfig
    from obliviate.errors import ConfigError
    from obliviate.models import ModelSpec
    from obliviate.progress import get_progress

    setup_logging(verbose)
    try:
        options = json.loads(model_options) if model_options else {}
    except json.JSONDecodeError as exc:
        raise ConfigError(f"--model-options must be a JSON object; got {model_options!r} ({exc}).") from None
    if not isinstance(options, dict):
        raise ConfigError(f"--model-options must be a JSON object; got {model_options!r}.")
    source = data_source(dataset=dataset, data_dir=data_dir, data_path=data_path, test_data=test_data,
                         label_column=label_column, id_column=id_column, subject_column=subject_column,
                         test_fraction=test_fraction, categorical=categorical, train_subset=train_subset,
                         subset_seed=subset_seed, na_values=na_values, missing=missing)
    recipe = RecipeConfig(epochs=epochs, batch_size=batch_size, lr=lr).resolve(source.dataset or "custom")
    config = SisaConfig(shards=shards, slices=slices, placement=placement, aggregation=aggregation,
                        model=ModelSpec(model, options), recipe=recipe, seed=seed, threads=threads)
    t0 = time.perf_counter()
    with Sisa(config, store=store, executor=executor, executor_options=executor_options(executor, workers=workers),
              progress=get_progress(progress), key_file=key_file) as sisa:
        sisa.fit(source, overwrite=overwrite)
        seconds = time.perf_counter() - t0
        status = sisa.status()
        _echo({"store": str(store), "model_version": status["model_version"], "shard_sizes": status["shard_sizes"],
               "epochs_per_slice": config.epochs_per_slice, "seconds": round(seconds, 3),
               "n_train": len(sisa.data_), "n_test": len(sisa.test_data_),
               "test_accuracy": sisa.score(sisa.test_data_), "ideal_speedup": config.ideal_speedup(),
               "ideal_speedup_is_for": "one uniformly random deletion; a batch's expected_work_fraction is in its receipt",
               "source_fingerprint": sisa.files_.read_config()["source_fingerprint"],
               "key_fingerprint": status["ledger"]["key_fingerprint"]})


@sisa_app.command("forget")
@clean_errors
def forget(
    store: Path = STORE,
    ids: str | None = typer.Option(None, "--ids", help="Comma-separated example ids (a bare N means train-N)."),
    subject: str | None = typer.Option(None, "--subject", help="The data subject; alone, forgets all their examples."),
    reason: str | None = typer.Option(None, "--reason", help="Why (recorded in the ledger)."),
    request_id: str | None = typer.Option(None, "--request-id", help="Idempotency key; re-sending it changes nothing."),
    executor: str = EXECUTOR,
    workers: int | None = WORKERS,
    key_file: Path | None = KEY_FILE,
    factories: list[str] | None = FACTORY,
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Show progress bars on stderr."),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Log what happens."),
) -> None:
    """Record a forget request, retrain the affected shards, publish; prints a signed JSON receipt.

    Keep the receipt: `obliviate ledger verify --store S --receipt FILE` shows later that the
    request is still in the ledger, unaltered and applied."""
    from obliviate.engine.executor import executor_options
    from obliviate.engine.sisa import Sisa
    from obliviate.errors import ForgetSetError
    from obliviate.progress import get_progress

    setup_logging(verbose)
    tokens = _split_ids(ids)
    if not tokens and subject is None:
        raise ForgetSetError("Give --ids ID,ID,... and/or --subject NAME.")
    with Sisa.open(store, executor=executor, executor_options=executor_options(executor, workers=workers),
                   progress=get_progress(progress), key_file=key_file, factories=factories or ()) as sisa:
        resolved = _resolve_ids(tokens, sisa.data_.ids) if tokens else []
        receipt = sisa.forget(resolved, subject=subject, reason=reason, request_id=request_id)
        _echo(receipt.to_dict())


@sisa_app.command("predict")
@clean_errors
def predict(
    store: Path = STORE,
    split: str = typer.Option("test", help="Which split of the store's dataset to predict: test or train."),
    ids: str | None = typer.Option(None, "--ids", help="Only these example ids of the split (prints each prediction)."),
    input: Path | None = typer.Option(None, "--input", help="Rows in the training file's format (CSV/Parquet/NPZ; "
                                      "encoded like the training rows), images (a file, a folder, or one subfolder "
                                      "per class) for an image-folder store, or a .npy array of encoded inputs."),
    factories: list[str] | None = FACTORY,
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Log what happens."),
) -> None:
    """Predict with the served model version; prints accuracy when labels are known (and per-example predictions)."""
    from obliviate.data.source import DataSource
    from obliviate.engine.sisa import Sisa
    from obliviate.errors import ConfigError

    setup_logging(verbose)
    with Sisa.open(store, factories=factories or ()) as sisa:
        version = sisa.version_
        if input is not None:
            _echo(_predict_input(sisa, input, version))
            return
        if split not in ("test", "train"):
            raise ConfigError(f"--split must be 'test' or 'train'; got {split!r}.")
        if not sisa.source_:
            raise ConfigError("This store does not record its training data; use --input FILE (rows like the "
                              "training file's, or a .npy array).")
        bundle = DataSource.from_dict(sisa.source_).load()
        data = bundle.test if split == "test" else bundle.train
        if ids:
            data = data.subset(data.positions(_split_ids(ids)))
        pred = sisa.predict(data.x)
        out: dict[str, Any] = {"model_version": version, "split": split, "n": len(data),
                               "accuracy": float((pred == data.y).mean()) if len(data) else None}
        if ids:
            out["predictions"] = [{"id": i, "label": int(y), "prediction": int(p)}
                                  for i, y, p in zip(data.ids, data.y, pred)]
        _echo(out)


def _predict_input(sisa: Any, path: Path, version: int) -> dict[str, Any]:
    """Predictions for ``--input``: a .npy of encoded inputs, or raw rows encoded with the stored schema."""
    import numpy as np

    from obliviate.data.images import ImageFolderConfig
    from obliviate.data.source import DataSource, encode_images, encode_rows
    from obliviate.errors import ConfigError, DataError

    if path.suffix.lower() == ".npy":
        try:
            x = np.load(path, allow_pickle=False)
        except (OSError, ValueError) as exc:
            raise DataError(f"Cannot read {path} as a .npy array: {exc}.") from None
        if np.issubdtype(x.dtype, np.number) and not np.isfinite(x).all():
            rows = np.flatnonzero(~np.isfinite(x.reshape(len(x), -1)).all(axis=1))
            raise DataError(f"{path}: {len(rows)} row(s) hold NaN or infinite values: rows "
                            f"{', '.join(map(str, rows[:20].tolist()))} (counted from 0). Nothing was predicted.")
        return {"model_version": version, "predictions": sisa.predict(x).tolist()}
    doc = sisa.files_.read_config()
    source = DataSource.from_dict(sisa.source_) if sisa.source_ else None
    if doc.get("schema") and source is not None:
        rows = encode_rows(path, doc["schema"], config=source.data)  # type: ignore[arg-type]
    elif doc.get("classes") and source is not None and isinstance(source.data, ImageFolderConfig):
        rows = encode_images(path, source.data, doc["classes"])
    else:
        raise ConfigError(f"This store was not trained on your own table or image folder, so {path} cannot be "
                          "encoded like its training examples; give a .npy array of encoded inputs.")
    pred = sisa.predict(rows.x)
    out: dict[str, Any] = {"model_version": version, "input": str(path), "n": len(pred),
                           "accuracy": float((pred == rows.y).mean()) if rows.y is not None and len(pred) else None,
                           "predictions": [{"id": i, "prediction": rows.classes[int(p)]}
                                           | ({} if rows.y is None else {"label": rows.classes[int(y)]})
                                           for i, p, y in zip(rows.ids.tolist(), pred,
                                                              rows.y if rows.y is not None else pred)]}
    return out


@sisa_app.command("status")
@clean_errors
def status(store: Path = STORE, key_file: Path | None = KEY_FILE) -> None:
    """The served model version, shard sizes, the requests by status, and any residue (files that may
    hold forgotten data); fails if the ledger is missing or was edited."""
    from obliviate.engine.sisa import Sisa

    with Sisa.open(store, key_file=key_file) as sisa:
        _echo(sisa.status())


@sisa_app.command("recover")
@clean_errors
def recover(
    store: Path = STORE,
    executor: str = EXECUTOR,
    workers: int | None = WORKERS,
    key_file: Path | None = KEY_FILE,
    factories: list[str] | None = FACTORY,
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Log what happens."),
) -> None:
    """Apply requests a crash interrupted (each exactly once), delete files that may hold forgotten
    data; prints the receipts."""
    from obliviate.engine.executor import executor_options
    from obliviate.engine.sisa import Sisa

    setup_logging(verbose)
    with Sisa.open(store, executor=executor, executor_options=executor_options(executor, workers=workers),
                   key_file=key_file, factories=factories or ()) as sisa:
        _echo([r.to_dict() for r in sisa.recover()])
