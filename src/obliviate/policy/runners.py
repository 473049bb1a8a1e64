"""One runner per intervention: each carries out one step of a plan and returns its record.

:data:`RUNNERS` maps a step's ``intervention`` to its runner (a registry: nothing branches on
step kinds). A runner returns a :class:`~obliviate.policy.certificate.StepRecord`: its label
(exact; approximate with the measured audit; suppression with measured coverage and
over-refusal), measurements, lineage and problems.

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
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from obliviate.engine.keys import SigningKey
from obliviate.policy.certificate import StepRecord, sha256_json
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


__all__ = ["Auditor", "GUARD_COVERAGE_PASS", "GUARD_OVER_REFUSAL_MAX", "HandleContext", "RUNNERS", "Runner",
           "run_approximate", "run_guards", "run_sisa"]
