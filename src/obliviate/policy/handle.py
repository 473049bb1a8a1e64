"""Carrying out a plan: one runner per intervention, then a signed certificate.

:func:`handle` runs every step of a :class:`~obliviate.policy.plan.Plan` through the runner its
``intervention`` names in :data:`RUNNERS` (a registry: no branching on step kinds), collects
what each measured, and signs a certificate (:mod:`obliviate.policy.certificate`).

Runners on the built-in data:

* ``sisa-forget``: a SISA store on digits (trained into the work folder on first use, small);
  the request is recorded in the store's signed ledger, the affected shards are retrained, and
  the receipt goes into the certificate's lineage;
* ``approximate+audit``: needs an *auditor* (a callable given by the caller): the strong audit
  lives above this layer (:mod:`obliviate.bench.audit`); ``obliviate handle`` passes one.
  Without one, the step is recorded as not honoured: an approximate method without a measured
  audit is not evidence of anything;
* ``guards``: compiles the request into a protected set (:func:`obliviate.suppression.compile_persons`)
  and measures coverage and over-refusal with a small guard evaluation on the persons corpus.

``summation-forget`` and ``datastore-delete`` have no built-in deployment to run on yet; a
deployment naming them gets a step recorded as not carried out, with that reason.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from obliviate.engine.keys import SigningKey
from obliviate.engine.ledger import utc_now
from obliviate.errors import ConfigError
from obliviate.policy.certificate import StepRecord, sha256_json, sign_certificate
from obliviate.policy.plan import ULIRA_PASS, Plan, Step
from obliviate.registry import Registry

log = logging.getLogger(__name__)

#: a guard step passes if it blocks at least this share of leaking answers ...
GUARD_COVERAGE_PASS = 0.95
#: ... while refusing at most this share of look-alike (benign) requests.
GUARD_OVER_REFUSAL_MAX = 0.25

#: an auditor: (plan, step, workdir) -> measurements with at least ``ulira_accuracy``, ``method``,
#: ``replicas`` and ``caught_by`` (the strong attacks that tell the method from retraining, as
#: sentences); it may add ``lira_auc``, ``data_fingerprint``, ``audit_sha256``, ...
Auditor = Callable[[Plan, Step, Path], dict[str, Any]]


@dataclass
class HandleContext:
    """What runners share: where to work, the signing key, the auditor, today's date."""

    workdir: Path
    key: SigningKey
    auditor: Auditor | None = None
    today: dt.date = field(default_factory=lambda: dt.datetime.now(dt.timezone.utc).date())


Runner = Callable[[Plan, Step, HandleContext], StepRecord]
RUNNERS: Registry[Runner] = Registry("intervention runner")


def _record(step: Step, **kw: Any) -> StepRecord:
    return StepRecord(name=step.name, kind=step.kind, intervention=step.intervention, guarantee=step.guarantee,
                      residual_risks=list(step.residual_risks), **kw)


# --------------------------------------------------------------------------- exact: SISA
def _sisa_store(plan: Plan, step: Step, ctx: HandleContext) -> tuple[Any, dict[str, Any]]:
    """Open the deployment's store in the work folder, training a small one on first use."""
    from obliviate.data.source import DataSource
    from obliviate.engine.sisa import Sisa, SisaConfig
    from obliviate.engine.store import ModelStore
    from obliviate.tasks.classification import RecipeConfig

    store = ctx.workdir / plan.deployment.name
    s = step.settings
    if ModelStore(store).exists():
        return Sisa.open(store, key_file=ctx.key), {"trained_now": False}
    config = SisaConfig(shards=int(s.get("shards", 2)), slices=int(s.get("slices", 1)),
                        recipe=RecipeConfig(epochs=int(s.get("epochs", 4))).resolve(plan.deployment.dataset),
                        seed=int(s.get("seed", 0)))
    log.info("training the SISA store of %s into %s", plan.deployment.name, store)
    sisa = Sisa(config, store=store, key_file=ctx.key)
    sisa.fit(DataSource(dataset=plan.deployment.dataset, train_subset=s.get("train_subset")))
    return sisa, {"trained_now": True}


