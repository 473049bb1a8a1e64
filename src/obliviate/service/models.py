"""The API's pydantic models: the schema, the validation and the OpenAPI examples at once."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from obliviate.service.store import STATES

State = Literal[STATES]  # type: ignore[valid-type]
Flag = Literal["on time", "due soon", "overdue", "answered", "answered late"]
Kind = Literal["exact", "approximate", "suppression"]

REQUEST_EXAMPLE = {"format": "obliviate-request-v1", "request_id": "erasure-2026-0042", "who": "data_subject",
                   "what": {"kind": "examples", "ids": ["train-3", "train-7"]}, "why": "erasure",
                   "jurisdiction": "EU", "received": "2026-11-20", "deployment": "digits-sisa"}


class _Out(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Error(_Out):
    """Every error: why, and what to do."""

    detail: Any = Field(description="What went wrong and how to fix it.")


class EventView(_Out):
    seq: int
    state: State
    at: str = Field(description="UTC time of the change.")
    by: str = Field(description="The API key's name (or the worker) that made it.")
    role: str
    why: str


class DeadlineView(_Out):
    due: str = Field(description="The answer's due date (YYYY-MM-DD).")
    days_left: int = Field(description="Days until due (negative: past due).")
    flag: Flag = Field(description="on time, due soon (within the service's due_soon_days), overdue, answered, "
                       "answered late.")
    text: str = Field("", description="The rule that set the date.")


class RequestView(_Out):
    request_id: str
    owner: str = Field(description="The name of the key that submitted it.")
    deployment: str
    state: State
    deadline: DeadlineView
    created_at: str
    updated_at: str
    kinds: list[Kind] = Field(description="The kinds of the plan's steps: exact, approximate or suppression.")
    has_certificate: bool
    request: dict[str, Any]
    events: list[EventView]

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{
        "request_id": "erasure-2026-0042", "owner": "alice", "deployment": "digits-sisa", "state": "awaiting review",
        "deadline": {"due": "2026-12-20", "days_left": 17, "flag": "on time", "text": "due 2026-12-20 under GDPR"},
        "created_at": "2026-12-03T15:00:00Z", "updated_at": "2026-12-03T15:00:00Z", "kinds": ["exact"],
        "has_certificate": False, "request": REQUEST_EXAMPLE,
        "events": [{"seq": 1, "state": "received", "at": "2026-12-03T15:00:00Z", "by": "alice", "role": "requester",
                    "why": "submitted"}]}]})


class RequestList(_Out):
    requests: list[RequestView]


class Reason(BaseModel):
    """Why a reviewer or operator makes this change (recorded in the request's events)."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"why": "plan checked: exact removal"}]})
    why: str = Field(min_length=1, max_length=2000, pattern=r"\S")


class PlanView(_Out):
    request_id: str
    kinds: list[Kind]
    plan: dict[str, Any] = Field(description="The plan: decision, steps with guarantees and residual risks.")


class CertificateView(_Out):
    request_id: str
    kinds: list[Kind]
    outcome: str
    certificate: dict[str, Any] = Field(description="The signed certificate (check it with `obliviate certificate "
                                        "verify`).")


class PredictBody(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"x": [[0.0] * 64]}]})
    x: list[list[float]] = Field(min_length=1, max_length=256, description="Rows of features.")


class Prediction(_Out):
    deployment: str
    kind: Kind = Field(description="What stands behind requests on this model: exact removal for SISA.")
    model_version: int
    predictions: list[int]


class GenerateBody(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"prompt": "Where does Ada live?"}]})
    prompt: str = Field(min_length=1, max_length=4000)


class Generation(_Out):
    deployment: str
    kind: Literal["suppression"] = Field("suppression", description="Guards filter outputs; the weights are "
                                         "unchanged.")
    text: str
    refused: bool
    redacted: bool
    protected_requests: list[str] = Field(description="The completed requests whose content the guards hold back.")
    decisions: list[dict[str, Any]]


class DeploymentView(_Out):
    name: str
    model: str
    dataset: str
    access: str
    guards: bool
    removal_kind: str


class LedgerReport(_Out):
    deployment: str
    ok: bool
    report: dict[str, Any]


class Health(_Out):
    status: Literal["ok"]
    store: str
    requests: int


__all__ = ["CertificateView", "DeadlineView", "DeploymentView", "Error", "EventView", "GenerateBody", "Generation",
           "Health", "LedgerReport", "PlanView", "PredictBody", "Prediction", "REQUEST_EXAMPLE", "Reason",
           "RequestList", "RequestView"]
