"""Evaluate one model against the retrained reference: the row of a results table."""

from __future__ import annotations

from dataclasses import dataclass

from obliviate.audit.metrics import gap_closed, js_divergence, tug_of_war
from obliviate.audit.mia import auc, loss_threshold_attack, svc_confidence_attack
from obliviate.audit.outputs import Outputs


@dataclass(frozen=True)
class SplitOutputs:
    forget: Outputs
    retain: Outputs
    test: Outputs

    @property
    def accuracies(self) -> tuple[float, float, float]:
        return (self.forget.accuracy, self.retain.accuracy, self.test.accuracy)


def classifier_metrics(model: SplitOutputs, retrain: SplitOutputs, *, original_tow: float | None = None,
                       seed: int = 0) -> dict[str, float]:
    """All core metrics of one model; ``retrain`` is the gold standard of the same seed."""
    f, r, t = model.accuracies
    tow = tug_of_war(model.accuracies, retrain.accuracies)
    row = {
        "forget_acc": f,
        "retain_acc": r,
        "test_acc": t,
        "ua": 1.0 - f,
        "ra": r,
        "ta": t,
        "tow": tow,
        "js_to_retrain": js_divergence(model.forget.probs, retrain.forget.probs),
        # forget (member side) vs test (non-members); higher score = member, so negate the loss
        "mia_auc": auc(-model.forget.loss, -model.test.loss),
        "mia_efficacy": svc_confidence_attack(model.retain.confidence, model.test.confidence,
                                              model.forget.confidence, seed=seed),
        "mia_loss_efficacy": loss_threshold_attack(model.retain.loss, model.test.loss, model.forget.loss),
    }
    if original_tow is not None:
        row["tow_gap_closed"] = gap_closed(tow, original_tow, 1.0)
    return row
