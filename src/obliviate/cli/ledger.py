"""``obliviate ledger``: check and list a store's signed request ledger."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from obliviate.cli.common import clean_errors

ledger_app = typer.Typer(name="ledger", no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False,
                         help="The signed, hash-chained request ledger of a store.")


@ledger_app.command("verify")
@clean_errors
def verify(
    store: Path | None = typer.Option(None, "--store", help="The store folder. Without it, only the receipts' own "
                                      "signatures are checked (what a requester can do without the store)."),
    receipts: list[Path] | None = typer.Option(None, "--receipt", help="A receipt printed by `obliviate sisa forget` "
                                               "(repeatable): its request must be in the ledger, unaltered and applied."),
    key_file: Path | None = typer.Option(None, "--key-file", help="The signing key the ledger must verify with. "
                                         "[default: the receipts' key, else the default key file if present]"),
    expect_key: str | None = typer.Option(None, "--expect-key", help="The key fingerprint (sha256:...) the operator "
                                          "published; receipts and ledger must be signed by it."),
) -> None:
    """Check every entry's hash and signature, the heads the model versions recorded, and each
    receipt; exit 2 naming the first thing that was edited, erased, truncated or swapped."""
    from obliviate.engine.sisa import verify_store_ledger
    from obliviate.engine.sisa.receipts import load_receipt, verify_receipt
    from obliviate.errors import ConfigError

    if store is None:
        if not receipts:
            raise ConfigError("Give --store DIR (to check its ledger), --receipt FILE (to check a receipt), or both.")
        checked = []
        for path in receipts:
            doc = load_receipt(path)
            key = verify_receipt(doc, expected_fingerprint=expect_key, source=f"receipt {path}")
            checked.append({"receipt": str(path), "request_id": doc["request_id"], "status": doc.get("status"),
                            "ledger_id": doc["ledger_id"], "head": doc["head"]["seq"],
                            "key_fingerprint": key.fingerprint})
        typer.echo(json.dumps({"ok": True, "checked": "the receipts' signatures only; add --store to check that "
                               "the ledger still holds each request", "receipts": checked}, indent=2))
        return
    report = verify_store_ledger(store, key_file=key_file, receipts=receipts or [], expected_fingerprint=expect_key)
    typer.echo(json.dumps(report.to_dict(), indent=2))


@ledger_app.command("list")
@clean_errors
def list_requests(
    store: Path = typer.Option(..., "--store", help="The store folder."),
    status: str | None = typer.Option(None, help="Only requests with this status (received, applying, applied, failed)."),
) -> None:
    """Every request with its status, versions and timings, as JSON."""
    from obliviate.engine.ledger import STATUSES, Ledger
    from obliviate.errors import ConfigError

    if status is not None and status not in STATUSES:
        raise ConfigError(f"--status must be one of {', '.join(STATUSES)}; got {status!r}.")
    with Ledger(store / "ledger.sqlite", create=False) as ledger:
        typer.echo(json.dumps([r.to_dict() for r in ledger.requests(status=status)], indent=2))
