"""Membership-inference scores for language models, as pure functions.

Every score takes the per-token log-probabilities (natural log) that the
model assigns to the tokens of one text, and follows one convention:
**higher score = more likely a member** (seen in training). Published code
often reports the negation (a loss); we flip signs once, here, so
:func:`mia_auc` always reads "AUC > 0.5 = members are detectable".

- LOSS (Yeom et al. 2018): mean token log-prob (= minus the loss).
- zlib (Carlini et al. 2021): the loss relative to the text's zlib-compressed
  length, so texts that are simply easy to predict score lower.
- Min-K% (Shi et al. 2024): the mean of the lowest k% token log-probs.
- Min-K%++ (Zhang et al. 2024): the same over log-probs standardised by the
  mean and std of log-probs under the model's own next-token distribution.
- PrivLeak (MUSE, Shi et al. 2024): relative AUC gap to the retrained model.

AUC and TPR at a fixed FPR come from :mod:`obliviate.audit.attacks.roc`, the package's one
ROC implementation.
"""

from __future__ import annotations

import zlib

import numpy as np
from numpy.typing import ArrayLike, NDArray

from obliviate.audit.attacks import roc
from obliviate.errors import ConfigError, DataError

__all__ = [
    "loss_score",
    "zlib_score",
    "zlib_length",
    "min_k_score",
    "min_k_plus_plus_score",
    "next_token_stats",
    "mia_auc",
    "tpr_at_fpr",
    "privleak",
]


def _logprobs(token_logprobs: ArrayLike) -> NDArray[np.float64]:
    arr = np.asarray(token_logprobs, dtype=np.float64)
    if arr.ndim != 1:
        raise DataError(f"'token_logprobs' must be 1-D (one value per token); got shape {arr.shape}.")
    if arr.size == 0:
        raise DataError("'token_logprobs' is empty; a text needs at least one scored token.")
    if np.isnan(arr).any() or np.isposinf(arr).any() or (arr > 1e-6).any():
        raise DataError(
            "'token_logprobs' must hold log-probabilities (<= 0, no NaN); "
            "pass log_softmax values of the actual next tokens, not logits."
        )
    return arr


def _check_k(k: float) -> None:
    if not isinstance(k, (int, float)) or not 0 < k <= 1:
        raise ConfigError(f"The 'k' parameter must be a fraction in (0, 1]; got {k!r} instead.")


def _n_lowest(n_tokens: int, k: float) -> int:
    # floor(k * n) as in the reference implementations, but at least one token.
    return max(1, int(n_tokens * k))


def loss_score(token_logprobs: ArrayLike) -> float:
    """Mean token log-probability (minus the LM loss); higher = member."""
    return float(_logprobs(token_logprobs).mean())


def zlib_length(text: str) -> int:
    """Bytes of ``zlib.compress(text.encode("utf-8"))`` (default level)."""
    if not isinstance(text, str) or not text:
        raise DataError("zlib needs a non-empty text string.")
    return len(zlib.compress(text.encode("utf-8")))


def zlib_score(token_logprobs: ArrayLike, text: str) -> float:
    """``mean log-prob / zlib_length(text)`` = ``-(loss / zlib length)``; higher = member.

    Carlini et al. (2021) rank by the ratio of the model's log-perplexity
    (the loss) to the zlib entropy of the text; we negate it to keep "higher
    = member". Length is in bytes (bits would only rescale every score by 8).
    """
    return float(_logprobs(token_logprobs).mean() / zlib_length(text))


def min_k_score(token_logprobs: ArrayLike, k: float = 0.2) -> float:
    """Mean of the lowest ``k`` fraction of token log-probs; higher = member.

    Uses ``max(1, floor(k * n_tokens))`` tokens. Members rarely have very
    unlikely tokens, so their worst tokens score higher (Shi et al. 2024).
    """
    _check_k(k)
    lp = _logprobs(token_logprobs)
    return float(np.sort(lp)[: _n_lowest(lp.size, k)].mean())


