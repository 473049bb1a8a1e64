"""``obliviate bench``: run an unlearning benchmark and write its results and reports."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from obliviate.cli.common import MISSING, NA_VALUES, clean_errors, parse_assignments, setup_logging


@clean_errors
def bench(
    config: Path | None = typer.Option(None, "--config", "-c", help="YAML/TOML/JSON file describing the run; flags override it."),
    task: str | None = typer.Option(None, help="Benchmark task (classification; language-model tasks when installed). [default: classification]"),
    split: str | None = typer.Option(None, help="Task-specific split name (e.g. TOFU's forget10)."),
    model_path: str | None = typer.Option(None, "--model-path", help="A local model directory to start from instead of training one."),
    dataset: str | None = typer.Option(None, help="Dataset name (digits, mnist1d, mnist, fashion-mnist). [default: digits]"),
    data_dir: str | None = typer.Option(None, "--data-dir", help="Folder with dataset files (or set OBLIVIATE_DATA)."),
    model: str | None = typer.Option(None, help="Model name (mlp, cnn) or package.module:factory. [default: mlp]"),
    model_weights: str | None = typer.Option(None, "--model-weights", help="Your trained weights (.safetensors) as the original instead of training it; retrain is still trained from scratch with the recipe."),
    data_path: str | None = typer.Option(None, "--data", help="Your own data instead of --dataset: a CSV/Parquet/NPZ file or an image folder (one subfolder per class)."),
    label_column: str | None = typer.Option(None, "--label-column", help="Label column of --data. [default: label]"),
    id_column: str | None = typer.Option(None, "--id-column", help="Unique id column of --data. [default: the row number]"),
    subject_column: str | None = typer.Option(None, "--subject-column", help="Column naming the person a row belongs to (for --forget subjects:ID)."),
    test_data: str | None = typer.Option(None, "--test-data", help="A second file or folder with the held-out test examples."),
    test_fraction: float | None = typer.Option(None, "--test-fraction", help="Else this seeded, stratified share of --data is held out. [default: 0.2]"),
    categorical: str | None = typer.Option(None, "--categorical", help="Numeric-looking columns to one-hot encode, COL,COL (text columns always are)."),
    na_values: str | None = NA_VALUES,
    missing: str | None = MISSING,
    forget: str | None = typer.Option(None, help="Forget request: random:FRACTION, class:LABEL, ids:FILE, subjects:ID,..., memorized:FRACTION, memorized-stratum:low|mid|high. [default: random:0.1; persons: the corpus's forget people]"),
    strata: bool | None = typer.Option(None, "--strata/--no-strata", help="Break forget-set results down by memorisation tercile (low/mid/high)."),
    train_subset: int | None = typer.Option(None, "--train-subset", help="Train on a class-stratified random subset of this many training examples."),
    methods: str | None = typer.Option(None, help="Comma-separated method names, or 'all'. [default: all]"),
    seeds: int | None = typer.Option(None, help="Number of seeds (0..N-1). [default: 1]"),
    out: str | None = typer.Option(None, help="Output folder. [default: runs/bench]"),
    epochs: int | None = typer.Option(None, help="Override the training recipe's epochs."),
    set_: list[str] | None = typer.Option(None, "--set", help="Method parameter, METHOD.PARAM=VALUE (repeatable)."),
    max_steps: int | None = typer.Option(None, "--max-steps", help="Cap every method's optimiser steps."),
    max_seconds: float | None = typer.Option(None, "--max-seconds", help="Cap every method's wall time."),
    cache_dir: str | None = typer.Option(None, "--cache-dir", help="Trained-model cache (default ~/.cache/obliviate/models or OBLIVIATE_CACHE)."),
    no_cache: bool = typer.Option(False, "--no-cache", help="Always retrain; do not read or write the model cache."),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Show progress bars on stderr."),
    device: str | None = typer.Option(None, help="Torch device (cpu, cuda). [default: cpu]"),
    threads: int | None = typer.Option(None, help="Torch CPU threads (1 is fastest for small models). [default: torch's]"),
    tune: bool = typer.Option(False, "--tune", help="Choose each approximate method's settings and stopping point without the retrained model (oracle-free targets); the selection's time counts in wall_ratio."),
    executor: str | None = typer.Option(None, "--executor", help="Where seeds and methods run: serial, process or ray. [default: serial]"),
    ray_address: str | None = typer.Option(None, "--ray-address", help="Join this Ray cluster (address or 'auto') instead of starting a local one."),
    workers: int | None = typer.Option(None, "--workers", help="Worker processes (process) or CPUs of a local Ray instance (ray). [default: all cores]"),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace the results of an earlier run in --out."),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Log what happens."),
) -> None:
    """Train (or reuse) the original and retrained models, run each method, and report."""
    from obliviate.bench.runner import make_task, run_bench, summarise, write_reports
    from obliviate.config import load_config_file
    from obliviate.fileio import check_output_dir
    from obliviate.progress import get_progress
    from obliviate.tasks import config_for

    setup_logging(verbose)
    data: dict[str, Any] = load_config_file(config) if config else {}
    flags = {"task": task, "split": split, "model_path": model_path, "dataset": dataset, "data_dir": data_dir, "model": model, "forget": forget, "methods": methods,
             "seeds": seeds, "out": out, "cache_dir": cache_dir, "device": device, "model_weights": model_weights,
             "threads": threads, "strata": strata, "train_subset": train_subset,
             "executor": executor, "ray_address": ray_address, "workers": workers}
    if dataset is not None:
        data.pop("data", None)  # a built-in named on the command line replaces the file's own data
    apply_data_flags(data, {"path": data_path, "label_column": label_column, "id_column": id_column,
                            "subject_column": subject_column, "test_path": test_data,
                            "test_fraction": test_fraction, "categorical_columns": categorical,
                            "na_values": na_values, "missing": missing})
    data.update({k: v for k, v in flags.items() if v is not None})
    if epochs is not None:
        data.setdefault("recipe", {})["epochs"] = epochs
    if max_steps is not None:
        data.setdefault("budget", {})["max_steps"] = max_steps
    if max_seconds is not None:
        data.setdefault("budget", {})["max_seconds"] = max_seconds
    for m, params in parse_assignments(set_).items():
        data.setdefault("method_config", {}).setdefault(m, {}).update(params)
    if tune:
        data["tune"] = True
    if no_cache:
        data["use_cache"] = False
    data["progress"] = progress and data.get("progress", True)
    cfg = config_for(data, source=f"bench configuration{' in ' + str(config) if config else ''}")
    make_task(cfg).preflight()  # every configuration problem first, then the output folder, then the work
    check_output_dir(cfg.out, overwrite=overwrite)
    result = run_bench(cfg, progress=get_progress(cfg.progress))
    paths = write_reports(result, cfg.out)
    typer.echo(summarise(result))
    typer.echo(f"Report: {paths['html']}\nResults: {paths['results']}")


# data-section key -> the flag that sets it
DATA_FLAGS = {"path": "--data", "label_column": "--label-column", "id_column": "--id-column",
              "subject_column": "--subject-column", "test_path": "--test-data",
              "test_fraction": "--test-fraction", "categorical_columns": "--categorical",
              "na_values": "--na-values", "missing": "--missing"}


def apply_data_flags(cfg: dict[str, Any], flags: dict[str, Any]) -> None:
    """Merge the --data family of flags into the config's ``data`` section (flags win)."""
    from obliviate.tasks.classification import infer_data_kind
    from obliviate.errors import ConfigError

    given = {k: v for k, v in flags.items() if v is not None}
    if not given:
        return
    section = dict(cfg.get("data") or {})
    if "path" in given:
        kind = infer_data_kind(given["path"])
        if section.get("kind", kind) != kind:
            section = {}  # a folder on the command line replaces a table in the file, and back
        section["kind"] = kind
        cfg.pop("dataset", None)  # the file's built-in; --dataset with --data still clashes
    elif not section:
        names = ", ".join(DATA_FLAGS[k] for k in given)
        raise ConfigError(f"{names} describe your own data; add --data FILE_OR_DIR "
                          "(or a data section in the config file).")
    section.update(given)
    cfg["data"] = section
