"""Strong audit attacks: pure numpy math over per-example scores.

Convention: every attack score is "higher = more likely member" (or, for
unlearning audits, "more likely unlearned than retrained"). Scores are usually
logit-scaled confidences ``log p_y - log(1 - p_y)``; computing them from models
(and caching them) is the job of the signal-extraction code, not of this package.

* :mod:`.roc` - ROC curve, AUC, TPR at fixed FPR, :class:`AttackResult`, log-log plots.
* :mod:`.lira` - LiRA online/offline (Carlini et al. 2022).
* :mod:`.ulira` - U-LiRA, unlearned vs retrained (Hayes et al. 2024).
* :mod:`.challenge` - NeurIPS 2023 unlearning challenge forget quality and score
  (Triantafillou et al. 2024).
* :mod:`.relearn` - relearning-attack recovery relative to a retrained control.
"""

from obliviate.audit.attacks.challenge import (
    ChallengeResult,
    bucket_points,
    default_max_epsilon,
    example_epsilon,
    final_score,
    forget_quality,
    per_example_epsilons,
)
from obliviate.audit.attacks.lira import (
    fit_gaussians,
    lira_offline,
    lira_online,
    logit_scale,
    logit_scale_from_logits,
)
from obliviate.audit.attacks.relearn import RelearnRecovery, relearn_recovery
from obliviate.audit.attacks.roc import AttackResult, auc, plot_roc, roc_curve, tpr_at_fpr
from obliviate.audit.attacks.ulira import ULiRAResult, ulira, ulira_llr

__all__ = [
    "AttackResult",
    "ChallengeResult",
    "RelearnRecovery",
    "ULiRAResult",
    "auc",
    "bucket_points",
    "default_max_epsilon",
    "example_epsilon",
    "final_score",
    "fit_gaussians",
    "forget_quality",
    "lira_offline",
    "lira_online",
    "logit_scale",
    "logit_scale_from_logits",
    "per_example_epsilons",
    "plot_roc",
    "relearn_recovery",
    "roc_curve",
    "tpr_at_fpr",
    "ulira",
    "ulira_llr",
]
