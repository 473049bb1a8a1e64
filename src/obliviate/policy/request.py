"""A request to forget, as a requester writes it: who, what, why, where, when, which deployment.

:class:`PolicyRequest` is a pydantic model, so it is the schema (``PolicyRequest.model_json_schema()``,
published by :func:`request_schema`), the validation and the documentation at once. Its ``what``
maps onto the one :class:`obliviate.data.request.ForgetRequest` every layer takes
(:meth:`Target.forget_request`). :func:`load_request` reads a JSON file and turns every problem
into one :class:`~obliviate.errors.ConfigError` that lists them all.

Deadlines (:func:`deadline`): GDPR Art. 12(3) gives one month from receipt, extendable by two
further months "where necessary, taking into account the complexity and number of the
requests", with the reasons told to the data subject; CCPA gives 45 days, extendable once by
45. The rules are the rows of :data:`DEADLINE_RULES`.
"""

from __future__ import annotations

import calendar
import datetime as dt
import json
import os
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Any

from pydantic import Field, field_validator, model_validator

from obliviate.config import StrictModel, validate
from obliviate.data.request import ForgetRequest
from obliviate.errors import ConfigError

REQUEST_FORMAT = "obliviate-request-v1"


class Requester(str, Enum):
    """Who asks."""

    data_subject = "data_subject"
    rights_holder = "rights_holder"
    safety_team = "safety_team"
    data_quality = "data_quality"


class Reason(str, Enum):
    """Why."""

    erasure = "erasure"                      # erasure of personal data (GDPR Art. 17, CCPA)
    copyright = "copyright"
    safety = "safety"
    correction = "correction"                # stale, poisoned or mislabelled data
    consent_withdrawn = "consent_withdrawn"  # consent to training use withdrawn


class TargetKind(str, Enum):
    """What kind of thing is to be forgotten."""

    examples = "examples"          # training examples named by id (observed information)
    data_subject = "data_subject"  # every example of a person (observed information)
    concept = "concept"            # a concept described by examples (latent information)
    capability = "capability"      # a skill or behaviour (higher-order)


class Access(str, Enum):
    """What the users of the deployment can get at."""

    weights = "weights"   # the weights are released
    outputs = "outputs"   # outputs only (an API)


class Target(StrictModel):
    """What to forget. ``ids``/``subjects`` name training rows; ``examples`` describe a concept or capability."""

    kind: TargetKind
    ids: list[str] = Field(default_factory=list, description="Training example ids.")
    subjects: list[str] = Field(default_factory=list, description="Data-subject ids (every example of that person).")
    examples: list[str] = Field(default_factory=list,
                                description="Texts that describe the concept or capability (they select no row).")
    description: str = Field("", description="The concept or capability in words, for the certificate.")

    @model_validator(mode="after")
    def _not_empty(self) -> Target:
        need = {TargetKind.examples: ("ids",), TargetKind.data_subject: ("subjects", "ids"),
                TargetKind.concept: ("examples", "subjects", "ids"), TargetKind.capability: ("examples",)}[self.kind]
        if not any(getattr(self, f) for f in need):
            raise ValueError(f"'what' of kind {self.kind.value!r} is empty: give {' or '.join(need)} "
                             "(a non-empty list)")
        return self

    def forget_request(self) -> ForgetRequest:
        """The :class:`ForgetRequest` every layer takes (ids, subjects, concept examples)."""
        return ForgetRequest(ids=tuple(self.ids), subjects=tuple(self.subjects), concept=tuple(self.examples),
                             source=f"{self.kind.value}: " + self.summary())

    def summary(self) -> str:
        parts = []
        if self.ids:
            parts.append(f"{len(self.ids)} example id(s)")
        if self.subjects:
            parts.append("subject(s) " + ", ".join(self.subjects[:5]) + ("..." if len(self.subjects) > 5 else ""))
        if self.examples:
            parts.append(f"{len(self.examples)} describing example(s)")
        if self.description:
            parts.append(repr(self.description))
        return "; ".join(parts)


class Extension(StrictModel):
    """An extension of the answer deadline: how many months and why (GDPR requires the reason)."""

    months: int = Field(ge=1, le=2)
    reason: str = Field(min_length=1)

    @field_validator("reason")
    @classmethod
    def _reason(cls, v: str) -> str:
        if not v.strip():
            raise ValueError("an extension needs its reason in words (GDPR Art. 12(3))")
        return v


