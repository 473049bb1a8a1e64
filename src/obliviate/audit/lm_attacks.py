"""Attacks beyond the benchmarks' metrics: relearning and in-context relearning.

Both ask whether "forgotten" facts come back, and both run the identical attack on
the retain-only model (never exposed to the forget set) as the control, because a
model can regain facts it never saw (from structure shared with the relearn part,
or simply by copying from its prompt). What comes back *beyond* the control is
evidence that the unlearned model suppressed rather than removed the facts; what
comes back for the control too is the seed paper's point that even exact removal
does not guarantee suppression once context is supplied at inference time.

- :func:`relearn_split` splits the forget set, per subject, into a relearn part A
  and a held-back part B. :func:`relearn` fine-tunes a copy of a model for ``k``
  steps on A and measures B before and after; :func:`relearn_attack` does it for a
  model and its control and returns the recovery (pure arithmetic in
  :func:`obliviate.audit.attacks.relearn.relearn_recovery`).
- :func:`in_context` puts facts in the prompt: ``mode="facts"`` the forgotten
  fact itself among other facts about the same subject, ``mode="related"`` only
  the other facts about the subject; it measures greedy answers with and without.
"""

from __future__ import annotations

import copy
from dataclasses import asdict, dataclass
from typing import Any, Literal

import numpy as np
import torch
from torch import nn

from obliviate.audit.attacks.relearn import relearn_recovery
from obliviate.audit.lm_eval import greedy_continuations, token_logprobs
from obliviate.audit.lm_metrics import length_normalised_prob, rouge_l_recall
from obliviate.data.qa import QADataset
from obliviate.errors import ConfigError
from obliviate.models.lm import QAFormat
from obliviate.training.lm import answer_nll, collate_qa, encode_dataset
from obliviate.training.trainer import batch_indices, seeded_generator

__all__ = ["RelearnConfig", "ICLConfig", "relearn_split", "relearn", "relearn_attack", "in_context",
           "icl_attack", "answer_scores"]


@dataclass(frozen=True)
class RelearnConfig:
    """The relearning attack: ``steps`` Adam steps at ``lr`` on ``fraction`` of each subject's forget facts."""

    steps: int = 20
    lr: float = 1e-3
    batch_size: int = 16
    fraction: float = 0.5

    def __post_init__(self) -> None:
        problems = []
        if not isinstance(self.steps, int) or self.steps < 1:
            problems.append(f"The 'steps' parameter of the relearning attack must be an int >= 1; got {self.steps!r} instead.")
        if not self.lr > 0:
            problems.append(f"The 'lr' parameter of the relearning attack must be > 0; got {self.lr!r} instead.")
        if not isinstance(self.batch_size, int) or self.batch_size < 1:
            problems.append(f"The 'batch_size' parameter of the relearning attack must be an int >= 1; got {self.batch_size!r} instead.")
        if not 0 < self.fraction < 1:
            problems.append(f"The 'fraction' parameter of the relearning attack must be in (0, 1); got {self.fraction!r} instead.")
        if problems:
            raise ConfigError("Invalid relearning attack configuration:", problems)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class ICLConfig:
    """In-context relearning: ``n_context`` question-answer pairs shown before each question."""

    n_context: int = 2
    max_questions: int | None = 120  # a seeded sample of forget questions (None = all)

    def __post_init__(self) -> None:
        if not isinstance(self.n_context, int) or self.n_context < 1:
            raise ConfigError(f"The 'n_context' parameter of the in-context attack must be an int >= 1; "
                              f"got {self.n_context!r} instead.")
        if self.max_questions is not None and self.max_questions < 1:
            raise ConfigError(f"The 'max_questions' parameter of the in-context attack must be >= 1 or None; "
                              f"got {self.max_questions!r} instead.")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def relearn_split(forget: QADataset, fraction: float = 0.5, *, seed: int = 0) -> tuple[QADataset, QADataset]:
    """Split each subject's facts into relearn (A) and held-back (B) parts, seeded.

    Every subject with two or more facts contributes to both parts, so relearning
    touches each forgotten person and recovery on B is about that person.
    """
    gen = np.random.default_rng(seeded_generator(seed, 0x9E1).initial_seed())
    a_ids: list[str] = []
    for subject in forget.subjects():
        ids = list(forget.by_subjects([subject]).ids)
        if len(ids) < 2:
            continue
        k = min(len(ids) - 1, max(1, int(round(fraction * len(ids)))))
        a_ids += [ids[int(i)] for i in gen.permutation(len(ids))[:k]]
    if not a_ids:
        raise ConfigError("The relearning attack needs a forget set with at least two facts about one subject.")
    return forget.subset(a_ids, name="forget/relearn"), forget.exclude(a_ids, name="forget/held-back")


