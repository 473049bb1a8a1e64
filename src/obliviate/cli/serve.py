"""``obliviate serve``: the deletion service (FastAPI on uvicorn) or, with ``--worker``, its worker.

``cli`` and ``service`` are siblings in the layer table (tests/test_layers.py), so this module
does not import :mod:`obliviate.service`: it hands the settings over as ``OBLIVIATE_SERVICE_*``
variables and names the service by string, to uvicorn's factory loader
(``obliviate.service.app:app_from_env``) and to the worker's module entry point
(``python -m obliviate.service.worker``).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import typer

from obliviate.cli.common import clean_errors, setup_logging
from obliviate.errors import ConfigError

APP = "obliviate.service.app:app_from_env"
WORKER = "obliviate.service.worker"
AUDITOR = "obliviate.cli.plan:bench_auditor"  # the strong audit `obliviate handle` uses


@clean_errors
def serve(
    port: int = typer.Option(8000, "--port", help="TCP port on 127.0.0.1 (or --host)."),
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on."),
    store: Path = typer.Option(Path("obliviate-service"), "--store", help="The service folder: requests.sqlite and "
                               "the deployments' stores (created)."),
    keys: Path = typer.Option(Path("service-keys.json"), "--keys", help="API keys with roles: {'keys': [{'key': ..., "
                              "'name': ..., 'role': 'requester|reviewer|operator|auditor'}]}."),
    deployments: Path | None = typer.Option(None, "--deployments", help="A deployments file [default: built-in]."),
    key_file: Path | None = typer.Option(None, "--key-file", help="The Ed25519 signing key (outside --store) "
                                         "[default: $OBLIVIATE_LEDGER_KEY, else ~/.config/obliviate/keys/...]."),
    worker: bool = typer.Option(False, "--worker", help="Run the worker (claims and runs queued requests) instead "
                                "of the web app."),
    until_empty: bool = typer.Option(False, "--until-empty", help="With --worker: stop when the queue is empty."),
    auditor: str = typer.Option(AUDITOR, "--auditor", help="module:function, the strong audit of approximate "
                                "steps ('none': record them as not honoured, for want of an audit)."),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Log what happens."),
) -> None:
    """Serve the deletion service (OpenAPI at /openapi.json, dashboard at /dashboard), or run its worker."""
    setup_logging(verbose)
    if not keys.is_file():
        raise ConfigError(f"No API keys file at {keys}. Write {{'keys': [{{'key': ..., 'name': ..., 'role': "
                          "...}]}} (mode 600) and pass it with --keys.")
    if not 0 < port < 65536:
        raise ConfigError(f"The '--port' option must be in 1..65535; got {port} instead.")
    env = {"OBLIVIATE_SERVICE_STORE": str(store.resolve()), "OBLIVIATE_SERVICE_KEYS": str(keys.resolve())}
    if deployments is not None:
        env["OBLIVIATE_SERVICE_DEPLOYMENTS"] = str(deployments.resolve())
    if key_file is not None:
        env["OBLIVIATE_SERVICE_SIGNING_KEY"] = str(key_file.resolve())
    if auditor != "none":
        env["OBLIVIATE_SERVICE_AUDITOR"] = auditor
    os.environ.update(env)
    if worker:
        args = [sys.executable, "-m", WORKER] + (["--until-empty"] if until_empty else [])
        raise typer.Exit(subprocess.call(args, env=os.environ.copy()))
    import uvicorn

    uvicorn.run(APP, factory=True, host=host, port=port, log_level="info" if verbose else "warning")


def register(app: typer.Typer) -> None:
    app.command("serve")(serve)


__all__ = ["register", "serve"]
