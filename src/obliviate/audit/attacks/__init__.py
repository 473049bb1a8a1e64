"""Strong audit attacks: pure numpy math over per-example scores, registered by name.

Convention: every attack score is "higher = more likely member" (or, for
unlearning audits, "more likely unlearned than retrained"). Scores are usually
logit-scaled confidences ``log p_y - log(1 - p_y)``; computing them from models
(and caching them) is the job of :mod:`obliviate.engine.replicas`, not of this package.

* :mod:`.base` - the :class:`Attack` interface, its inputs, :class:`Thresholds`, the ``ATTACKS`` registry.
* :mod:`.roc` - ROC curve, AUC, TPR at fixed FPR, :class:`AttackResult`, log-log plots.
* :mod:`.population` - the run's weak attacks (loss threshold, SVC) and their spread.
* :mod:`.lira` - LiRA online/offline (Carlini et al. 2022).
* :mod:`.ulira` - U-LiRA, unlearned vs retrained (Hayes et al. 2024).
* :mod:`.challenge` - NeurIPS 2023 unlearning challenge forget quality and score
  (Triantafillou et al. 2024).
* :mod:`.relearn` - relearning-attack recovery relative to a retrained control.

Adding an attack (the files it touches):

1. ``src/obliviate/audit/attacks/<name>.py``: a frozen config dataclass (subclass of
   :class:`AttackConfig`, every field with a documented default), the :class:`Attack` subclass
   (``name``, ``paper``, ``order``, ``strength``, ``needs``; ``run``, a two-sided ``verdict``,
   ``threshold_text``) and ``@register``;
2. its import line below (registration happens at import);
3. nothing else to make it run: ``obliviate audit --attacks <name>`` resolves it from
   :data:`ATTACKS`, and ``tests/audit/test_attack_conformance.py`` checks it (chance passes, a shift
   up or down is caught); a threshold it reads is a field of :class:`Thresholds`, a report column
   is added in :mod:`obliviate.report.audit`.
"""

from obliviate.audit.attacks.base import (
    ATTACKS,
    Attack,
    AttackConfig,
    AttackInput,
    GroupScores,
    RelearnAccuracies,
    Thresholds,
    attack_names,
    parse_attacks,
)
from obliviate.audit.attacks.roc import AttackResult, auc, plot_roc, roc_curve, thin_roc, tpr_at_fpr
from obliviate.audit.attacks.population import Population, PopulationConfig  # noqa: I001  (registers)
from obliviate.audit.attacks.lira import (
    LiRA,
    LiRAConfig,
    fit_gaussians,
    lira_offline,
    lira_online,
    logit_scale,
    logit_scale_from_logits,
)
from obliviate.audit.attacks.ulira import ULiRA, ULiRAConfig, ULiRAResult, ulira, ulira_llr
from obliviate.audit.attacks.challenge import (
    Challenge,
    ChallengeConfig,
    ChallengeResult,
    bucket_points,
    default_max_epsilon,
    example_epsilon,
    final_score,
    forget_quality,
    per_example_epsilons,
)
from obliviate.audit.attacks.relearn import Relearn, RelearnConfig, RelearnRecovery, relearn_recovery

__all__ = [
    "ATTACKS",
    "Attack",
    "AttackConfig",
    "AttackInput",
    "AttackResult",
    "Challenge",
    "ChallengeConfig",
    "ChallengeResult",
    "GroupScores",
    "LiRA",
    "LiRAConfig",
    "Population",
    "PopulationConfig",
    "Relearn",
    "RelearnAccuracies",
    "RelearnConfig",
    "RelearnRecovery",
    "Thresholds",
    "ULiRA",
    "ULiRAConfig",
    "ULiRAResult",
    "attack_names",
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
    "parse_attacks",
    "per_example_epsilons",
    "plot_roc",
    "relearn_recovery",
    "roc_curve",
    "thin_roc",
    "tpr_at_fpr",
    "ulira",
    "ulira_llr",
]
