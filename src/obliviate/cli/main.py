"""The ``obliviate`` command: one Typer app, one sub-command module per file."""

from __future__ import annotations

import typer

from obliviate.cli.audit import audit
from obliviate.cli.bench import bench
from obliviate.cli.guard import guard_app, guards
from obliviate.cli.ledger import ledger_app
from obliviate.cli.methods import methods
from obliviate.cli.mismatches import mismatches_app
from obliviate.cli.plan import register as register_policy
from obliviate.cli.serve import register as register_serve
from obliviate.cli.sisa import sisa_app

app = typer.Typer(
    name="obliviate",
    help="Machine unlearning end to end: remove, audit against retraining, and report honestly.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,  # plain help: no <bool> metavars on flags, no box drawing in logs
)
app.command("bench")(bench)
app.command("audit")(audit)
app.command("methods")(methods)
app.add_typer(sisa_app, name="sisa")
app.add_typer(ledger_app, name="ledger")
app.add_typer(mismatches_app, name="mismatches")
app.command("guards")(guards)
app.add_typer(guard_app, name="guard")
register_policy(app)  # plan, handle, certificate verify
register_serve(app)  # serve (the deletion service and its worker)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