class PolicyRequest(StrictModel):
    """One request to forget (see the module docstring)."""

    format: str = Field(REQUEST_FORMAT, description="Always " + REQUEST_FORMAT + ".")
    request_id: str = Field(min_length=1, pattern=r"^[A-Za-z0-9._:-]+$")
    who: Requester
    requester_name: str = Field("", description="Who the requester is, for the certificate.")
    what: Target
    why: Reason
    jurisdiction: str = Field("EU", description="EU, UK or EEA (GDPR), US-CA (CCPA), or other.")
    received: dt.date = Field(description="The date the request was received (YYYY-MM-DD).")
    extension: Extension | None = None
    deployment: str = Field(min_length=1, description="Which deployment (a name in the deployments file).")
    access: Access | None = Field(None, description="What its users can get at; None: the deployment's own.")
    notes: str = ""

    @field_validator("format")
    @classmethod
    def _format(cls, v: str) -> str:
        if v != REQUEST_FORMAT:
            raise ValueError(f"this is not an obliviate request: format must be {REQUEST_FORMAT!r}")
        return v

    def forget_request(self) -> ForgetRequest:
        return self.what.forget_request()

    def deadline(self) -> Deadline:
        return deadline(self.received, self.jurisdiction, self.extension)


def request_schema() -> dict[str, Any]:
    """The published JSON Schema of a request."""
    schema = PolicyRequest.model_json_schema()
    schema["$id"] = "https://obliviate.dev/schema/" + REQUEST_FORMAT + ".json"
    schema["title"] = "obliviate forget request"
    return schema


def parse_request(data: Any, *, source: str = "request") -> PolicyRequest:
    """A request from a dict (one ConfigError listing every problem)."""
    if not isinstance(data, dict):
        raise ConfigError(f"The {source} must be one JSON object; got {type(data).__name__}.")
    return validate(PolicyRequest, data, source=source)


def load_request(path: str | os.PathLike[str]) -> PolicyRequest:
    """Read and validate a request file (JSON)."""
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"No request file at {p}. Write one like examples/requests/data_subject_erasure.json.")
    try:
        data = json.loads(p.read_text())
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ConfigError(f"The request {p} is not JSON ({exc}); fix the file.") from None
    return parse_request(data, source=f"request {p}")


# --------------------------------------------------------------------------- deadlines
@dataclass(frozen=True)
class DeadlineRule:
    """How long a jurisdiction gives, and by how much it may be extended."""

    law: str
    months: int = 0
    days: int = 0
    max_extension_months: int = 0
    max_extension_days: int = 0
    citation: str = ""


#: jurisdiction -> rule. Anything not listed gets the GDPR rule (the strictest common one), and says so.
DEADLINE_RULES: dict[str, DeadlineRule] = {
    **{j: DeadlineRule("GDPR", months=1, max_extension_months=2, citation="GDPR Art. 12(3)")
       for j in ("EU", "EEA", "UK")},
    "US-CA": DeadlineRule("CCPA", days=45, max_extension_days=45, citation="Cal. Civ. Code 1798.130(a)(2)"),
}


def add_months(day: dt.date, months: int) -> dt.date:
    """The same day ``months`` later, clamped to the month's last day (31 Jan + 1 month = 28/29 Feb)."""
    m = day.month - 1 + months
    year, month = day.year + m // 12, m % 12 + 1
    return dt.date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


@dataclass(frozen=True)
class Deadline:
    """When the answer is due, under which rule, and why."""

    due: dt.date
    law: str
    base_due: dt.date
    extended_by: str | None
    extension_reason: str | None
    text: str

    def to_dict(self) -> dict[str, Any]:
        return {"due": self.due.isoformat(), "base_due": self.base_due.isoformat(), "law": self.law,
                "extended_by": self.extended_by, "extension_reason": self.extension_reason, "text": self.text}


def deadline(received: dt.date, jurisdiction: str, extension: Extension | None = None) -> Deadline:
    """The answer deadline of a request received on ``received`` (see the module docstring)."""
    rule = DEADLINE_RULES.get(jurisdiction.upper())
    assumed = rule is None
    rule = rule or DEADLINE_RULES["EU"]
    base = add_months(received, rule.months) + dt.timedelta(days=rule.days)
    due, by = base, None
    if extension is not None:
        if rule.max_extension_months:
            if extension.months > rule.max_extension_months:
                raise ConfigError(f"The extension of {extension.months} months exceeds {rule.law}'s "
                                  f"{rule.max_extension_months}; ask for at most {rule.max_extension_months}.")
            due, by = add_months(base, extension.months), f"{extension.months} month(s)"
        else:
            days = min(rule.max_extension_days, 45 * extension.months)
            due, by = base + dt.timedelta(days=days), f"{days} days"
    text = (f"due {due.isoformat()} under {rule.law} ({rule.citation}): "
            + (f"{rule.months} month(s)" if rule.months else f"{rule.days} days") + f" from {received.isoformat()}"
            + (f", extended by {by} because: {extension.reason}" if extension is not None else "")
            + (f"; jurisdiction {jurisdiction!r} has no rule here, so the GDPR rule is applied" if assumed else ""))
    return Deadline(due, rule.law, base, by, None if extension is None else extension.reason, text)


__all__ = ["Access", "DEADLINE_RULES", "Deadline", "Extension", "PolicyRequest", "REQUEST_FORMAT", "Reason",
           "Requester", "Target", "TargetKind", "add_months", "deadline", "load_request", "parse_request",
           "request_schema"]
