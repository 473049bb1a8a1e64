"""The deletion service: ``create_app(settings)`` builds the FastAPI app (OpenAPI at ``/openapi.json``).

Routes ask for scopes with ``Security(...)`` (:mod:`obliviate.service.auth`); state changes go
through the request store (:mod:`obliviate.service.store`), each one an event with who, when and
why; the worker (:mod:`obliviate.service.worker`, a separate process) runs queued requests.
"""


import datetime as dt
import logging
import threading
from typing import Annotated, Any, Literal

from fastapi import Depends, FastAPI, HTTPException, Path, Query, Request, Security
from fastapi.responses import HTMLResponse, JSONResponse
from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match
from pydantic import BeforeValidator, create_model

from obliviate.errors import ConfigError, ObliviateError
from obliviate.policy import Deployments, PolicyRequest, make_plan
from obliviate.policy.request import REQUEST_FORMAT, Extension
from obliviate.service.auth import KeyRing, Principal, make_principal
from obliviate.service.models import (REQUEST_EXAMPLE, CertificateView, DeadlineView, DeploymentView, Error,
                                      EventView, GenerateBody, Generation, Health, LedgerReport, PlanView,
                                      PredictBody, Prediction, Reason, RequestList, RequestView)
from obliviate.service.settings import Settings
from obliviate.service.store import TERMINAL, Conflict, NotFound, RequestStore, StoredRequest
from obliviate.service.worker import open_store, signing_key

log = logging.getLogger(__name__)

RequestId = Annotated[str, Path(pattern=r"^[A-Za-z0-9._:-]+$", max_length=200, description="The request's id.")]
ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": Error, "description": "The body is not JSON, or the query names an unknown parameter."},
    401: {"model": Error, "description": "No or unknown API key."},
    403: {"model": Error, "description": "The key's role may not do this (or the request is not yours)."},
    422: {"model": Error, "description": "The input is not valid; the detail says why."},
}
NOT_FOUND = {404: {"model": Error, "description": "No such request or deployment."}}
CONFLICT = {409: {"model": Error, "description": "The request is not in a state that allows this."}}
_ERROR_JSON = {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}


#: the policy's rule "a target of this kind names at least one of these lists", as JSON Schema (the
#: pydantic validator is code, so the generated schema would not say it)
TARGET_NOT_EMPTY = [{"properties": {"kind": {"const": kind}, field: {"minItems": 1}}, "required": ["kind", field]}
                    for kind, fields in (("examples", ("ids",)), ("data_subject", ("subjects", "ids")),
                                         ("concept", ("examples", "subjects", "ids")), ("capability", ("examples",)))
                    for field in fields]


def _iso_date(v: Any) -> Any:
    # JSON has no dates: only a string (YYYY-MM-DD), never a number pydantic would read as a timestamp
    if not isinstance(v, (str, dt.date)):
        raise ValueError("must be a date string YYYY-MM-DD")
    return v


def _whole_months(v: Any) -> Any:
    # an integer as JSON Schema counts them (1 and 1.0), never a string or a bool
    months = v.get("months") if isinstance(v, dict) else None
    if isinstance(v, dict) and (isinstance(months, bool) or not isinstance(months, (int, float))):
        raise ValueError("'months' must be a whole number")
    return v


def _json_errors(responses: dict[int | str, dict[str, Any]]) -> dict[int | str, dict[str, Any]]:
    """Error responses of an HTML route: still JSON (FastAPI would document them as text/html)."""
    return {code: {"description": r["description"], "content": _ERROR_JSON} for code, r in responses.items()}


def _no_unknown_query(request: Request) -> None:
    """Refuse query parameters the route does not declare (a typo would otherwise be ignored silently)."""
    route = request.scope.get("route")
    known = {p.alias for p in getattr(getattr(route, "dependant", None), "query_params", [])}
    for dep in getattr(getattr(route, "dependant", None), "dependencies", []):
        known |= {p.alias for p in dep.query_params}
    unknown = sorted(set(request.query_params) - known)
    if unknown:
        raise HTTPException(400, detail=f"Unknown query parameter(s): {', '.join(unknown)}"
                            + (f"; this route takes {', '.join(sorted(known))}." if known else
                               "; this route takes none."))