def run_sisa(plan: Plan, step: Step, ctx: HandleContext) -> StepRecord:
    t0 = time.perf_counter()
    what = plan.request.what
    sisa, info = _sisa_store(plan, step, ctx)
    with sisa:
        before = sisa.current()
        data = sisa.data_
        subject = what.subjects[0] if len(what.subjects) == 1 else None
        if what.ids:
            target: Any = list(what.ids)
        elif data.subjects is not None:
            target = plan.request.forget_request()
        else:
            return _record(step, label="exact removal not carried out", honoured=False, seconds=0.0,
                           problems=[f"the store's data ({plan.deployment.dataset}) records no data subjects, so "
                                     "a request by subject needs the example ids"])
        receipt = sisa.forget(target, subject=subject, reason=plan.request.why.value,
                              request_id=plan.request.request_id)
        after = sisa.current()
    doc = receipt.to_dict()
    honoured = receipt.status == "applied"
    label = (f"exact removal (SISA): {len(receipt.example_ids)} example(s) removed; shard(s) "
             f"{receipt.shards_retrained} retrained without them, model version {receipt.model_version_before} -> "
             f"{receipt.model_version_after}" if honoured else f"exact removal failed: {receipt.status} "
             f"({receipt.error})")
    lineage = {"store": str(sisa.files_.root), "data_fingerprint": data.fingerprint,
               "model_before_sha256": sha256_json(before), "model_after_sha256": sha256_json(after),
               "model_version_before": receipt.model_version_before, "model_version_after": receipt.model_version_after,
               "ledger_id": receipt.ledger_id, "ledger_entries": {"request": receipt.entry, "head": receipt.head},
               "receipt": doc, **info}
    return _record(step, label=label, honoured=honoured, lineage=lineage, seconds=time.perf_counter() - t0,
                   measurements={"work_fraction": receipt.work_fraction, "duplicate": receipt.duplicate,
                                 "example_ids": list(receipt.example_ids)},
                   problems=[] if honoured else [label])


# --------------------------------------------------------------------------- approximate + audit
def run_approximate(plan: Plan, step: Step, ctx: HandleContext) -> StepRecord:
    if ctx.auditor is None:
        return _record(step, label="approximate removal not carried out: no strong audit available", honoured=False,
                       problems=["an approximate method needs a strong audit to mean anything, and none was "
                                 "configured (obliviate handle provides one)"])
    t0 = time.perf_counter()
    m = ctx.auditor(plan, step, ctx.workdir)
    if m.get("unsupported"):
        return _record(step, label="approximate removal not carried out: no strong audit for this deployment",
                       honoured=False, measurements=m, seconds=time.perf_counter() - t0,
                       problems=[str(m["unsupported"])])
    ulira = m.get("ulira_accuracy")
    method = m.get("method", "?")
    if ulira is None or ulira != ulira:  # missing or NaN
        return _record(step, label=f"approximate removal ({method}); the audit measured nothing", honoured=False,
                       measurements=m, seconds=time.perf_counter() - t0,
                       problems=["the strong audit gave no U-LiRA accuracy"])
    lira = m.get("lira_auc")
    measured = f"U-LiRA accuracy {ulira:.2f} on the forget-set examples ({m.get('replicas', '?')} replicas per side" \
               + (f"; LiRA AUC {lira:.2f})" if lira is not None else ")")
    caught = [str(t) for t in m.get("caught_by", [])]
    passed = ulira <= ULIRA_PASS and not caught
    why = f"caught by {'; '.join(caught)}" if caught else f"U-LiRA accuracy {ulira:.2f} > {ULIRA_PASS}"
    label = (f"approximate removal ({method}); {measured}; no strong attack tells it from retraining at the "
             f"audit's thresholds (U-LiRA <= {ULIRA_PASS})" if passed else
             f"approximate removal ({method}) failed its audit: {measured}; {why}; an attacker tells it apart "
             "from retraining, so the request is not honoured as asked")
    lineage = {k: m[k] for k in ("data_fingerprint", "model_before_sha256", "model_after_sha256", "audit_sha256",
                                 "results_sha256", "run", "models_note") if k in m}
    return _record(step, label=label, honoured=passed, measurements=m, lineage=lineage,
                   seconds=time.perf_counter() - t0, problems=[] if passed else [label])


