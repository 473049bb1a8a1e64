"""Population membership-inference attacks (the "weak" attacks of the literature).

Both attacks are fit on a shadow split of the *target model's own* outputs:
retain examples (members) against test examples (non-members), as in the
SalUn / Unlearn-Sparse code. They are then applied to the forget set.

- MIA-efficacy = fraction of forget examples the attack calls non-members
  (higher = looks more forgotten; the retrained model's value is the target).
- AUC = how well the signal separates forget from test examples
  (0.5 = forget looks like unseen data).

Weak attacks overestimate unlearning (Hayes et al. 2024); the strong,
per-example attacks live in :mod:`obliviate.audit.attacks`.
"""

from __future__ import annotations

import numpy as np

from obliviate.errors import ShapeError


def _balanced(a: np.ndarray, b: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    n = min(len(a), len(b))
    return a[rng.choice(len(a), n, replace=False)], b[rng.choice(len(b), n, replace=False)]


def auc(member_scores: np.ndarray, nonmember_scores: np.ndarray) -> float:
    """ROC AUC of telling members from non-members, with higher score = member."""
    m = np.asarray(member_scores, dtype=float).ravel()
    n = np.asarray(nonmember_scores, dtype=float).ravel()
    if len(m) == 0 or len(n) == 0:
        raise ShapeError("auc needs at least one member and one non-member score.")
    from obliviate.audit.attacks.roc import auc as roc_auc  # the package's one ROC implementation

    return roc_auc(np.r_[m, n], np.r_[np.ones(len(m), bool), np.zeros(len(n), bool)])


def loss_threshold_attack(shadow_member_loss: np.ndarray, shadow_nonmember_loss: np.ndarray,
                          target_loss: np.ndarray) -> float:
    """Yeom et al. 2018 loss threshold. Returns the fraction of targets predicted non-member.

    The threshold maximises balanced accuracy on the shadow split (member iff
    loss <= threshold).
    """
    mem = np.asarray(shadow_member_loss, dtype=float)
    non = np.asarray(shadow_nonmember_loss, dtype=float)
    if len(mem) == 0 or len(non) == 0 or len(target_loss) == 0:
        raise ShapeError("loss_threshold_attack needs non-empty member, non-member and target losses.")
    cands = np.unique(np.r_[mem, non])
    mem_s, non_s = np.sort(mem), np.sort(non)
    tpr = np.searchsorted(mem_s, cands, side="right") / len(mem)
    fpr = np.searchsorted(non_s, cands, side="right") / len(non)
    thr = cands[int(np.argmax(tpr - fpr))]
    return float(np.mean(np.asarray(target_loss) > thr))


def svc_confidence_attack(shadow_member_conf: np.ndarray, shadow_nonmember_conf: np.ndarray,
                          target_conf: np.ndarray, *, seed: int = 0, max_shadow: int = 2000) -> float:
    """The confidence-based SVC attack of SalUn / Unlearn-Sparse (``SVC_MIA``, C=3, RBF).

    Features are the true-class confidence. The shadow sets are balanced (and
    capped at ``max_shadow`` each for speed). Returns MIA-efficacy: the fraction
    of targets predicted non-member.
    """
    return svc_attack_detail(shadow_member_conf, shadow_nonmember_conf, target_conf, seed=seed,
                             max_shadow=max_shadow)[0]


def svc_attack_detail(shadow_member_conf: np.ndarray, shadow_nonmember_conf: np.ndarray,
                      target_conf: np.ndarray, *, seed: int = 0, max_shadow: int = 2000) -> tuple[float, float]:
    """:func:`svc_confidence_attack` and the SVC's balanced accuracy on its own shadow split.

    A shadow accuracy near 0.5 means the model's confidences barely differ between members and
    non-members (it hardly overfits), so the SVC's boundary, and the efficacy it gives, is arbitrary.
    """
    from sklearn.svm import SVC

    rng = np.random.default_rng(seed)
    mem, non = _balanced(np.asarray(shadow_member_conf, float), np.asarray(shadow_nonmember_conf, float), rng)
    if len(mem) > max_shadow:
        mem, non = mem[:max_shadow], non[:max_shadow]
    if len(mem) == 0 or len(target_conf) == 0:
        raise ShapeError("svc_confidence_attack needs non-empty shadow and target sets.")
    x = np.r_[mem, non].reshape(-1, 1)
    y = np.r_[np.ones(len(mem)), np.zeros(len(non))]
    clf = SVC(C=3, gamma="auto", kernel="rbf")
    clf.fit(x, y)
    shadow_acc = float((clf.predict(x) == y).mean())  # balanced: the two sides have equal size
    return float(1.0 - clf.predict(np.asarray(target_conf, float).reshape(-1, 1)).mean()), shadow_acc
