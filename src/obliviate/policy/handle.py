"""Carrying out a plan, then a signed certificate.

:func:`handle` runs every step of a :class:`~obliviate.policy.plan.Plan` through the runner its
``intervention`` names in :data:`obliviate.policy.runners.RUNNERS`, collects what each measured,
records the request's state changes (pending, in progress, completed), and signs a certificate
(:mod:`obliviate.policy.certificate`); with ``out`` it also writes it as JSON and HTML.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from obliviate.engine.keys import SigningKey
from obliviate.engine.ledger import utc_now
from obliviate.errors import ConfigError
from obliviate.policy.certificate import StepRecord, sha256_json, sign_certificate
from obliviate.policy.plan import Plan
from obliviate.policy.runners import RUNNERS, Auditor, HandleContext

log = logging.getLogger(__name__)


# --------------------------------------------------------------------------- the certificate
@dataclass(frozen=True)
class Handled:
    """The signed certificate and where it was written."""

    certificate: dict[str, Any]
    json_path: Path | None = None
    html_path: Path | None = None


def _statement(outcome: str, plan: Plan, steps: list[StepRecord], problems: list[str]) -> str:
    done = "; ".join(s.label for s in steps if s.honoured) or "nothing"
    if outcome == "honoured":
        return (f"The request was honoured as planned: {done}. Removal sufficient: "
                f"{plan.decision.row.removal_sufficient}; suppression sufficient: "
                f"{plan.decision.row.suppression_sufficient}; see the residual risks.")
    failed = problems or ["unknown"]
    return (f"The request was {outcome}. Done: {done}. Not achieved: " + "; ".join(p.rstrip(".") for p in failed) + ".")


def build_certificate(plan: Plan, records: list[StepRecord], ctx: HandleContext,
                      timings: dict[str, float], events: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    problems = list(plan.problems) + [p for r in records for p in r.problems]
    honoured = [r.honoured for r in records]
    if not problems and all(honoured):
        outcome = "honoured"
    elif any(honoured):
        outcome = "partly honoured"
    else:
        outcome = "not honoured"
    request = plan.request.model_dump(mode="json")
    risks = list(dict.fromkeys(r for rec in records for r in rec.residual_risks))
    lineage: dict[str, Any] = {"request_sha256": sha256_json(request),
                               "deployment_sha256": sha256_json(plan.deployment.model_dump(mode="json"))}
    for key in ("data_fingerprint", "model_before_sha256", "model_after_sha256", "ledger_id"):
        found = [rec.lineage[key] for rec in records if key in rec.lineage]
        if found:
            lineage[key] = found[0]
    entries = [rec.lineage["ledger_entries"] for rec in records if "ledger_entries" in rec.lineage]
    if entries:
        lineage["ledger_entries"] = entries
    deadline = plan.deadline
    doc = {"format": "obliviate-certificate-v1",
           "certificate_id": "cert-" + sha256_json([request, time.time()])[7:27],
           "issued_at": "", "request": request, "request_sha256": lineage["request_sha256"],
           "deployment": plan.deployment.model_dump(mode="json"), "decision": plan.decision.to_dict(),
           "outcome": outcome, "kinds": [r.kind for r in records],
           "statement": _statement(outcome, plan, records, problems),
           "steps": [r.model_dump(mode="json") for r in records], "problems": problems, "notes": list(plan.notes),
           "residual_risks": risks, "lineage": lineage, "timings": timings, "deadline": deadline.to_dict(),
           "answered_on_time": ctx.today <= deadline.due,
           "events": list(events or []) + [{"status": "completed", "at": utc_now(), "by": "obliviate handle",
                                            "why": f"{outcome}: {len(records)} step(s) run"}]}
    return sign_certificate(doc, ctx.key)


def handle(plan: Plan, *, workdir: str | os.PathLike[str], key: SigningKey,
           auditor: Auditor | None = None, out: str | os.PathLike[str] | None = None,
           today: dt.date | None = None) -> Handled:
    """Run ``plan``'s steps, then sign (and with ``out``, write JSON and HTML of) its certificate."""
    if not isinstance(key, SigningKey):
        raise ConfigError(f"The 'key' parameter of handle must be a SigningKey; got {type(key).__name__} instead.")
    work = Path(workdir)
    work.mkdir(parents=True, exist_ok=True)
    ctx = HandleContext(work, key, auditor, **({"today": today} if today is not None else {}))
    req = plan.request
    events = [{"status": "pending", "at": req.received.isoformat(), "by": req.who.value,
               "why": f"received: {req.why.value}"},
              {"status": "in progress", "at": utc_now(), "by": "obliviate handle",
               "why": f"plan of {len(plan.steps)} step(s); decision row {plan.decision.row.reason}/"
                      f"{'|'.join(plan.decision.row.target)}/{plan.decision.row.access}"}]
    t0 = time.perf_counter()
    records: list[StepRecord] = []
    timings: dict[str, float] = {}
    for i, step in enumerate(plan.steps, 1):
        ts = time.perf_counter()
        log.info("step %d: %s via %s", i, step.name, step.intervention)
        records.append(RUNNERS.get(step.intervention)(plan, step, ctx))
        timings[f"step_{i}_s"] = round(time.perf_counter() - ts, 3)
    timings["total_s"] = round(time.perf_counter() - t0, 3)
    cert = build_certificate(plan, records, ctx, timings, events)
    if out is None:
        return Handled(cert)
    from obliviate.policy.render import write_certificate

    json_path, html_path = write_certificate(cert, out)
    return Handled(cert, json_path, html_path)


__all__ = ["Handled", "build_certificate", "handle"]
