"""Shared CLI plumbing: clean error exits and logging setup."""

from __future__ import annotations

import functools
import logging
import sys
from collections.abc import Callable
from typing import Any, TypeVar

import typer

from obliviate.errors import ObliviateError

F = TypeVar("F", bound=Callable[..., Any])

EXIT_USAGE = 2


def clean_errors(fn: F) -> F:
    """Turn obliviate's typed errors into one message on stderr and exit code 2."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except ObliviateError as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(EXIT_USAGE) from None

    return wrapper  # type: ignore[return-value]


def setup_logging(verbose: bool) -> None:
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING, stream=sys.stderr,
                        format="%(levelname)s %(name)s: %(message)s")


def parse_assignments(items: list[str] | None) -> dict[str, dict[str, Any]]:
    """``--set graddiff.lr=1e-3`` -> ``{"graddiff": {"lr": 0.001}}`` (values parsed as YAML scalars)."""
    import yaml

    from obliviate.errors import ConfigError

    out: dict[str, dict[str, Any]] = {}
    problems = []
    for item in items or []:
        key, eq, value = item.partition("=")
        method, dot, param = key.partition(".")
        if not eq or not dot or not method or not param:
            problems.append(f"--set {item!r}: use METHOD.PARAM=VALUE, e.g. --set graddiff.lr=1e-3")
            continue
        out.setdefault(method, {})[param] = _scalar(value)
    if problems:
        raise ConfigError("Invalid --set:", problems)
    return out


def _scalar(text: str) -> Any:
    """Parse a command-line value: int, float (``1e-3`` included), else YAML (lists, bools, null)."""
    import yaml

    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    return yaml.safe_load(text)


# --- the data options every command that trains takes (``bench``, ``sisa train``) ----------------
# Defined once so the commands cannot drift apart; a command lists them as parameters
# (``data_path: str | None = DATA_PATH``) and turns them into a DataSource with data_source().

DATASET = typer.Option(None, "--dataset", help="Built-in dataset (digits, mnist1d, mnist, fashion-mnist). [default: digits]")
DATA_DIR = typer.Option(None, "--data-dir", help="Folder with built-in dataset files (or set OBLIVIATE_DATA).")
DATA_PATH = typer.Option(None, "--data", help="Your own data instead of --dataset: a CSV/Parquet/NPZ file or an image folder (one subfolder per class).")
TEST_DATA = typer.Option(None, "--test-data", help="A second file or folder with the held-out test examples.")
LABEL_COLUMN = typer.Option(None, "--label-column", help="Label column of --data. [default: label]")
ID_COLUMN = typer.Option(None, "--id-column", help="Unique id column of --data. [default: the row number]")
SUBJECT_COLUMN = typer.Option(None, "--subject-column", help="Column naming the person a row belongs to.")
TEST_FRACTION = typer.Option(None, "--test-fraction", help="Else this seeded, stratified share of --data is held out. [default: 0.2]")
CATEGORICAL = typer.Option(None, "--categorical", help="Numeric-looking columns to one-hot encode, COL,COL (text columns always are).")
TRAIN_SUBSET = typer.Option(None, "--train-subset", help="Train on a class-stratified random subset of this many training examples.")
SUBSET_SEED = typer.Option(0, "--subset-seed", help="Seed of the --train-subset draw.")


def data_source(*, dataset: str | None = None, data_dir: str | None = None, data_path: str | None = None,
                test_data: str | None = None, label_column: str | None = None, id_column: str | None = None,
                subject_column: str | None = None, test_fraction: float | None = None,
                categorical: str | None = None, train_subset: int | None = None, subset_seed: int = 0) -> Any:
    """The :class:`~obliviate.data.source.DataSource` the data options describe (ConfigError listing every problem)."""
    from obliviate.bench.config import infer_data_kind
    from obliviate.config import validate
    from obliviate.data.images import ImageFolderConfig
    from obliviate.data.source import DataSource
    from obliviate.data.tabular import TabularConfig
    from obliviate.errors import ConfigError

    flags = {"test_path": test_data, "label_column": label_column, "id_column": id_column,
             "subject_column": subject_column, "test_fraction": test_fraction, "categorical_columns": categorical}
    given = {k: v for k, v in flags.items() if v is not None}
    names = {"test_path": "--test-data", "label_column": "--label-column", "id_column": "--id-column",
             "subject_column": "--subject-column", "test_fraction": "--test-fraction",
             "categorical_columns": "--categorical"}
    if data_path is None:
        problems = [f"{names[k]} describes your own data; add --data FILE_OR_DIR" for k in given]
        if data_dir is not None and dataset is None:
            dataset = "digits"
        if problems:
            raise ConfigError("Invalid data options:", problems)
        return DataSource(dataset=dataset or "digits", data_dir=data_dir, train_subset=train_subset,
                          subset_seed=subset_seed)
    if dataset is not None:
        raise ConfigError(f"Give either --dataset ({dataset!r}, a built-in) or --data (your own files), not both.")
    kind = infer_data_kind(data_path)
    if kind == "images":
        wrong = [names[k] for k in given if k not in ("test_path", "test_fraction")]
        if wrong:
            verb = "describes" if len(wrong) == 1 else "describe"
            raise ConfigError(f"{', '.join(wrong)} {verb} table columns, but --data {data_path} is an image folder.")
    cls = ImageFolderConfig if kind == "images" else TabularConfig
    config = validate(cls, {"kind": kind, "path": data_path, **given}, source="the data options")
    return DataSource(data=config, train_subset=train_subset, subset_seed=subset_seed)