# --------------------------------------------------------------------------- suppression
def run_guards(plan: Plan, step: Step, ctx: HandleContext) -> StepRecord:
    from obliviate.data.persons import make_persons_corpus
    from obliviate.suppression import compile_persons
    from obliviate.suppression.evaluate import GuardEvalConfig, run_guard_eval

    t0 = time.perf_counter()
    s = step.settings
    if plan.deployment.dataset != "persons":
        return _record(step, label="suppression not carried out", honoured=False,
                       problems=[f"the built-in guard runner protects the persons corpus; deployment "
                                 f"{plan.deployment.name!r} is on {plan.deployment.dataset!r}"])
    n_people, fraction, seed = int(s.get("n_people", 20)), float(s.get("forget_fraction", 0.1)), int(s.get("seed", 0))
    corpus = make_persons_corpus(n_people, fraction, seed=seed)
    protected = compile_persons(plan.request.forget_request(), corpus)
    pipeline = str(s.get("pipeline", "lexical"))
    cfg = GuardEvalConfig(n_people=n_people, forget_fraction=fraction, seed=seed, model=False, encoder=False,
                          pipelines=(pipeline,))
    result = run_guard_eval(cfg)
    row = next(r for r in result.rows if r["family"] == "all")
    coverage, over = float(row["blocked"]), float(row["over_refusal"])
    passed = coverage >= GUARD_COVERAGE_PASS and over <= GUARD_OVER_REFUSAL_MAX
    families = sorted({r["family"] for r in result.rows} - {"all"})
    measured_people = sorted({ex.subject for ex in corpus.forget})
    same_people = sorted(plan.request.what.subjects) == measured_people
    measured = (f"coverage {coverage:.3f} of leaking answers blocked over {len(families)} attack families, "
                f"over-refusal {over:.3f} on look-alike requests (guard eval of the {pipeline!r} pipeline on the "
                "persons corpus's forget people, adversarial generator"
                + ("; they are the people this request names)" if same_people else
                   "; not the people this request names, so it is the pipeline's measured coverage, not this "
                   "request's)"))
    label = (f"suppression (guards: {pipeline}); {measured}; outputs filtered, the weights unchanged" if passed else
             f"suppression (guards: {pipeline}) below its thresholds: {measured}; needs coverage >= "
             f"{GUARD_COVERAGE_PASS} and over-refusal <= {GUARD_OVER_REFUSAL_MAX}")
    corpus_doc = {"n_people": n_people, "seed": seed, "faker": getattr(corpus, "faker_version", None)}
    lineage = {"protected_set_sha256": sha256_json(protected.to_dict()), "protected_facts": len(protected.facts),
               "protected_examples": len(protected.examples), "corpus": corpus_doc,
               "guard_eval_config": result.config}
    return _record(step, label=label, honoured=passed, lineage=lineage, seconds=time.perf_counter() - t0,
                   measurements={"coverage": coverage, "over_refusal": over,
                                 "over_refusal_generic": float(row["over_refusal_generic"]), "families": families,
                                 "n_attack_cases": result.meta.get("n_attack_cases"), "pipeline": pipeline,
                                 "measured_on_subjects": measured_people, "measured_on_request_subjects": same_people,
                                 "thresholds": {"coverage": GUARD_COVERAGE_PASS,
                                                "over_refusal": GUARD_OVER_REFUSAL_MAX}},
                   problems=[] if passed else [label])


def _no_runner(reason: str) -> Runner:
    def run(plan: Plan, step: Step, ctx: HandleContext) -> StepRecord:
        return _record(step, label=f"{step.kind} step not carried out", honoured=False, problems=[reason])

    return run


RUNNERS.register("sisa-forget", run_sisa)
RUNNERS.register("approximate+audit", run_approximate)
RUNNERS.register("guards", run_guards)
RUNNERS.register("summation-forget", _no_runner("no built-in runner for a summation-form deployment yet: call "
                                                 "obliviate.removal.exact.summation on your estimator"))
RUNNERS.register("datastore-delete", _no_runner("no built-in runner for a retrieval deployment yet: delete from "
                                                "your datastore with obliviate.removal.exact.retrieval"))


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
           "outcome": outcome, "kinds": [r.kind for r in records], "statement": _statement(outcome, plan, records, problems),
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


__all__ = ["Auditor", "GUARD_COVERAGE_PASS", "GUARD_OVER_REFUSAL_MAX", "Handled", "HandleContext", "RUNNERS",
           "build_certificate", "handle", "run_approximate", "run_guards", "run_sisa"]
