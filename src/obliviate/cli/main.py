"""The ``obliviate`` command: one Typer app, one sub-command module per file."""

from __future__ import annotations

import typer

from obliviate.cli.bench import bench
from obliviate.cli.methods import methods

app = typer.Typer(
    name="obliviate",
    help="Machine unlearning end to end: remove, audit against retraining, and report honestly.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.command("bench")(bench)
app.command("methods")(methods)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
