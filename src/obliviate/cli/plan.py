"""``obliviate plan``, ``obliviate handle`` and ``obliviate certificate verify``: requests to certificates."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer

from obliviate.fileio import atomic_write_json

from obliviate.cli.common import clean_errors, setup_logging

certificate_app = typer.Typer(name="certificate", no_args_is_help=True, add_completion=False,
                              pretty_exceptions_enable=False, help="Check signed certificates.")

REQUEST = typer.Argument(..., help="The request (JSON; see examples/requests/ and `obliviate plan --schema`).")
DEPLOYMENTS = typer.Option(None, "--deployments", help="A JSON/YAML deployments file. [default: the built-in ones: "
                           "digits-sisa, digits-classifier, persons-lm]")
KEY_FILE = typer.Option(None, "--key-file", help="The Ed25519 signing key, kept outside every store. [default: "
                        "$OBLIVIATE_LEDGER_KEY, else ~/.config/obliviate/keys/ledger-ed25519.pem; "
                        "created on first use]")


def _echo(obj: Any) -> None:
    typer.echo(json.dumps(obj, indent=2, default=str))


@clean_errors
def plan(
    request: Path = typer.Argument(None, help="The request (JSON; see examples/requests/)."),
    deployments: Path | None = DEPLOYMENTS,
    explain: bool = typer.Option(False, "--explain", help="Print the reasoning (table row, steps, risks) as text."),
    schema: bool = typer.Option(False, "--schema", help="Print the request's JSON Schema and exit."),
    table: bool = typer.Option(False, "--table", help="Print the decision table (Markdown) and exit."),
    out: Path | None = typer.Option(None, "--out", help="Also write the plan as JSON to this file."),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Log what happens."),
) -> None:
    """Decide whether removal and suppression are necessary and sufficient, and plan the steps."""
    _plan(request, deployments, explain, schema, table, out, verbose)


def _plan(request: Path | None, deployments: Path | None, explain: bool, schema: bool, table: bool,
          out: Path | None, verbose: bool) -> None:
    from obliviate.errors import ConfigError
    from obliviate.policy import Deployments, load_request, make_plan, request_schema
    from obliviate.policy.table import table_markdown

    setup_logging(verbose)
    if schema:
        _echo(request_schema())
        return
    if table:
        typer.echo(table_markdown())
        return
    if request is None:
        raise ConfigError("Give the request file: obliviate plan REQUEST.json (examples in examples/requests/).")
    p = make_plan(load_request(request), Deployments.load(deployments))
    doc = p.to_dict()
    if out is not None:
        if out.is_dir():
            raise ConfigError(f"--out {out} is a folder; give the file to write the plan to, e.g. {out / 'plan.json'}.")
        try:
            atomic_write_json(out, doc)
        except OSError as exc:
            raise ConfigError(f"--out {out} cannot be written ({exc.strerror}); choose a file you can write.") from None
    if explain:
        typer.echo("\n".join(p.explain()))
    else:
        _echo(doc)


def bench_auditor(plan: Any, step: Any, workdir: Path) -> dict[str, Any]:
    """Approximate removal on the bench's classifier, then a small strong audit (U-LiRA, LiRA).

    Runs ``obliviate bench`` with the request's ids as the forget set and the step's method,
    then :func:`obliviate.bench.audit.run_audit` with few replicas (the deployment's settings).
    """
    import hashlib

    from obliviate.bench.audit import AuditSettings, run_audit
    from obliviate.bench.runner import run_bench, write_reports
    from obliviate.config import validate
    from obliviate.policy.certificate import sha256_json
    from obliviate.tasks.classification import BenchConfig

    s = step.settings
    method = str(s.get("method", "finetune"))
    if plan.deployment.model != "classifier":
        return {"method": method, "unsupported": f"the built-in strong audit covers classifiers trained by the "
                f"bench; deployment {plan.deployment.name!r} is a {plan.deployment.model!r} model, whose audits "
                "(obliviate bench --task lm) are not wired into handle yet"}
    folder = workdir / plan.deployment.name / plan.request.request_id
    folder.mkdir(parents=True, exist_ok=True)
    ids = folder / "forget.txt"
    ids.write_text("\n".join(plan.request.what.ids) + "\n")
    cfg = validate(BenchConfig, {"dataset": plan.deployment.dataset, "forget": f"ids:{ids}", "methods": [method],
                                 "seeds": [0], "out": str(folder / "run"), "progress": False, "threads": 1,
                                 "cache_dir": str(workdir / "cache"),
                                 **({"recipe": {"epochs": int(s["epochs"])}} if "epochs" in s else {})},
                   source="the approximate step's bench config")
    result = run_bench(cfg)
    write_reports(result, folder / "run")
    audit = run_audit(folder / "run", AuditSettings(attacks=("ulira", "lira"), replicas=int(s.get("replicas", 4)),
                                                    ulira_repeats=int(s.get("ulira_repeats", 2)), chunk=4,
                                                    threads=1))
    (folder / "run" / "audit.json").write_text(json.dumps(audit, indent=2, default=str))
    row = audit["methods"][method]
    orig = next((r for r in result.records if r["method"] == "original"), {})
    after = next((r for r in result.records if r["method"] == method), {})
    return {"method": method, "replicas": audit["replicas"],
            "ulira_accuracy": float(row["ulira"]["mean_accuracy"]), "lira_auc": float(row["lira"]["online"]["auc"]),
            "caught_by": list((row.get("verdict") or {}).get("caught_text", [])),
            "forget_accuracy": after.get("forget_acc"),
            "retain_accuracy": after.get("retain_acc"), "test_accuracy": after.get("test_acc"),
            "data_fingerprint": orig.get("data_fingerprint") or result.meta.get("data_fingerprint"),
            "audit_sha256": sha256_json(json.loads(json.dumps(audit, default=str))),
            "results_sha256": "sha256:" + hashlib.sha256((folder / "run" / "results.json").read_bytes()).hexdigest(),
            "run": str(folder / "run"),
            "models_note": "the bench keeps no weights file of the original or the unlearned model; the hashes of "
                           "the run's results.json and audit.json stand for them"}


@clean_errors
def handle(
    request: Path = REQUEST,
    deployments: Path | None = DEPLOYMENTS,
    workdir: Path = typer.Option(Path("obliviate-work"), "--workdir", help="Where the built-in deployments' stores "
                                 "and runs live (created; a SISA store is trained there on first use)."),
    out: Path = typer.Option(Path("certificate"), "--out", help="Folder for certificate.json and certificate.html."),
    key_file: Path | None = KEY_FILE,
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Log what happens."),
) -> None:
    """Run the plan and its audits, and write a signed certificate (JSON and HTML)."""
    _handle(request, deployments, workdir, out, key_file, verbose)


def _handle(request: Path, deployments: Path | None, workdir: Path, out: Path, key_file: Path | None,
            verbose: bool) -> None:
    from obliviate.engine.keys import SigningKey
    from obliviate.policy import Deployments, handle as run_handle, load_request, make_plan

    setup_logging(verbose)
    p = make_plan(load_request(request), Deployments.load(deployments))
    key = SigningKey.load_or_create(key_file)
    done = run_handle(p, workdir=workdir, key=key, auditor=bench_auditor, out=out)
    c = done.certificate
    _echo({"certificate": str(done.json_path), "html": str(done.html_path), "outcome": c["outcome"],
           "statement": c["statement"], "steps": [{"kind": s["kind"], "label": s["label"]} for s in c["steps"]],
           "deadline": c["deadline"]["due"], "key_fingerprint": c["key_fingerprint"]})


@certificate_app.command("verify")
@clean_errors
def verify(
    file: Path = typer.Argument(..., help="certificate.json as written by `obliviate handle`."),
    expect_key: str | None = typer.Option(None, "--expect-key", help="The operator's key fingerprint (sha256:...); "
                                          "without it (or --key-file) only the certificate's own signature is "
                                          "checked."),
    key_file: Path | None = typer.Option(None, "--key-file", help="The operator's key file: check against its "
                                         "public key."),
) -> None:
    """Check a certificate alone: schema, signature, key and embedded receipts; exit 2 on any edit."""
    from obliviate.engine.keys import SigningKey
    from obliviate.policy import load_certificate, verify_certificate

    expected: Any = expect_key
    if key_file is not None:
        expected = SigningKey.load(key_file).public
    summary = verify_certificate(load_certificate(file), expected_key=expected)
    if not summary["signer_checked"]:
        typer.echo("warning: no --expect-key given: the certificate is unedited since it was signed, but not shown "
                   "to be signed by your operator's key", err=True)
    _echo({"ok": True, **summary})


@certificate_app.command("schema")
def schema() -> None:
    """Print the certificate's JSON Schema."""
    from obliviate.policy import certificate_schema

    _echo(certificate_schema())


def register(app: typer.Typer) -> None:
    """Add ``plan``, ``handle`` and ``certificate verify`` to the ``obliviate`` app."""
    app.command("plan")(plan)
    app.command("handle")(handle)
    app.add_typer(certificate_app, name="certificate")


__all__ = ["bench_auditor", "certificate_app", "handle", "plan", "register", "verify"]
