"""From a request and its deployment to a plan: the decision, the steps, their guarantees and risks.

:func:`make_plan` asks the decision table (:mod:`obliviate.policy.table`) whether removal and
suppression are each necessary and sufficient, then writes steps from what the named deployment
supports (:data:`obliviate.policy.deployments.REMOVAL_BY_MODEL`): exact deletion for a SISA store,
a summation-form estimator or a retrieval datastore; otherwise an approximate method followed by
a strong audit; guards where outputs must be kept clean. Where the request cannot be honoured as
asked (no way to suppress on released weights, a concept too fuzzy to scope, a deployment
without guards), the plan lists it under ``problems`` instead of leaving it out.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from obliviate.audit.attacks import Thresholds
from obliviate.policy.deployments import Deployment, Deployments
from obliviate.policy.request import Deadline, PolicyRequest, TargetKind
from obliviate.policy.table import MISMATCHES, Decision, decide

#: a concept or capability described by fewer examples than this (and no rows) is too fuzzy to scope.
MIN_CONCEPT_EXAMPLES = 3
#: an approximate removal passes its audit if U-LiRA cannot tell it from retraining better than this
#: (0.5 is chance) and no other strong attack catches it: the audit's own thresholds
#: (:class:`obliviate.audit.attacks.Thresholds`). The certificate quotes the measured values either way.
ULIRA_PASS = Thresholds().ulira_accuracy

#: residual risks each kind of step leaves, in terms of the mismatches (quoted on the certificate).
STEP_RISKS: dict[str, tuple[str, ...]] = {
    "exact": ("M2: the model may still produce similar content from latent information and prompts",
              "M3: the content may be recovered from context supplied at inference",
              "copies outside the model are not covered: the data file, backups, logs, released copies"),
    "approximate": ("not exact: the weights are only as close to retraining as the measured audit shows",
                    "M3: the forget set's influence may come back from context or a few relearning steps",
                    "M5: utility on retained data may have shifted"),
    "suppression": ("M1: the information stays in the weights; anyone with the weights, or who evades the "
                    "filters, can extract it",
                    "M3: coverage holds for the attack families measured only",
                    "M5: guards refuse some look-alike requests (over-refusal)"),
}


@dataclass(frozen=True)
class Step:
    """One intervention of a plan."""

    name: str
    kind: str            # exact | approximate | suppression
    intervention: str    # the runner that carries it out (see obliviate.policy.handle.RUNNERS)
    guarantee: str
    residual_risks: tuple[str, ...]
    settings: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["residual_risks"] = list(self.residual_risks)
        return d


@dataclass(frozen=True)
class Plan:
    """What will be done about a request, and why."""

    request: PolicyRequest
    deployment: Deployment
    access: str
    decision: Decision
    steps: tuple[Step, ...]
    problems: tuple[str, ...]
    notes: tuple[str, ...]
    deadline: Deadline

    @property
    def honourable(self) -> bool:
        """False when the plan already knows the request cannot be honoured as asked."""
        return not self.problems

    def explain(self) -> list[str]:
        lines = [f"request {self.request.request_id}: {self.request.who.value} asks, for {self.request.why.value}, "
                 f"about {self.request.what.kind.value} ({self.request.what.summary()}) on deployment "
                 f"{self.deployment.name!r} ({self.deployment.model}, users have {self.access} access)",
                 f"deadline: {self.deadline.text}", "decision table:"]
        lines += ["  " + line for line in self.decision.explain()]
        lines.append("steps:" if self.steps else "steps: none")
        for i, s in enumerate(self.steps, 1):
            lines.append(f"  {i}. {s.name} [{s.kind}] via {s.intervention}: {s.guarantee}")
            lines += [f"     residual risk: {r}" for r in s.residual_risks]
        lines += [f"note: {n}" for n in self.notes]
        lines += [f"cannot be honoured as asked: {p}" for p in self.problems]
        return lines

    def to_dict(self) -> dict[str, Any]:
        return {"request_id": self.request.request_id, "deployment": self.deployment.model_dump(mode="json"),
                "access": self.access, "decision": self.decision.to_dict(),
                "steps": [s.to_dict() for s in self.steps], "problems": list(self.problems),
                "notes": list(self.notes), "deadline": self.deadline.to_dict(), "honourable": self.honourable}


def _risks(kind: str, decision: Decision) -> tuple[str, ...]:
    risks = list(STEP_RISKS[kind])
    have = {r.split(":", 1)[0] for r in risks}
    risks += [f"{m}: {MISMATCHES[m]}" for m in decision.row.mismatches
              if m not in have and (m != "M1" or kind == "suppression")]  # M1 is about guards
    return tuple(risks)


def make_plan(request: PolicyRequest, deployments: Deployments | None = None) -> Plan:
    """The plan for ``request`` (see the module docstring). Unknown deployment: UnknownNameError."""
    deployments = deployments or Deployments()
    dep = deployments.get(request.deployment)
    access = (request.access or dep.access).value
    notes: list[str] = []
    problems: list[str] = []
    if request.access is not None and request.access != dep.access:
        notes.append(f"the request says users have {request.access.value} access; the deployment file says "
                     f"{dep.access.value}; the plan follows the request")
    decision = decide(request, access)
    row = decision.row
    what = request.what
    selects_rows = bool(what.ids or what.subjects)
    steps: list[Step] = []
    if what.kind in (TargetKind.concept, TargetKind.capability) and not selects_rows \
            and len(what.examples) < MIN_CONCEPT_EXAMPLES:
        problems.append(f"the {what.kind.value} is too fuzzy to scope: {len(what.examples)} describing example(s), "
                        f"fewer than {MIN_CONCEPT_EXAMPLES}, and no ids or subjects; nothing can be selected, "
                        "removed or guarded reliably. Send more examples of what is meant, and of what is not.")
        return Plan(request, dep, access, decision, (), tuple(problems), tuple(notes), request.deadline())
    if not decision.removal and row.removal_necessary == "maybe":
        notes.append("removal is maybe necessary: not planned; the decision rests on suppression")
    if decision.removal:
        if selects_rows:
            path = dep.removal
            guarantee = path.guarantee + ("" if path.kind == "exact" else
                                          f"; it passes if U-LiRA accuracy <= {ULIRA_PASS} (0.5 is chance) and no "
                                          "strong attack catches it")
            steps.append(Step(f"remove from {dep.name}", path.kind, path.intervention, guarantee,
                              _risks(path.kind, decision), dict(dep.settings)))
            if access == "weights":
                notes.append("the weights were released: copies downloaded before this request keep the data; "
                             "removal changes the copy published from now on")
        else:
            notes.append(f"removal is {row.removal_necessary} necessary, but a {what.kind.value} described by "
                         "examples names no training row: there is nothing to delete")
            if row.removal_necessary == "yes":
                problems.append("removal is necessary but the request names no training row")
    if decision.suppression:
        if access == "weights":
            msg = ("suppression is needed but users hold the weights: guards run only where the operator serves "
                   "outputs and cannot bind a released model (M1)")
            (problems if row.suppression_necessary == "yes" else notes).append(msg)
        elif not dep.guards:
            msg = f"suppression is {row.suppression_necessary} necessary, but deployment {dep.name!r} serves outputs " \
                  "without guards"
            (problems if row.suppression_necessary == "yes" else notes).append(msg)
        else:
            steps.append(Step(f"guard the outputs of {dep.name}", "suppression", "guards",
                              "suppression: outputs are filtered by guards compiled from the request; measured "
                              "coverage (share of leaking answers blocked) and over-refusal are reported",
                              _risks("suppression", decision), dict(dep.settings)))
    if not steps and not problems:
        problems.append("no intervention of this deployment applies to the request")
    return Plan(request, dep, access, decision, tuple(steps), tuple(problems), tuple(notes), request.deadline())


__all__ = ["MIN_CONCEPT_EXAMPLES", "Plan", "STEP_RISKS", "Step", "ULIRA_PASS", "make_plan"]
