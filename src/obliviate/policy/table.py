"""The decision table: reason x target kind x access -> is removal / suppression necessary, sufficient?

One readable table, after the seed paper's per-case questions (Cooper et al., "Machine
Unlearning Doesn't Do What You Think"): "is removal necessary? sufficient? is suppression
necessary? sufficient?". Each row says why, in terms of the five mismatches (:data:`MISMATCHES`).
:func:`decide` picks the most specific row that matches (``*`` matches anything; among rows of
equal specificity the first wins) and says which rows it passed over. Nothing else in the
policy layer branches on a reason or a target kind.

Answers are ``yes``, ``no`` or ``maybe`` ("maybe sufficient": enough for the observed data, not
for what the model can produce from latent information or from context).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from obliviate.errors import ConfigError
from obliviate.policy.request import Access, PolicyRequest, Reason, TargetKind

YES, NO, MAYBE = "yes", "no", "maybe"
ANY = "*"

#: the seed paper's mismatches, as the certificate quotes them.
MISMATCHES: dict[str, str] = {
    "M1": "output suppression is not removal: the information stays in the weights and can be extracted "
          "(white-box access, filter evasion)",
    "M2": "removing observed data does not guarantee suppression: the model may still produce it from latent "
          "information and user prompts",
    "M3": "a model is not its outputs: checked outputs do not bound what it can produce, and context given at "
          "inference can bring knowledge back (in-context relearning)",
    "M4": "a model is not how its outputs are used: harm depends on downstream use (dual use, pieces combined)",
    "M5": "unlearning has side effects on what should stay (neighbouring knowledge, utility, over-refusal)",
}


@dataclass(frozen=True)
class DecisionRow:
    """One row: when it applies, the four answers, and the reasons."""

    reason: str
    target: tuple[str, ...]
    access: str
    removal_necessary: str
    removal_sufficient: str
    suppression_necessary: str
    suppression_sufficient: str
    rationale: str
    mismatches: tuple[str, ...] = ()
    case: str = ""  # the seed paper's case this row writes down, if any

    def matches(self, reason: str, target: str, access: str) -> bool:
        return ((self.reason in (ANY, reason)) and (ANY in self.target or target in self.target)
                and (self.access in (ANY, access)))

    @property
    def specificity(self) -> int:
        return (self.reason != ANY) + (ANY not in self.target) + (self.access != ANY)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["target"], d["mismatches"] = list(self.target), list(self.mismatches)
        return d


OBSERVED = (TargetKind.examples.value, TargetKind.data_subject.value)
LATENT = (TargetKind.concept.value, TargetKind.capability.value)
W, O = Access.weights.value, Access.outputs.value
R = Reason

#: the table, read top to bottom. Rows are data: add one here, nowhere else.
DECISION_TABLE: tuple[DecisionRow, ...] = (
    # -- personal data and other strictly forbidden observed data -------------------------------
    DecisionRow(R.erasure.value, OBSERVED, O, YES, MAYBE, MAYBE, NO,
                "Personal data the model was trained on must stop shaping it: removal is necessary, and is "
                "sufficient for the observed examples. It may not be for outputs: the model can still say what it "
                "infers about the person from correlated data, so guards are worth keeping where outputs are served. "
                "Guards alone are not enough: the data would stay in the weights.",
                ("M1", "M2", "M3"), case="strictly forbidden observed data: removal necessary, maybe sufficient"),
    DecisionRow(R.erasure.value, OBSERVED, W, YES, MAYBE, NO, NO,
                "Removal is necessary and maybe sufficient, as with outputs-only access; with released weights "
                "guards cannot bind anyone (they run at the operator's side only), and copies already downloaded "
                "keep the data.", ("M1", "M2"),
                case="strictly forbidden observed data: removal necessary, maybe sufficient"),
    DecisionRow(R.erasure.value, LATENT, ANY, MAYBE, NO, YES, MAYBE,
                "Information about a person that the model infers rather than was trained on is latent: there is "
                "no example to remove, so removal cannot be sufficient and suppression is necessary.",
                ("M2", "M3")),
    # -- copyright --------------------------------------------------------------------------------
    DecisionRow(R.copyright.value, OBSERVED, O, YES, MAYBE, YES, MAYBE,
                "The rights holder's works were trained on: removal is necessary. Outputs must also stay clean of "
                "close reproductions, which a model can produce from other copies and latent information, so "
                "suppression is necessary too.", ("M1", "M2", "M3")),
    DecisionRow(R.copyright.value, OBSERVED, W, YES, MAYBE, NO, NO,
                "Removal is necessary; guards cannot be enforced on released weights.", ("M1", "M2")),
    DecisionRow(R.copyright.value, LATENT, ANY, NO, NO, YES, MAYBE,
                "A style or character producible from latent information (a model that never saw Mickey Mouse can "
                "still draw him): removal is not sufficient, output suppression is necessary.", ("M2", "M3", "M4"),
                case="synthetic deepfakes from latent information: removal not sufficient, suppression necessary"),
    # -- safety -----------------------------------------------------------------------------------
    DecisionRow(R.safety.value, LATENT, O, MAYBE, NO, YES, MAYBE,
                "Deepfakes and hazardous capabilities can be produced from latent information: removal is not "
                "sufficient and suppression is necessary; guards cover what they were measured on only, and "
                "outputs are dual use.", ("M2", "M3", "M4", "M5"),
                case="synthetic deepfakes from latent information: removal not sufficient, suppression necessary"),
    DecisionRow(R.safety.value, LATENT, W, MAYBE, NO, YES, NO,
                "As with outputs-only access, but released weights can be fine-tuned or prompted past any guard: "
                "nothing the operator runs is sufficient.", ("M1", "M2", "M3", "M4"),
                case="synthetic deepfakes from latent information: removal not sufficient, suppression necessary"),
    DecisionRow(R.safety.value, OBSERVED, ANY, YES, MAYBE, YES, MAYBE,
                "Harmful training examples should stop shaping the model (removal necessary); what they taught can "
                "also come from elsewhere, so outputs need guards as well.", ("M1", "M2", "M3")),
    # -- consent withdrawn, correction ------------------------------------------------------------
    DecisionRow(R.consent_withdrawn.value, OBSERVED, ANY, YES, YES, NO, NO,
                "Consent governed training use, not what the model may say: removing the examples from training "
                "honours it, and output suppression is not needed.", (),
                case="consent over training use: suppression not necessary"),
    DecisionRow(R.correction.value, OBSERVED, ANY, YES, YES, NO, NO,
                "Stale, poisoned or mislabelled data: the goal is a model that does not depend on it; removal "
                "(then retraining on corrected data if wanted) is necessary and sufficient.", ("M5",)),
    # -- fallbacks ----------------------------------------------------------------------------------
    DecisionRow(ANY, LATENT, ANY, NO, NO, YES, MAYBE,
                "No training row carries a concept or capability: removal cannot be sufficient; keep it out of "
                "outputs.", ("M2", "M3")),
    DecisionRow(ANY, OBSERVED, ANY, YES, MAYBE, MAYBE, NO,
                "Observed training data: removal is the direct remedy; outputs may still reveal it.", ("M1", "M2")),
)


@dataclass(frozen=True)
class Decision:
    """The row that applies, the others that matched less specifically, and the reasoning."""

    row: DecisionRow
    considered: tuple[DecisionRow, ...]
    reason: str
    target: str
    access: str

    @property
    def removal(self) -> bool:
        """Whether removal is part of the plan (only where necessary; 'maybe' becomes a note)."""
        return self.row.removal_necessary == YES

    @property
    def suppression(self) -> bool:
        """Whether guards are part of the plan (necessary or maybe: they cost no retraining)."""
        return self.row.suppression_necessary in (YES, MAYBE)

    def explain(self) -> list[str]:
        r = self.row
        lines = [f"request: reason={self.reason}, target={self.target}, access={self.access}",
                 f"row: reason={r.reason}, target={'|'.join(r.target)}, access={r.access}"
                 + (f"  (seed case: {r.case})" if r.case else ""),
                 f"removal: necessary={r.removal_necessary}, sufficient={r.removal_sufficient}",
                 f"suppression: necessary={r.suppression_necessary}, sufficient={r.suppression_sufficient}",
                 f"because: {r.rationale}"]
        lines += [f"  {m}: {MISMATCHES[m]}" for m in r.mismatches]
        for other in self.considered:
            lines.append(f"also matched, less specific (not used): reason={other.reason}, "
                         f"target={'|'.join(other.target)}, access={other.access}")
        return lines

    def to_dict(self) -> dict[str, Any]:
        return {"reason": self.reason, "target": self.target, "access": self.access, "row": self.row.to_dict(),
                "removal_necessary": self.row.removal_necessary, "removal_sufficient": self.row.removal_sufficient,
                "suppression_necessary": self.row.suppression_necessary,
                "suppression_sufficient": self.row.suppression_sufficient, "rationale": self.row.rationale,
                "mismatches": {m: MISMATCHES[m] for m in self.row.mismatches}, "explain": self.explain()}


def decide(request: PolicyRequest, access: str, *, table: tuple[DecisionRow, ...] = DECISION_TABLE) -> Decision:
    """The decision for ``request`` at ``access`` (the request's own, or its deployment's)."""
    reason, target = request.why.value, request.what.kind.value
    found = [row for row in table if row.matches(reason, target, access)]
    if not found:
        raise ConfigError(f"No row of the decision table covers reason={reason!r}, target={target!r}, "
                          f"access={access!r}; add one to obliviate.policy.table.DECISION_TABLE.")
    best = max(found, key=lambda row: row.specificity)  # max keeps the first of equal specificity
    return Decision(best, tuple(r for r in found if r is not best), reason, target, access)


def table_markdown(table: tuple[DecisionRow, ...] = DECISION_TABLE) -> str:
    """The table as Markdown (for docs and ``obliviate plan --table``)."""
    out = ["| reason | target | access | removal necessary | removal sufficient | suppression necessary | "
           "suppression sufficient | mismatches |", "|---|---|---|---|---|---|---|---|"]
    for r in table:
        out.append(f"| {r.reason} | {'/'.join(r.target)} | {r.access} | {r.removal_necessary} | "
                   f"{r.removal_sufficient} | {r.suppression_necessary} | {r.suppression_sufficient} | "
                   f"{', '.join(r.mismatches)} |")
    return "\n".join(out)


__all__ = ["ANY", "DECISION_TABLE", "Decision", "DecisionRow", "MAYBE", "MISMATCHES", "NO", "YES", "decide",
           "table_markdown"]
