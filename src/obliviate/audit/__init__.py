"""Auditing: metrics against the retrained model and membership attacks (pure math over arrays)."""

from obliviate.audit import memorization as _memorization  # noqa: F401  (registers memorized:* forget specs)
from obliviate.audit.metrics import accuracy, gap_closed, js_divergence, mean_ci, tug_of_war
from obliviate.audit.mia import auc, loss_threshold_attack, svc_confidence_attack

__all__ = [
    "accuracy",
    "auc",
    "gap_closed",
    "js_divergence",
    "loss_threshold_attack",
    "mean_ci",
    "svc_confidence_attack",
    "tug_of_war",
]
