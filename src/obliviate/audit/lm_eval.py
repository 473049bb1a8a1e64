"""Model I/O for language-model audits: token log-probabilities and greedy answers.

Everything here runs a model; greedy decoding itself is
:mod:`obliviate.models.lm_generate` (re-exported here). The metric arithmetic lives in
:mod:`obliviate.audit.lm_metrics` and :mod:`obliviate.audit.lm_mia` as pure
functions over the arrays computed here (the house rule: signals apart from math).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from obliviate.audit.lm_metrics import (bootstrap_ci, length_normalised_prob, relative_answer_prob, rouge_l_recall,
                                        truth_ratio, truth_ratio_forget_stat, truth_ratio_utility_stat)
from obliviate.audit.lm_mia import loss_score, mia_auc, min_k_plus_plus_score, min_k_score, zlib_score
from obliviate.data.qa import QADataset
from obliviate.models.lm import QAFormat
from obliviate.models.lm_generate import greedy_answers, greedy_continuations, sorted_batches
from obliviate.training.lm import collate_qa, input_logits, shifted

Encoded = tuple[tuple[int, ...], tuple[int, ...]]

__all__ = ["SplitSignals", "token_logprobs", "greedy_continuations", "greedy_answers", "split_signals",
           "verbatim_continuations", "split_metrics", "truth_ratios", "mia_scores", "mia_aucs", "MIA_ATTACKS"]


@torch.no_grad()
def token_logprobs(model: nn.Module, items: Sequence[Encoded], *, batch_size: int = 64,
                   device: str | torch.device = "cpu", pad_id: int = 0,
                   with_stats: bool = False) -> list[np.ndarray] | tuple[list[np.ndarray], list[np.ndarray], list[np.ndarray]]:
    """Natural-log probability of each answer token given what precedes it, per item.

    With ``with_stats`` also returns, per answer position, the mean and standard
    deviation of ``log p(z)`` under the model's next-token distribution (Min-K%++).
    """
    was_training = model.training
    model.eval()
    out: list[np.ndarray | None] = [None] * len(items)
    mus: list[np.ndarray | None] = [None] * len(items)
    sigmas: list[np.ndarray | None] = [None] * len(items)
    for idx in sorted_batches([len(p) + len(a) for p, a in items], batch_size):
        batch = collate_qa([items[i] for i in idx], pad_id, device=device)
        logits = input_logits(model, batch)
        lg, lab = shifted(logits.float(), batch["labels"])
        lp = F.log_softmax(lg, dim=-1)
        picked = lp.gather(-1, lab.clamp_min(0).unsqueeze(-1)).squeeze(-1)
        mask = lab != -100
        if with_stats:
            p = lp.exp()
            mu = (p * lp).sum(-1)
            sigma = ((p * lp.pow(2)).sum(-1) - mu.pow(2)).clamp_min(0).sqrt()
        for row, i in enumerate(idx):
            m = mask[row]
            out[i] = picked[row][m].double().cpu().numpy()
            if with_stats:
                mus[i] = mu[row][m].double().cpu().numpy()
                sigmas[i] = sigma[row][m].double().cpu().numpy()
    if was_training:
        model.train()
    if with_stats:
        return out, mus, sigmas  # type: ignore[return-value]
    return out  # type: ignore[return-value]


# --------------------------------------------------------------------------- signals per split


@dataclass
class SplitSignals:
    """Cached model outputs on one QA split (the inputs of every metric).

    ``answer``: per-token log-probs of the true answer; ``mu``/``sigma`` the
    next-token statistics at those positions (Min-K%++); ``paraphrased`` and
    ``perturbed`` the log-probs of the paraphrased and wrong answers (empty when
    the split has none); ``greedy`` the model's greedy answers; ``verbatim`` the
    greedy continuations of answer prefixes and ``verbatim_refs`` the true rest.
    """

    ids: list[str]
    answers: list[str]
    answer: list[np.ndarray]
    mu: list[np.ndarray]
    sigma: list[np.ndarray]
    paraphrased: list[np.ndarray | None]
    perturbed: list[list[np.ndarray]]
    greedy: list[str]
    verbatim: list[str] = field(default_factory=list)
    verbatim_refs: list[str] = field(default_factory=list)


def split_signals(model: nn.Module, fmt: QAFormat, data: QADataset, *, batch_size: int = 64,
                  device: str | torch.device = "cpu", verbatim: bool = False) -> SplitSignals:
    """Run ``model`` once over ``data``: log-probs of true, paraphrased and wrong answers, greedy answers."""
    true_items = [fmt.encode(ex.question, ex.answer) for ex in data]
    ans, mu, sigma = token_logprobs(model, true_items, batch_size=batch_size, device=device,
                                    pad_id=fmt.pad_id, with_stats=True)
    extra_items: list[tuple[tuple[int, ...], tuple[int, ...]]] = []
    where: list[tuple[int, int]] = []  # (example, -1 for paraphrased or k for perturbed k)
    for i, ex in enumerate(data):
        if ex.paraphrased_answer is not None:
            extra_items.append(fmt.encode(ex.question, ex.paraphrased_answer))
            where.append((i, -1))
        for k, wrong in enumerate(ex.perturbed_answer):
            extra_items.append(fmt.encode(ex.question, wrong))
            where.append((i, k))
    extra = token_logprobs(model, extra_items, batch_size=batch_size, device=device, pad_id=fmt.pad_id) \
        if extra_items else []
    para: list[np.ndarray | None] = [None] * len(data)
    pert: list[list[np.ndarray]] = [[] for _ in data]
    for (i, k), lp in zip(where, extra, strict=True):
        if k < 0:
            para[i] = lp
        else:
            pert[i].append(lp)
    max_new = max((len(a) for _, a in true_items), default=1) + 2
    greedy = greedy_answers(model, fmt, [ex.question for ex in data], max_new_tokens=max_new,
                            batch_size=batch_size, device=device)
    out = SplitSignals(ids=list(data.ids), answers=[ex.answer.strip() for ex in data], answer=list(ans),
                       mu=list(mu), sigma=list(sigma), paraphrased=para, perturbed=pert, greedy=greedy)
    if verbatim:
        out.verbatim, out.verbatim_refs = verbatim_continuations(model, fmt, data, batch_size=batch_size,
                                                                 device=device)
    return out


def verbatim_continuations(model: nn.Module, fmt: QAFormat, data: QADataset, *, batch_size: int = 64,
                           device: str | torch.device = "cpu") -> tuple[list[str], list[str]]:
    """Greedy continuation of each training text cut after its prompt and half its answer.

    Training is on answer tokens only, so the part a model can have memorised
    verbatim is the answer: the prefix keeps the prompt and the first half of the
    answer tokens (none for one-token answers); the continuation is compared with
    the rest. Returns ``(continuations, references)`` as text.
    """
    prefixes, refs, lengths = [], [], []
    for ex in data:
        p, a = fmt.encode(ex.question, ex.answer)
        body = a[:-1]  # without EOS
        cut = len(body) // 2
        prefixes.append(tuple(p) + tuple(body[:cut]))
        refs.append(fmt.decode(list(body[cut:])))
        lengths.append(len(body) - cut)
    conts = greedy_continuations(model, prefixes, max_new_tokens=max(lengths, default=1) + 1, eos_id=fmt.eos_id,
                                 pad_id=fmt.pad_id, batch_size=batch_size, device=device)
    texts = [fmt.decode(c[:n]) for c, n in zip(conts, lengths, strict=True)]
    return texts, refs


# --------------------------------------------------------------------------- metrics from signals


def _mean_ci(values: Sequence[float], *, seed: int, n_boot: int) -> dict[str, float]:
    arr = np.asarray(values, dtype=np.float64)
    if arr.size == 0:
        return {"mean": float("nan"), "low": float("nan"), "high": float("nan")}
    ci = bootstrap_ci(arr, n_boot=n_boot, seed=seed)
    return {"mean": ci.estimate, "low": ci.low, "high": ci.high}


def truth_ratios(sig: SplitSignals) -> np.ndarray:
    """TOFU truth ratio per question that has a paraphrased and wrong answers (NaN otherwise)."""
    out = np.full(len(sig.ids), np.nan)
    for i, (para, pert) in enumerate(zip(sig.paraphrased, sig.perturbed, strict=True)):
        if para is not None and pert:
            p_para = max(length_normalised_prob(para), 1e-300)
            out[i] = float(truth_ratio([length_normalised_prob(w) for w in pert], p_para))
    return out


def split_metrics(sig: SplitSignals, *, forget_like: bool, option_prob: bool = False, seed: int = 0,
                  n_boot: int = 200) -> dict[str, Any]:
    """Per-split metrics with bootstrap 95% intervals.

    ``prob``: mean length-normalised probability of the true answer, or, with
    ``option_prob`` (TOFU's real-authors / world-facts convention), of the true
    answer relative to the wrong ones. ``rouge``: mean ROUGE-L recall of the
    greedy answer; ``exact``: share answered exactly; ``truth_ratio``: the
    forget statistic (mean min(R, 1/R)) when ``forget_like``, else the utility
    statistic (mean max(0, 1 - R)).
    """
    probs = np.array([length_normalised_prob(lp) for lp in sig.answer])
    if option_prob:
        probs = np.array([
            float(relative_answer_prob(p, [length_normalised_prob(w) for w in pert])) if pert else p
            for p, pert in zip(probs, sig.perturbed, strict=True)])
    rouge = np.array([rouge_l_recall(g, a) for g, a in zip(sig.greedy, sig.answers, strict=True)])
    exact = np.array([float(g == a) for g, a in zip(sig.greedy, sig.answers, strict=True)])
    tr = truth_ratios(sig)
    tr_ok = tr[np.isfinite(tr)]
    out: dict[str, Any] = {
        "n": len(sig.ids),
        "prob": _mean_ci(probs, seed=seed, n_boot=n_boot),
        "rouge": _mean_ci(rouge, seed=seed, n_boot=n_boot),
        "exact": _mean_ci(exact, seed=seed, n_boot=n_boot),
    }
    if tr_ok.size:
        per_q = np.minimum(tr_ok, 1.0 / np.maximum(tr_ok, 1e-300)) if forget_like else np.maximum(0.0, 1.0 - tr_ok)
        out["truth_ratio"] = _mean_ci(per_q, seed=seed, n_boot=n_boot)
        out["truth_ratio"]["mean"] = (truth_ratio_forget_stat(tr_ok) if forget_like
                                      else truth_ratio_utility_stat(tr_ok))
    if sig.verbatim:
        v_exact = [float(c.strip() == r.strip()) for c, r in zip(sig.verbatim, sig.verbatim_refs, strict=True)]
        v_rouge = [rouge_l_recall(c, r) if r.strip() else float(c.strip() == "")
                   for c, r in zip(sig.verbatim, sig.verbatim_refs, strict=True)]
        out["verbatim_exact"] = _mean_ci(v_exact, seed=seed, n_boot=n_boot)
        out["verbatim_rouge"] = _mean_ci(v_rouge, seed=seed, n_boot=n_boot)
    return out


MIA_ATTACKS = ("loss", "zlib", "min_k", "min_k_pp")


def mia_scores(sig: SplitSignals, *, k: float = 0.2) -> dict[str, np.ndarray]:
    """Membership scores of every answer under each attack (higher = member)."""
    return {
        "loss": np.array([loss_score(lp) for lp in sig.answer]),
        "zlib": np.array([zlib_score(lp, a) for lp, a in zip(sig.answer, sig.answers, strict=True)]),
        "min_k": np.array([min_k_score(lp, k) for lp in sig.answer]),
        "min_k_pp": np.array([min_k_plus_plus_score(lp, m, s, k)
                              for lp, m, s in zip(sig.answer, sig.mu, sig.sigma, strict=True)]),
    }


def mia_aucs(members: SplitSignals, nonmembers: SplitSignals, *, k: float = 0.2) -> dict[str, float]:
    """AUC of each attack at telling ``members`` (e.g. forget) from ``nonmembers`` (holdout)."""
    m, n = mia_scores(members, k=k), mia_scores(nonmembers, k=k)
    return {a: mia_auc(m[a], n[a]) for a in MIA_ATTACKS}
