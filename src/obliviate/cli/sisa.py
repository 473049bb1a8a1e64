"""``obliviate sisa``: train a SISA ensemble into a store, forget from it, predict, inspect."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer

from obliviate.cli.common import clean_errors, setup_logging

sisa_app = typer.Typer(name="sisa", no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False,
                       help="SISA (Sharded, Isolated, Sliced, Aggregated) training with exact, logged forgetting.")

STORE = typer.Option(..., "--store", help="The store folder (checkpoints, versions, ledger).")
EXECUTOR = typer.Option("serial", "--executor", help="Where shard jobs run: serial, process or ray.")
WORKERS = typer.Option(None, "--workers", help="Worker processes (process) or CPUs (ray). [default: all cores]")


def _echo(obj: Any) -> None:
    typer.echo(json.dumps(obj, indent=2, default=str))


def _executor_options(executor: str, workers: int | None) -> dict[str, Any]:
    if workers is None:
        return {}
    return {"process": {"max_workers": workers}, "ray": {"num_cpus": workers}}.get(executor, {})


def _split_ids(text: str | None) -> list[str]:
    return [t.strip() for t in (text or "").split(",") if t.strip()]


def _resolve_ids(tokens: list[str], ids: Any) -> list[str]:
    """Exact ids; a bare number N that is not an id means the built-in datasets' ``train-N``."""
    known = set(ids.tolist())
    return [t if t in known or not t.isdigit() or f"train-{t}" not in known else f"train-{t}" for t in tokens]


@sisa_app.command("train")
@clean_errors
def train(
    dataset: str = typer.Option(..., "--dataset", help="Dataset name (digits, mnist1d, mnist, fashion-mnist)."),
    store: Path = STORE,
    shards: int = typer.Option(4, "--shards", help="S: number of disjoint shards."),
    slices: int = typer.Option(1, "--slices", help="R: cumulative slices per shard (a checkpoint after each)."),
    placement: str = typer.Option("uniform", help="uniform, or subject (one person's data in one shard)."),
    aggregation: str = typer.Option("mean", help="vote (majority), mean (of softmax), weighted (by shard size)."),
    data_dir: str | None = typer.Option(None, "--data-dir", help="Folder with dataset files (or set OBLIVIATE_DATA)."),
    model: str = typer.Option("mlp", help="Model name (mlp, cnn) or package.module:factory."),
    model_options: str | None = typer.Option(None, "--model-options", help='Model options as JSON, e.g. \'{"hidden": [128]}\'.'),
    epochs: int | None = typer.Option(None, help="e: epochs of a whole-shard model; each slice gets 2e/(R+1)."),
    batch_size: int | None = typer.Option(None, "--batch-size", help="Minibatch size."),
    lr: float | None = typer.Option(None, help="Learning rate."),
    seed: int = typer.Option(0, help="Seed of placement, initialisation and data order."),
    threads: int = typer.Option(1, help="Torch CPU threads per shard job (part of every checkpoint's key)."),
    executor: str = EXECUTOR,
    workers: int | None = WORKERS,
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Show progress bars on stderr."),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Log what happens."),
) -> None:
    """Train S shard models (R slices each) and publish model version 1."""
    import time

    from obliviate.bench.config import RecipeConfig
    from obliviate.data import load_dataset
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
    recipe = RecipeConfig(epochs=epochs, batch_size=batch_size, lr=lr).resolve(dataset)
    config = SisaConfig(shards=shards, slices=slices, placement=placement, aggregation=aggregation,
                        model=ModelSpec(model, options), recipe=recipe, seed=seed, threads=threads)
    bundle = load_dataset(dataset, data_dir=data_dir)
    t0 = time.perf_counter()
    with Sisa(config, store=store, executor=executor, executor_options=_executor_options(executor, workers),
              progress=get_progress(progress)) as sisa:
        sisa.fit(bundle.train, source={"dataset": dataset, "data_dir": data_dir})
        seconds = time.perf_counter() - t0
        status = sisa.status()
        _echo({"store": str(store), "model_version": status["model_version"], "shard_sizes": status["shard_sizes"],
               "epochs_per_slice": config.epochs_per_slice, "seconds": round(seconds, 3),
               "test_accuracy": sisa.score(bundle.test), "ideal_speedup": config.ideal_speedup()})


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
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Show progress bars on stderr."),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Log what happens."),
) -> None:
    """Record a forget request, retrain the affected shards, publish; prints a JSON receipt."""
    from obliviate.engine.sisa import Sisa
    from obliviate.errors import ForgetSetError
    from obliviate.progress import get_progress

    setup_logging(verbose)
    tokens = _split_ids(ids)
    if not tokens and subject is None:
        raise ForgetSetError("Give --ids ID,ID,... and/or --subject NAME.")
    with Sisa.open(store, executor=executor, executor_options=_executor_options(executor, workers),
                   progress=get_progress(progress)) as sisa:
        resolved = _resolve_ids(tokens, sisa.data_.ids) if tokens else []
        receipt = sisa.forget(resolved, subject=subject, reason=reason, request_id=request_id)
        _echo(receipt.to_dict())


@sisa_app.command("predict")
@clean_errors
def predict(
    store: Path = STORE,
    split: str = typer.Option("test", help="Which split of the store's dataset to predict: test or train."),
    ids: str | None = typer.Option(None, "--ids", help="Only these example ids of the split (prints each prediction)."),
    input: Path | None = typer.Option(None, "--input", help="A .npy array of inputs instead of a split."),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Log what happens."),
) -> None:
    """Predict with the served model version; prints accuracy (and per-example predictions)."""
    import numpy as np

    from obliviate.data import load_dataset
    from obliviate.engine.sisa import Sisa
    from obliviate.errors import ConfigError, DataError

    setup_logging(verbose)
    with Sisa.open(store) as sisa:
        version = sisa.version_
        if input is not None:
            try:
                x = np.load(input, allow_pickle=False)
            except (OSError, ValueError) as exc:
                raise DataError(f"Cannot read {input} as a .npy array: {exc}.") from None
            _echo({"model_version": version, "predictions": sisa.predict(x).tolist()})
            return
        if split not in ("test", "train"):
            raise ConfigError(f"--split must be 'test' or 'train'; got {split!r}.")
        if not sisa.source_ or not sisa.source_.get("dataset"):
            raise ConfigError("This store does not record its dataset; use --input FILE.npy.")
        bundle = load_dataset(sisa.source_["dataset"], data_dir=sisa.source_.get("data_dir"))
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


@sisa_app.command("status")
@clean_errors
def status(store: Path = STORE) -> None:
    """The served model version, shard sizes, and the requests by status."""
    from obliviate.engine.sisa import Sisa

    with Sisa.open(store) as sisa:
        _echo(sisa.status())


@sisa_app.command("recover")
@clean_errors
def recover(
    store: Path = STORE,
    executor: str = EXECUTOR,
    workers: int | None = WORKERS,
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Log what happens."),
) -> None:
    """Apply requests a crash interrupted (each exactly once); prints their receipts."""
    from obliviate.engine.sisa import Sisa

    setup_logging(verbose)
    with Sisa.open(store, executor=executor, executor_options=_executor_options(executor, workers)) as sisa:
        _echo([r.to_dict() for r in sisa.recover()])
