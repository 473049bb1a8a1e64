"""Requests -> plans -> certificates.

A :class:`PolicyRequest` (who, what, why, where, when, which deployment) is decided by one table
(:data:`DECISION_TABLE`: is removal / suppression necessary, sufficient?), planned from what the
deployment supports (:func:`make_plan`), carried out by one runner per intervention
(:func:`handle`) and recorded in a signed certificate (:func:`verify_certificate` checks one alone).
"""

from obliviate.policy.certificate import certificate_schema, load_certificate, verify_certificate
from obliviate.policy.deployments import BUILTIN_DEPLOYMENTS, Deployment, Deployments
from obliviate.policy.handle import Handled, handle
from obliviate.policy.runners import RUNNERS
from obliviate.policy.plan import Plan, Step, make_plan
from obliviate.policy.request import PolicyRequest, deadline, load_request, parse_request, request_schema
from obliviate.policy.table import DECISION_TABLE, Decision, DecisionRow, decide

__all__ = ["BUILTIN_DEPLOYMENTS", "DECISION_TABLE", "Decision", "DecisionRow", "Deployment", "Deployments",
           "Handled", "Plan", "PolicyRequest", "RUNNERS", "Step", "certificate_schema", "deadline", "decide",
           "handle", "load_certificate", "load_request", "make_plan", "parse_request", "request_schema",
           "verify_certificate"]
