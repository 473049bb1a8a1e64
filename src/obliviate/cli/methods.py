"""``obliviate methods``: list the registered removal methods."""

from __future__ import annotations

import typer

from obliviate.cli.common import clean_errors


@clean_errors
def methods(verbose: bool = typer.Option(False, "--verbose", "-v", help="Also show each method's paper and defaults.")) -> None:
    """List every registered removal method with one line each."""
    import obliviate.removal  # noqa: F401  (registers methods)
    from obliviate.removal.base import METHODS

    for name, cls in METHODS.items():
        typer.echo(f"{name:<18} {cls.kind:<12} {cls.summary}")
        if verbose:
            typer.echo(f"{'':<18} paper: {cls.paper}")
            typer.echo(f"{'':<18} defaults: {cls.Config().to_dict()}  tasks: {', '.join(cls.tasks)}")