def answer_scores(model: nn.Module, fmt: QAFormat, data: QADataset, *, batch_size: int = 64,
                  device: str | torch.device = "cpu") -> dict[str, float]:
    """Mean ROUGE-L recall of greedy answers, exact-match share, and mean answer probability."""
    items = encode_dataset(fmt, data)
    lps = token_logprobs(model, items, batch_size=batch_size, device=device, pad_id=fmt.pad_id)
    conts = greedy_continuations(model, [p for p, _ in items], max_new_tokens=max(len(a) for _, a in items) + 2,
                                 eos_id=fmt.eos_id, pad_id=fmt.pad_id, batch_size=batch_size, device=device)
    greedy = [fmt.decode(c) for c in conts]
    return {
        "rouge": float(np.mean([rouge_l_recall(g, ex.answer) for g, ex in zip(greedy, data, strict=True)])),
        "exact": float(np.mean([g == ex.answer.strip() for g, ex in zip(greedy, data, strict=True)])),
        "prob": float(np.mean([length_normalised_prob(lp) for lp in lps])),
    }


def relearn(model: nn.Module, fmt: QAFormat, relearn_part: QADataset, held_back: QADataset, cfg: RelearnConfig,
            *, seed: int, device: str | torch.device = "cpu") -> dict[str, float]:
    """Fine-tune a copy of ``model`` on ``relearn_part`` for ``cfg.steps`` steps; scores on ``held_back``."""
    before = answer_scores(model, fmt, held_back, device=device)
    # the attacker fine-tunes every weight, whatever the defender froze (a merged LoRA model comes back frozen)
    work = copy.deepcopy(model).to(device).train().requires_grad_(True)
    opt = torch.optim.Adam(work.parameters(), lr=cfg.lr)
    enc = encode_dataset(fmt, relearn_part)
    gen = seeded_generator(seed, 0x9E2)
    steps = 0
    while steps < cfg.steps:
        for idx in batch_indices(len(enc), cfg.batch_size, gen):
            if steps >= cfg.steps:
                break
            nll, count = answer_nll(work, collate_qa([enc[int(i)] for i in idx], fmt.pad_id, device=device))
            loss = nll.sum() / count.sum().clamp_min(1)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            steps += 1
    work.eval()
    after = answer_scores(work, fmt, held_back, device=device)
    return {**{f"{k}_before": v for k, v in before.items()}, **{f"{k}_after": v for k, v in after.items()}}


def relearn_attack(model_scores: dict[str, float], control_scores: dict[str, float]) -> dict[str, float]:
    """What relearning extracts on the held-back facts beyond the control, for ROUGE-L and probability.

    ``relearn_recovery`` (the headline) is the ROUGE-L *after-gap*: after the same k
    steps, how much better the attacked model answers the held-back facts than the
    never-exposed control does (0 = as if never seen; the original model scores high).
    It is preferred to the excess gain, which is capped for a model that has not
    forgotten (nothing to regain) and so reads negative for the original.
    ``*_gain`` / ``*_control_gain`` / ``*_excess`` are also reported.
    """
    out: dict[str, float] = {}
    for metric in ("rouge", "prob", "exact"):
        r = relearn_recovery(model_scores[f"{metric}_before"], model_scores[f"{metric}_after"],
                             control_scores[f"{metric}_before"], control_scores[f"{metric}_after"])
        out[f"relearn_{metric}_gain"] = r.gain
        out[f"relearn_{metric}_control_gain"] = r.control_gain
        out[f"relearn_{metric}_excess"] = r.excess_recovery
        out[f"relearn_{metric}_after_gap"] = r.after_gap
    out["relearn_recovery"] = out["relearn_rouge_after_gap"]
    out["relearn_rouge_after"] = model_scores["rouge_after"]
    return out


