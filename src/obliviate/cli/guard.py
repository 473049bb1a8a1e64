"""``obliviate guards`` (list the registered guards) and ``obliviate guard eval`` (measure them)."""

from __future__ import annotations

import typer

from obliviate.cli.common import clean_errors, setup_logging

guard_app = typer.Typer(help="Suppression guards: keep forgotten content out of outputs (not out of weights).",
                        no_args_is_help=True, add_completion=False)


@clean_errors
def guards(verbose: bool = typer.Option(False, "--verbose", "-v", help="Also show each guard's library and defaults.")) -> None:
    """List every registered suppression guard with one line each."""
    import dataclasses

    from obliviate.suppression import GUARDS

    for name, cls in GUARDS.items():
        stages = "+".join(cls.stages)
        typer.echo(f"{name:<14} {stages:<13} {cls.summary}")
        if verbose:
            typer.echo(f"{'':<14} library: {cls.library}  scored: {cls.scored}")
            typer.echo(f"{'':<14} defaults: {dataclasses.asdict(cls.Config())}")


@guard_app.command("list")
@clean_errors
def list_guards(verbose: bool = typer.Option(False, "--verbose", "-v")) -> None:
    """Same as ``obliviate guards``."""
    guards(verbose=verbose)


def _csv(text: str | None, default: tuple[str, ...]) -> tuple[str, ...]:
    if text is None or text == "all":
        return default
    return tuple(t.strip() for t in text.split(",") if t.strip())


@guard_app.command("eval")
@clean_errors
def eval_cmd(
    task: str = typer.Option("persons", help="persons (generated corpus + trained GPT-2) or tofu (files in --data-dir)."),
    out: str = typer.Option("runs/guards", help="Output folder (guard_results.json, report.md, report.html)."),
    data_dir: str = typer.Option(None, help="Folder of the TOFU files (--task tofu); by default ../shared/data/tofu, "
                                             "then $OBLIVIATE_DATA/tofu and the shared/ folder beside the checkout."),
    people: int = typer.Option(20, help="Persons corpus size."),
    forget_fraction: float = typer.Option(0.1, help="Share of the persons forgotten."),
    families: str = typer.Option("all", help="Comma-separated attack families, or all."),
    pipelines: str = typer.Option("all", help="Comma-separated guard pipelines, or all."),
    model: bool = typer.Option(True, help="Also evaluate the trained persons model (not only the adversarial generator)."),
    encoder: bool = typer.Option(True, help="Include the sentence-encoder guard."),
    epochs: int = typer.Option(60, help="Training epochs of the persons model."),
    seed: int = typer.Option(0),
    threads: int = typer.Option(1, help="torch CPU threads."),
    cache: bool = typer.Option(True, help="Reuse trained models."),
    verbose: bool = typer.Option(False, "--verbose", "-v"),
) -> None:
    """Measure the guards against attack families, with over-refusal and latency (suppression only)."""
    import torch

    from obliviate.suppression.attacks import FAMILIES
    from obliviate.suppression.evaluate import PIPELINES, GuardEvalConfig, run_guard_eval
    from obliviate.suppression.report import write_reports

    setup_logging(verbose)
    torch.set_num_threads(threads)
    cfg = GuardEvalConfig(task=task, n_people=people, forget_fraction=forget_fraction, seed=seed,
                          data_dir=data_dir, families=_csv(families, FAMILIES),
                          pipelines=_csv(pipelines, tuple(PIPELINES)), model=model and task == "persons",
                          epochs=epochs, use_cache=cache, encoder=encoder)
    result = run_guard_eval(cfg)
    paths = write_reports(result, out)
    for r in result.rows:
        if r["family"] == "all":
            typer.echo(f"{r['generator']:<14} {r['guard']:<24} leak off {r['leak_off']:.3f} on {r['leak_on']:.3f}  "
                       f"over-refusal {r['over_refusal']:.3f}  p95 {r['p95_ms']:.2f} ms  [suppression]")
    typer.echo(f"wrote {paths['json']}, {paths['md']}, {paths['html']} ({result.meta['wall_s']:.1f} s)")
