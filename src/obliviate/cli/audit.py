"""``obliviate audit``: strong membership audits of a classifier bench run."""

from __future__ import annotations

from pathlib import Path

import typer

from obliviate.cli.common import clean_errors, setup_logging


@clean_errors
def audit(
    run: Path = typer.Option(..., "--run", help="Output folder of `obliviate bench` (holds results.json and config.json)."),
    attacks: str = typer.Option("all", help="Comma-separated names of registered attacks (population, lira, ulira, challenge, relearn), or all."),
    replicas: int = typer.Option(16, help="Models per side: retrained, trained-then-unlearned per method, and the retrain oracle."),
    methods: str | None = typer.Option(None, help="Comma-separated methods of the run to audit. [default: all of them; original and retrain always]"),
    seed: int | None = typer.Option(None, help="Which of the run's seeds (its forget set) to audit. [default: the first]"),
    relearn_steps: int = typer.Option(20, "--relearn-steps", help="Adam steps of the relearning attack."),
    executor: str = typer.Option("serial", help="Where replica jobs run: serial, process or ray."),
    workers: int | None = typer.Option(None, help="Worker processes (--executor process) or CPUs of a local Ray instance (--executor ray). [default: all cores]"),
    ray_address: str | None = typer.Option(None, "--ray-address", help="Join this Ray cluster (host:port, ray://host:10001 or 'auto') instead of starting a local one."),
    chunk: int = typer.Option(8, help="Replicas trained together in one job."),
    threads: int | None = typer.Option(None, help="Torch CPU threads (1 is fastest for small models). [default: the run's]"),
    device: str | None = typer.Option(None, help="Torch device (cpu, cuda). [default: the run's]"),
    precision: str = typer.Option("float32", help="Replica training precision: float32, or bfloat16 (matrix multiplies in bfloat16, float32 master weights)."),
    cache_dir: str | None = typer.Option(None, "--cache-dir", help="Model cache for replicas and memorisation scores. [default: the run's, else ~/.cache/obliviate/models or OBLIVIATE_CACHE]"),
    no_cache: bool = typer.Option(False, "--no-cache", help="Retrain replicas (and recompute scores) instead of reusing cached ones; write nothing to the cache."),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Show progress bars on stderr."),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Log what happens."),
) -> None:
    """Train replica models and run LiRA, U-LiRA, the challenge score and relearning on a bench run."""
    from obliviate.bench.audit import AuditSettings, parse_attacks, run_audit, write_audit
    from obliviate.progress import get_progress
    from obliviate.report.audit import audit_markdown

    setup_logging(verbose)
    chosen = None if methods is None else tuple(m.strip() for m in methods.split(",") if m.strip())
    settings = AuditSettings(attacks=parse_attacks(attacks), replicas=replicas, methods=chosen, seed=seed,
                             relearn_steps=relearn_steps, executor=executor, workers=workers, ray_address=ray_address,
                             chunk=chunk, threads=threads, device=device, precision=precision, use_cache=not no_cache,
                             cache_dir=cache_dir)
    result = run_audit(run, settings, progress=get_progress(progress))
    paths = write_audit(run, result)
    typer.echo(audit_markdown(result).replace("<!-- obliviate-audit:start -->\n", "")
               .replace("\n<!-- obliviate-audit:end -->", ""))
    typer.echo(f"Audit: {paths['audit']}\nReport: {paths['html']}")