def next_token_stats(vocab_logprobs: ArrayLike) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Per-position ``(mu, sigma)`` for Min-K%++ from the full next-token log-probs.

    ``vocab_logprobs`` has shape ``(n_tokens, vocab)`` (rows are
    ``log_softmax`` outputs). ``mu = E_{z~p}[log p(z)]`` and
    ``sigma = sqrt(E_{z~p}[log p(z)^2] - mu^2)``.
    """
    lp = np.asarray(vocab_logprobs, dtype=np.float64)
    if lp.ndim != 2 or lp.shape[0] == 0 or lp.shape[1] == 0:
        raise DataError(f"'vocab_logprobs' must have shape (n_tokens, vocab); got {lp.shape}.")
    p = np.exp(lp)
    if not np.allclose(p.sum(axis=1), 1.0, atol=1e-4):
        raise DataError("Each row of 'vocab_logprobs' must be a log-distribution (exp sums to 1); apply log_softmax.")
    # 0 * log 0 = 0 (p = 0 tokens contribute nothing)
    safe = np.where(p > 0, lp, 0.0)
    mu = (p * safe).sum(axis=1)
    var = (p * safe**2).sum(axis=1) - mu**2
    return mu, np.sqrt(np.maximum(var, 0.0))


def min_k_plus_plus_score(
    token_logprobs: ArrayLike,
    mu: ArrayLike,
    sigma: ArrayLike,
    k: float = 0.2,
    *,
    eps: float = 1e-6,
) -> float:
    """Min-K%++ (Zhang et al. 2024); higher = member.

    Each token's log-prob is standardised, ``(log p(x_t) - mu_t) / sigma_t``,
    with ``mu_t``, ``sigma_t`` the mean and std of ``log p(z)`` for ``z``
    drawn from the model's next-token distribution at position ``t`` (see
    :func:`next_token_stats`); the score is the mean of the lowest ``k``
    fraction (``max(1, floor(k * n))`` tokens). ``sigma`` below ``eps`` is
    raised to ``eps`` (a near-deterministic position).
    """
    _check_k(k)
    lp = _logprobs(token_logprobs)
    m = np.asarray(mu, dtype=np.float64).reshape(-1)
    s = np.asarray(sigma, dtype=np.float64).reshape(-1)
    if m.shape != lp.shape or s.shape != lp.shape:
        raise DataError(
            f"'mu' and 'sigma' need one value per token ({lp.size}); got {m.size} and {s.size}."
        )
    if not (np.isfinite(m).all() and np.isfinite(s).all()) or (s < 0).any():
        raise DataError("'mu' must be finite and 'sigma' finite and >= 0.")
    z = (lp - m) / np.maximum(s, eps)
    return float(np.sort(z)[: _n_lowest(lp.size, k)].mean())


def _scores(values: ArrayLike, name: str) -> NDArray[np.float64]:
    arr = np.asarray(values, dtype=np.float64).reshape(-1)
    if arr.size == 0:
        raise DataError(f"'{name}' is empty; an AUC needs at least one score on each side.")
    if np.isnan(arr).any():
        raise DataError(f"'{name}' contains NaN scores.")
    return arr


def _labelled(member_scores: ArrayLike, nonmember_scores: ArrayLike) -> tuple[NDArray[np.int_], NDArray[np.float64]]:
    m = _scores(member_scores, "member_scores")
    n = _scores(nonmember_scores, "nonmember_scores")
    labels = np.concatenate([np.ones(m.size, dtype=int), np.zeros(n.size, dtype=int)])
    return labels, np.concatenate([m, n])


def mia_auc(member_scores: ArrayLike, nonmember_scores: ArrayLike) -> float:
    """ROC AUC of telling members (label 1) from non-members by score.

    0.5 = chance; 1 = members always score higher; < 0.5 = they score lower.
    """
    labels, scores = _labelled(member_scores, nonmember_scores)
    return roc.auc(scores, labels)


def tpr_at_fpr(member_scores: ArrayLike, nonmember_scores: ArrayLike, fpr: float = 0.01) -> float:
    """Highest true-positive rate whose false-positive rate is at most ``fpr``.

    Low-FPR operating points show whether *some* members are exposed with
    confidence, which an average such as AUC hides.
    """
    if not 0 <= fpr <= 1:
        raise ConfigError(f"The 'fpr' parameter must be in [0, 1]; got {fpr!r} instead.")
    labels, scores = _labelled(member_scores, nonmember_scores)
    return roc.tpr_at_fpr(scores, labels, fpr)


def privleak(auc_unlearned: float, auc_retrain: float) -> float:
    """MUSE PrivLeak ``(AUC_unlearned - AUC_retrain) / AUC_retrain``.

    Both AUCs are forget-vs-holdout membership AUCs. 0 is ideal (the
    unlearned model leaks as much as a retrained one); > 0 means under-
    unlearning (forget data still looks like members); < 0 over-unlearning
    (forget data now looks *less* member-like than unseen data, itself a
    signal). MUSE reports it as a percentage (times 100).
    """
    problems = []
    for name, v in (("auc_unlearned", auc_unlearned), ("auc_retrain", auc_retrain)):
        if not isinstance(v, (int, float, np.floating)) or not 0 <= v <= 1:
            problems.append(f"'{name}' must be an AUC in [0, 1]; got {v!r} instead.")
    if not problems and auc_retrain == 0:
        problems.append("'auc_retrain' is 0, so the relative gap is undefined.")
    if problems:
        raise DataError("Invalid PrivLeak inputs: " + " ".join(problems))
    return float((auc_unlearned - auc_retrain) / auc_retrain)
