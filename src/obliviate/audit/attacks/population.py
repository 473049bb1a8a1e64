"""The population ("weak") attacks: the run's own loss-threshold and SVC attacks, and their spread.

The run's ``results.json`` holds, for every method, the loss-threshold AUC of forget vs test
examples (Yeom et al. 2018) and SalUn's SVC efficacy (Jia et al. 2023, Fan et al. 2024) of the
one model the run trained. On the audit's replicas the same loss attack is averaged over the
models, and the SVC attack is rerun on each model: its spread across models says whether the
run's single SVC number can be read at all. The SVC is fit on retain (member) against test
(non-member) confidences; when models barely overfit those overlap, the SVC's boundary is
arbitrary and its efficacy swings between models, so the audit flags it as untrustworthy.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.special import expit

from obliviate.audit.attacks.base import Attack, AttackConfig, AttackInput, GroupScores, Thresholds, register
from obliviate.audit.attacks.roc import auc

__all__ = ["Population", "PopulationConfig", "replicas_loss_auc", "run_numbers", "svc_spread"]

#: what the audit copies from the run's record of each method
RUN_KEYS = ("mia_auc", "mia_efficacy", "mia_loss_efficacy", "ra", "ta", "ua")


@dataclass(frozen=True)
class PopulationConfig(AttackConfig):
    """When the SVC efficacy of the run can be trusted (read on the audit's replicas)."""

    #: at most this standard deviation of the SVC efficacy across replicas
    svc_max_std: float = 0.1
    #: the SVC must tell its own shadow members from non-members this much better than chance
    svc_min_shadow_advantage: float = 0.02
    #: shadow examples per side (as the run's attack)
    svc_max_shadow: int = 2000


def run_numbers(row: dict[str, Any]) -> dict[str, Any]:
    """The run's weak-attack numbers (and accuracies) for one method; None where the run has none."""
    return {k: row.get(k) for k in RUN_KEYS}


def replicas_loss_auc(g: GroupScores) -> float:
    """Loss-threshold attack (forget vs test) on each replica, averaged: the weak attack on the same models."""
    labels = np.r_[np.ones(g.forget.shape[1], bool), np.zeros(g.test.shape[1], bool)]
    return float(np.mean([auc(np.r_[f, t], labels) for f, t in zip(g.forget, g.test, strict=True)]))


def svc_spread(g: GroupScores, *, seed: int, config: PopulationConfig | None = None) -> dict[str, Any]:
    """SVC efficacy on every replica of ``g`` (retain vs test shadows, forget targets), and whether it is stable."""
    from obliviate.audit.mia import svc_attack_detail

    cfg = config or PopulationConfig()
    if g.retain is None:
        return {}
    found = [svc_attack_detail(expit(r), expit(t), expit(f), seed=seed, max_shadow=cfg.svc_max_shadow)
             for r, t, f in zip(g.retain, g.test, g.forget, strict=True)]
    eff = np.array([e for e, _ in found])
    shadow = np.array([a for _, a in found])
    std = float(eff.std(ddof=1)) if eff.size > 1 else float("nan")
    why = []
    if not std <= cfg.svc_max_std:
        why.append(f"its efficacy varies by {std:.3f} (std) across {eff.size} replicas (> {cfg.svc_max_std:g})")
    if shadow.mean() < 0.5 + cfg.svc_min_shadow_advantage:
        why.append(f"it tells retain from test examples with only {shadow.mean():.3f} balanced accuracy "
                   "(the models barely overfit)")
    return {"mean": float(eff.mean()), "std": std, "min": float(eff.min()), "max": float(eff.max()),
            "shadow_accuracy": float(shadow.mean()), "per_replica": [round(float(v), 4) for v in eff],
            "trusted": not why, "why": "; ".join(why)}


@register
class Population(Attack):
    """The weak attacks of the run, read against retrain's: a method *passes* when its loss-attack AUC
    is within a margin of retrain's, above or below."""

    name = "population"
    title = "the weak attack"
    paper = ("Yeom et al. 2018 (loss threshold); the SVC attack of Jia et al. 2023, Model Sparsity Can "
             "Simplify Machine Unlearning, and Fan et al. 2024, SalUn")
    Config = PopulationConfig
    order = 10
    strength = "weak"
    needs = frozenset()

    def run(self, inputs: AttackInput) -> dict[str, Any]:
        out = run_numbers(inputs.run_row)
        if inputs.target is not None:
            out["replicas_mia_auc"] = replicas_loss_auc(inputs.target)
            spread = svc_spread(inputs.target, seed=inputs.seed, config=self.config)
            if spread:
                out["svc_replicas"] = spread
        return out

    def passes(self, result: dict[str, Any], reference: dict[str, Any] | None, th: Thresholds) -> bool | None:
        auc_m = result.get("mia_auc")
        ref_auc = None if reference is None else reference.get("mia_auc")
        if auc_m is None or ref_auc is None:
            return None
        return bool(abs(auc_m - ref_auc) <= th.weak_auc_margin)

    def verdict(self, result: dict[str, Any], reference: dict[str, Any] | None, th: Thresholds) -> str | None:
        if self.passes(result, reference, th) is False:
            return f"the weak attack (loss-attack AUC {result['mia_auc']:.3f} vs retrain's {reference['mia_auc']:.3f})"  # type: ignore[index]
        return None

    def caveat(self, result: dict[str, Any]) -> str | None:
        svc = result.get("svc_replicas") or {}
        if svc and not svc.get("trusted", True):
            return (f"the SVC membership attack cannot be trusted here: {svc['why']}; its efficacy on the replicas "
                    f"ranges {svc['min']:.3f}-{svc['max']:.3f}")
        return None

    @staticmethod
    def threshold_text(th: Thresholds) -> str:
        return (f"the weak attack *passes* a method when the run's loss-threshold MIA AUC (forget vs test) "
                f"is within {th.weak_auc_margin:g} of retrain's")