def _icl_sample(forget: QADataset, cfg: ICLConfig, seed: int) -> list[int]:
    n = len(forget)
    if cfg.max_questions is None or cfg.max_questions >= n:
        return list(range(n))
    gen = np.random.default_rng(seeded_generator(seed, 0x1C1).initial_seed())
    return sorted(int(i) for i in gen.choice(n, size=cfg.max_questions, replace=False))


def in_context(model: nn.Module, fmt: QAFormat, forget: QADataset, cfg: ICLConfig, *,
               mode: Literal["facts", "related", "none"], seed: int = 0,
               device: str | torch.device = "cpu") -> dict[str, float]:
    """Greedy answers to forget questions with facts about the same subject in the prompt.

    ``facts``: the question's own fact among ``n_context - 1`` other facts about the
    subject, at a seeded position; ``related``: ``n_context`` other facts only;
    ``none``: no context (the baseline). Returns mean ROUGE-L recall and exact share.
    """
    if mode not in ("facts", "related", "none"):
        raise ConfigError(f"The 'mode' parameter of in_context must be 'facts', 'related' or 'none'; got {mode!r} instead.")
    gen = np.random.default_rng(seeded_generator(seed, 0x1C2).initial_seed())
    by_subject: dict[str, list[int]] = {}
    for i, ex in enumerate(forget):
        by_subject.setdefault(ex.subject, []).append(i)
    chosen = _icl_sample(forget, cfg, seed)
    prompts = []
    for i in chosen:
        ex = forget[i]
        others = [j for j in by_subject[ex.subject] if j != i]
        if mode == "none":
            ctx_idx: list[int] = []
        else:
            k = cfg.n_context - 1 if mode == "facts" else cfg.n_context
            ctx_idx = [others[int(j)] for j in gen.permutation(len(others))[:k]]
            if mode == "facts":
                ctx_idx.insert(int(gen.integers(len(ctx_idx) + 1)), i)
        context = [(forget[j].question, forget[j].answer) for j in ctx_idx]
        prompts.append(fmt.context_prompt_ids(ex.question, context) if context else fmt.prompt_ids(ex.question))
    max_new = max(len(fmt.encode(forget[i].question, forget[i].answer)[1]) for i in chosen) + 2
    conts = greedy_continuations(model, prompts, max_new_tokens=max_new, eos_id=fmt.eos_id, pad_id=fmt.pad_id,
                                 device=device)
    greedy = [fmt.decode(c) for c in conts]
    answers = [forget[i].answer for i in chosen]
    return {"rouge": float(np.mean([rouge_l_recall(g, a) for g, a in zip(greedy, answers, strict=True)])),
            "exact": float(np.mean([g == a.strip() for g, a in zip(greedy, answers, strict=True)]))}


def icl_attack(model: nn.Module, fmt: QAFormat, forget: QADataset, cfg: ICLConfig, *, seed: int = 0,
               device: str | torch.device = "cpu") -> dict[str, float]:
    """ROUGE-L of forget answers without context, with the facts, and with related facts only.

    ``icl_recovery`` = ROUGE with the facts in the prompt minus ROUGE without: how much
    comes back. Compare it with the same number for the retain-only model (the control).
    """
    res = {mode: in_context(model, fmt, forget, cfg, mode=mode, seed=seed, device=device)
           for mode in ("none", "facts", "related")}
    return {
        "icl_rouge_none": res["none"]["rouge"],
        "icl_rouge_facts": res["facts"]["rouge"],
        "icl_rouge_related": res["related"]["rouge"],
        "icl_recovery": res["facts"]["rouge"] - res["none"]["rouge"],
        "icl_related_recovery": res["related"]["rouge"] - res["none"]["rouge"],
    }