def deadline_view(r: StoredRequest, today: dt.date, due_soon_days: int) -> DeadlineView:
    due = dt.date.fromisoformat(r.due)
    left = (due - today).days
    if r.state in TERMINAL:
        end = dt.date.fromisoformat(r.updated_at[:10])
        flag = "answered" if end <= due else "answered late"
    else:
        flag = "overdue" if left < 0 else "due soon" if left <= due_soon_days else "on time"
    return DeadlineView(due=r.due, days_left=left, flag=flag, text=(r.plan or {}).get("deadline", {}).get("text", ""))


def _kinds(r: StoredRequest) -> list[str]:
    if r.certificate:
        return list(r.certificate.get("kinds", []))
    return [s["kind"] for s in (r.plan or {}).get("steps", [])]


def create_app(settings: Settings, *, store: RequestStore | None = None) -> FastAPI:
    """The service app on ``settings`` (see :class:`~obliviate.service.settings.Settings`)."""
    ring = KeyRing(settings.keys_file)
    deployments: Deployments = settings.deployments()
    store = store or open_store(settings)
    principal = make_principal(ring)
    names = tuple(deployments.names())
    # the request schema, with the deployment narrowed to the ones this service has
    Submit = create_model("ServiceRequest", __base__=PolicyRequest,
                          deployment=(Literal[names], ...),  # type: ignore[valid-type]
                          format=(Literal[REQUEST_FORMAT], REQUEST_FORMAT),
                          received=(Annotated[dt.date, BeforeValidator(_iso_date)], ...),
                          extension=(Annotated[Extension, BeforeValidator(_whole_months)] | None, None))
    Submit.model_config["json_schema_extra"] = {"examples": [REQUEST_EXAMPLE]}


    app = FastAPI(title="obliviate deletion service", version="1", dependencies=[Depends(_no_unknown_query)],
                  description=(
        "Forget requests end to end: submit, plan, review, run, certify. Every result says its kind: exact, "
        "approximate (measured by an audit, never called forgotten) or suppression (outputs filtered, weights "
        "unchanged). Send an API key in the X-API-Key header; its role decides what it may do."))
    app.state.settings, app.state.store = settings, store
    generators: dict[str, Any] = {}
    gen_lock = threading.Lock()

    def who(*scopes: str) -> Any:
        return Security(principal, scopes=list(scopes))

    def today() -> dt.date:
        return dt.datetime.now(dt.timezone.utc).date()

    def view(r: StoredRequest) -> RequestView:
        return RequestView(request_id=r.request_id, owner=r.owner, deployment=r.deployment, state=r.state,
                           deadline=deadline_view(r, today(), settings.due_soon_days), created_at=r.created_at,
                           updated_at=r.updated_at, kinds=_kinds(r), has_certificate=r.certificate is not None,
                           request=r.request, events=[EventView(**e.to_dict()) for e in r.events])

    def visible(request_id: str, p: Principal) -> StoredRequest:
        r = store.get(request_id)
        if not p.reads_all and r.owner != p.name:
            log.warning("denied %s (role %s) request %s: not theirs", p.name, p.role, request_id)
            raise HTTPException(403, detail=f"Forbidden: request {request_id!r} is not yours; a {p.role} sees only "
                                "their own requests.")
        return r

    @app.exception_handler(NotFound)
    def _not_found(_: Request, exc: NotFound) -> JSONResponse:
        return JSONResponse({"detail": str(exc.args[0])}, status_code=404)

    @app.exception_handler(Conflict)
    def _conflict(_: Request, exc: Conflict) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=409)

    @app.exception_handler(StarletteHTTPException)
    def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        headers = dict(exc.headers or {})
        if exc.status_code == 405:  # Allow: every method of every route on this path, not only the first's
            allowed = sorted({m for r in app.routes if isinstance(r, APIRoute)
                              and r.matches({"type": "http", "path": request.url.path, "method": "GET"})[0]
                              != Match.NONE for m in r.methods})
            headers["Allow"] = ", ".join(allowed)
        return JSONResponse({"detail": exc.detail}, status_code=exc.status_code, headers=headers)

    @app.exception_handler(ObliviateError)
    def _invalid(_: Request, exc: ObliviateError) -> JSONResponse:
        return JSONResponse({"detail": str(exc.args[0]) if exc.args else type(exc).__name__}, status_code=422)

    # ------------------------------------------------------------------ requests
    @app.get("/health", response_model=Health, tags=["service"])
    def health() -> Health:
        """Liveness: the store answers."""
        return Health(status="ok", store=settings.backend, requests=len(store.list(limit=100_000)))

    @app.post("/requests", status_code=201, response_model=RequestView, tags=["requests"],
              responses={**ERRORS, **CONFLICT})
    def submit(body: Submit, p: Principal = who("requests:submit")) -> RequestView:  # type: ignore[valid-type]
        """Submit a forget request; it is planned at once and awaits review."""
        req = PolicyRequest.model_validate(body.model_dump())  # type: ignore[attr-defined]
        plan = make_plan(req, deployments)
        doc = req.model_dump(mode="json")
        store.create(request_id=req.request_id, owner=p.name, deployment=req.deployment, request=doc,
                     due=plan.deadline.due.isoformat(), by=p.name, role=p.role, why=f"submitted: {req.why.value}")
        store.transition(req.request_id, "planned", by="planner", role="service", plan=plan.to_dict(),
                         why=f"{len(plan.steps)} step(s): " + (", ".join(f"{s.kind} ({s.intervention})"
                                                                       for s in plan.steps) or "none")
                         + (f"; problems: {'; '.join(plan.problems)}" if plan.problems else ""))
        return view(store.transition(req.request_id, "awaiting review", by="planner", role="service",
                                     why="every plan is reviewed before it runs"))

    @app.get("/requests", response_model=RequestList, tags=["requests"], responses=ERRORS)
    def list_requests(p: Principal = who("requests:read"),
                      state: Annotated[str | None, Query(max_length=40)] = None,
                      limit: Annotated[int, Query(ge=1, le=500)] = 100) -> RequestList:
        """Requests, newest first (a requester sees only their own)."""
        owner = None if p.reads_all else p.name
        return RequestList(requests=[view(r) for r in store.list(owner=owner, state=state, limit=limit)])

    @app.get("/requests/{request_id}", response_model=RequestView, tags=["requests"],
             responses={**ERRORS, **NOT_FOUND})
    def status(request_id: RequestId, p: Principal = who("requests:read")) -> RequestView:
        """A request's state, deadline and every change (who, when, why)."""
        return view(visible(request_id, p))

    @app.get("/requests/{request_id}/plan", response_model=PlanView, tags=["requests"],
             responses={**ERRORS, **NOT_FOUND})
    def get_plan(request_id: RequestId, p: Principal = who("requests:read")) -> PlanView:
        """The plan: decision, steps with their kind, guarantees and residual risks."""
        r = visible(request_id, p)
        if r.plan is None:
            raise HTTPException(404, detail=f"Request {request_id!r} has no plan (state {r.state!r}).")
        return PlanView(request_id=r.request_id, kinds=_kinds(r), plan=r.plan)

    @app.get("/requests/{request_id}/certificate", response_model=CertificateView, tags=["requests"],
             responses={**ERRORS, **NOT_FOUND})
    def get_certificate(request_id: RequestId, p: Principal = who("requests:read")) -> CertificateView:
        """The signed certificate of a completed request."""
        r = visible(request_id, p)
        if r.certificate is None:
            raise HTTPException(404, detail=f"Request {request_id!r} has no certificate yet (state {r.state!r}).")
        return CertificateView(request_id=r.request_id, kinds=_kinds(r), outcome=r.certificate["outcome"],
                               certificate=r.certificate)

    @app.get("/requests/{request_id}/certificate.html", response_class=HTMLResponse, tags=["requests"],
             responses=_json_errors({**ERRORS, **NOT_FOUND}))
    def get_certificate_html(request_id: RequestId, p: Principal = who("requests:read")) -> HTMLResponse:
        """The certificate as a page, with its plot."""
        from obliviate.service.dashboard import certificate_page

        r = visible(request_id, p)
        if r.certificate is None:
            raise HTTPException(404, detail=f"Request {request_id!r} has no certificate yet (state {r.state!r}).")
        return HTMLResponse(certificate_page(r.certificate))

    def _move(request_id: str, to: str, p: Principal, why: str, expect: tuple[str, ...]) -> RequestView:
        return view(store.transition(request_id, to, by=p.name, role=p.role, why=why, expect=expect))

    @app.post("/requests/{request_id}/approve", response_model=RequestView, tags=["review"],
              responses={**ERRORS, **NOT_FOUND, **CONFLICT})
    def approve(request_id: RequestId, body: Reason, p: Principal = who("requests:review")) -> RequestView:
        """A reviewer approves the plan (then an operator may run it)."""
        return _move(request_id, "approved", p, body.why, ("awaiting review",))

    @app.post("/requests/{request_id}/reject", response_model=RequestView, tags=["review"],
              responses={**ERRORS, **NOT_FOUND, **CONFLICT})
    def reject(request_id: RequestId, body: Reason, p: Principal = who("requests:review")) -> RequestView:
        """A reviewer rejects the plan (the reason is recorded and shown to the requester)."""
        return _move(request_id, "rejected", p, body.why, ("awaiting review",))

    @app.post("/requests/{request_id}/run", response_model=RequestView, tags=["operate"],
              responses={**ERRORS, **NOT_FOUND, **CONFLICT})
    def run(request_id: RequestId, body: Reason, p: Principal = who("requests:run")) -> RequestView:
        """An operator queues an approved request for the worker."""
        return _move(request_id, "queued", p, body.why, ("approved",))

    @app.post("/requests/{request_id}/cancel", response_model=RequestView, tags=["requests"],
              responses={**ERRORS, **NOT_FOUND, **CONFLICT})
    def cancel(request_id: RequestId, body: Reason, p: Principal = who("requests:cancel")) -> RequestView:
        """Cancel before it runs (a requester: only their own)."""
        if "requests:run" not in p.scopes:
            visible(request_id, p)
        return _move(request_id, "cancelled", p, body.why,
                     ("received", "planned", "awaiting review", "approved", "queued"))

    # ------------------------------------------------------------------ deployments
    def deployment(name: str) -> Any:
        if name not in names:
            raise HTTPException(404, detail=f"No deployment {name!r}; known: {', '.join(names)}.")
        return deployments.get(name)

    @app.get("/deployments", response_model=list[DeploymentView], tags=["deployments"], responses=ERRORS)
    def list_deployments(p: Principal = who("requests:read")) -> list[DeploymentView]:
        """The deployments requests may name, and the kind of removal each supports."""
        return [DeploymentView(name=d.name, model=d.model, dataset=d.dataset, access=d.access.value, guards=d.guards,
                               removal_kind=d.removal.kind) for d in (deployments.get(n) for n in names)]

    @app.get("/deployments/{name}/ledger", response_model=LedgerReport, tags=["deployments"],
             responses={**ERRORS, **NOT_FOUND})
    def verify_ledger(name: Annotated[str, Path(max_length=200)], p: Principal = who("ledger:verify")) -> LedgerReport:
        """Verify the deployment's signed ledger (chain, signatures, key, served version)."""
        from obliviate.engine.sisa import verify_store_ledger
        from obliviate.engine.store import ModelStore

        dep = deployment(name)
        folder = settings.workdir / dep.name
        if dep.model != "sisa" or not ModelStore(folder).exists():
            raise HTTPException(404, detail=f"Deployment {name!r} has no ledger yet ("
                                + ("not a SISA store" if dep.model != "sisa" else "no request has run on it") + ").")
        report = verify_store_ledger(folder, key_file=str(signing_key(settings).path))
        return LedgerReport(deployment=name, ok=True, report=report.to_dict())

    @app.post("/deployments/{name}/predict", response_model=Prediction, tags=["serve"],
              responses={**ERRORS, **NOT_FOUND, **CONFLICT})
    def predict(name: Annotated[str, Path(max_length=200)], body: PredictBody,
                p: Principal = who("serve")) -> Prediction:
        """Predictions of the deployment's served model version (SISA: after every applied removal)."""
        import numpy as np

        from obliviate.engine.sisa import Sisa
        from obliviate.engine.store import ModelStore

        dep = deployment(name)
        folder = settings.workdir / dep.name
        if dep.model != "sisa" or not ModelStore(folder).exists():
            raise HTTPException(409, detail=f"Deployment {name!r} serves no predictions here ("
                                + ("not a SISA store" if dep.model != "sisa" else "its store is not trained yet") + ").")
        with Sisa.open(folder, key_file=signing_key(settings)) as sisa:
            shape = tuple(int(v) for v in sisa.data_.x.shape[1:])
            width = int(np.prod(shape))
            if any(len(row) != width for row in body.x):
                raise ConfigError(f"Every row of 'x' must have {width} features (the training rows' shape "
                                  f"{'x'.join(map(str, shape))}, flattened).")
            x = np.asarray(body.x, dtype=np.float32).reshape((len(body.x), *shape))
            pred = sisa.predict(x)
            return Prediction(deployment=name, kind=dep.removal.kind, model_version=sisa.version_,
                              predictions=[int(v) for v in pred])

    @app.post("/deployments/{name}/generate", response_model=Generation, tags=["serve"],
              responses={**ERRORS, **NOT_FOUND, **CONFLICT})
    def generate(name: Annotated[str, Path(max_length=200)], body: GenerateBody,
                 p: Principal = who("serve")) -> Generation:
        """Generation through the deployment's guards, fitted on its completed requests (suppression)."""
        from obliviate.service.guarded import guarded_generator

        dep = deployment(name)
        if not dep.guards or name not in settings.generators:
            raise HTTPException(409, detail=f"Deployment {name!r} has " + ("no guards" if not dep.guards else
                                "no generator configured in this service") + ".")
        done = [r for r in store.list(state="completed", limit=10_000) if r.deployment == name]
        key = tuple(sorted(r.request_id for r in done))
        with gen_lock:
            if generators.get(name, (None,))[0] != key:
                generators[name] = (key, guarded_generator(dep, settings.generators[name],
                                                           [PolicyRequest.model_validate(r.request) for r in done]))
            g = generators[name][1]
            out = g.generate(body.prompt)
        return Generation(deployment=name, text=out.text, refused=out.refused, redacted=out.redacted,
                          protected_requests=list(key),
                          decisions=[{"guard": d.guard, "action": d.action, "reason": d.reason}
                                     for d in out.decisions])

    @app.get("/dashboard", response_class=HTMLResponse, tags=["service"], responses=_json_errors(ERRORS))
    def dashboard(p: Principal = who("requests:read_all")) -> HTMLResponse:
        """Requests, their states and deadlines, and certificates with their plots."""
        from obliviate.service.dashboard import dashboard_page

        return HTMLResponse(dashboard_page([view(r) for r in store.list(limit=500)], viewer=p))

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            from fastapi.openapi.utils import get_openapi

            spec = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
            target = spec.get("components", {}).get("schemas", {}).get("Target")
            if target is not None:
                target["anyOf"] = TARGET_NOT_EMPTY
            extension = spec.get("components", {}).get("schemas", {}).get("Extension")
            if extension is not None:  # the policy's validator: a reason in words, not blanks
                extension["properties"]["reason"]["pattern"] = r"\S"
            app.openapi_schema = spec
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    return app


def app_from_env() -> FastAPI:
    """uvicorn's factory (``obliviate serve``): settings from ``OBLIVIATE_SERVICE_*``."""
    return create_app(Settings.from_env())


__all__ = ["app_from_env", "create_app", "deadline_view"]
