"""``obliviate ledger``: check and list a store's request ledger."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from obliviate.cli.common import clean_errors

ledger_app = typer.Typer(name="ledger", no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False,
                         help="The hash-chained request ledger of a store.")


@ledger_app.command("verify")
@clean_errors
def verify(store: Path = typer.Option(..., "--store", help="The store folder.")) -> None:
    """Recompute the hash chain and check every request against it; exit 2 if it was edited."""
    from obliviate.engine.sisa import verify_store_ledger

    typer.echo(json.dumps(verify_store_ledger(store).to_dict(), indent=2))


@ledger_app.command("list")
@clean_errors
def list_requests(
    store: Path = typer.Option(..., "--store", help="The store folder."),
    status: str | None = typer.Option(None, help="Only requests with this status (received, applying, applied, failed)."),
) -> None:
    """Every request with its status, versions and timings, as JSON."""
    from obliviate.engine.ledger import STATUSES, Ledger
    from obliviate.errors import ConfigError, LedgerError

    if status is not None and status not in STATUSES:
        raise ConfigError(f"--status must be one of {', '.join(STATUSES)}; got {status!r}.")
    path = store / "ledger.sqlite"
    if not path.is_file():
        raise LedgerError(f"No ledger at {path}. Is {store} a store made by `obliviate sisa train`?")
    with Ledger(path) as ledger:
        typer.echo(json.dumps([r.to_dict() for r in ledger.requests(status=status)], indent=2))
