"""``obliviate mismatches``: run the mismatch lab's experiments (one, all, or list them)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click
import typer
from typer.core import TyperGroup

from obliviate.cli.common import clean_errors, parse_assignments, setup_logging


class _ExperimentGroup(TyperGroup):
    """``mismatches NAME ...`` means ``mismatches run NAME ...`` (``list`` and ``all`` are commands)."""

    def resolve_command(self, ctx: click.Context, args: list[str]) -> Any:
        if args and args[0] not in self.commands and not args[0].startswith("-"):
            args = ["run", *args]
        return super().resolve_command(ctx, args)


mismatches_app = typer.Typer(
    name="mismatches", cls=_ExperimentGroup, no_args_is_help=True, add_completion=False,
    pretty_exceptions_enable=False,
    help="The mismatch lab: experiments that show where unlearning and what is hoped of it part. "
         "`obliviate mismatches NAME --out DIR` runs one; `all` runs every one into DIR/index.html.")

OUT = typer.Option(Path("runs/mismatches"), "--out", help="Folder for NAME.json, NAME.png (and index.html).")
QUICK = typer.Option(False, "--quick", help="Tiny sizes (seconds): for a smoke test, not for numbers.")
SET = typer.Option(None, "--set", help="Change a config field: NAME.FIELD=VALUE, e.g. --set forging.seeds=3.")
THREADS = typer.Option(1, "--threads", help="Torch CPU threads (1 is fastest for these small models).")
VERBOSE = typer.Option(False, "--verbose", "-v", help="Log what happens.")


def _overrides(items: list[str] | None, names: list[str]) -> dict[str, dict[str, Any]]:
    from obliviate.errors import ConfigError
    from obliviate.lab import EXPERIMENTS

    sets = parse_assignments(items)
    bad = [n for n in sets if n not in names]
    if bad:
        for n in bad:
            EXPERIMENTS.get(n)  # unknown name: the registry's nearest-name error
        raise ConfigError(f"--set names {', '.join(bad)}, which this command does not run ({', '.join(names)}).")
    return sets


def _setup(threads: int, verbose: bool) -> None:
    import torch

    setup_logging(verbose)
    torch.set_num_threads(threads)


@mismatches_app.command("list")
@clean_errors
def list_experiments() -> None:
    """List the registered experiments."""
    from obliviate.lab import EXPERIMENTS

    for name, exp in EXPERIMENTS.items():
        typer.echo(f"{name:<10} {exp.title}  [{exp.mismatch}]")


@mismatches_app.command("run")
@clean_errors
def run_one(name: str = typer.Argument(..., help="The experiment (see `obliviate mismatches list`)."),
            out: Path = OUT, quick: bool = QUICK, set_: list[str] | None = SET, threads: int = THREADS,
            verbose: bool = VERBOSE) -> None:
    """Run one experiment: writes OUT/NAME.json and OUT/NAME.png."""
    from obliviate.lab import EXPERIMENTS
    from obliviate.lab.render import write_result

    exp = EXPERIMENTS.get(name)
    config = exp.config(_overrides(set_, [name]).get(name), quick=quick)
    _setup(threads, verbose)
    result = exp.run(config)
    paths = write_result(result, out)
    typer.echo(result.claim)
    typer.echo(f"{name}: {result.seconds:.1f} s -> {paths['json']}")


@mismatches_app.command("all")
@clean_errors
def run_all(out: Path = OUT, quick: bool = QUICK, set_: list[str] | None = SET, threads: int = THREADS,
            verbose: bool = VERBOSE) -> None:
    """Run every experiment: OUT/index.html, OUT/mismatches.json, and each NAME.json / NAME.png."""
    from obliviate.lab import EXPERIMENTS
    from obliviate.lab.render import write_all, write_result

    experiments = dict(EXPERIMENTS.items())
    sets = _overrides(set_, list(experiments))
    # validate every config before the first run, so a typo costs nothing
    configs = {n: e.config(sets.get(n), quick=quick) for n, e in experiments.items()}
    _setup(threads, verbose)
    results = []
    for n, e in experiments.items():
        results.append(e.run(configs[n]))
        write_result(results[-1], out)  # kept if a later experiment fails
        typer.echo(f"{n}: {results[-1].seconds:.1f} s. {results[-1].claim}")
    paths = write_all(results, out, titles={n: e.title for n, e in experiments.items()})
    typer.echo(f"Report: {paths['html']}")
