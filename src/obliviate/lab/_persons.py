"""Shared by the language-model experiments (m1, m3, m4): the small persons GPT-2, original and retain-only.

:func:`persons_models` generates the fictitious-persons corpus, compiles its forget request
(the forget people) into the guards' :class:`~obliviate.suppression.protect.ProtectedSet`, and
trains, through the model cache, the *original* on the whole training set and the
*retain-only* model (the exact reference: trained from scratch without the forget people)
with the same tokenizer, prompt format, spec, recipe and seed. Tokenizer, spec and recipe are
built exactly as :func:`obliviate.suppression.cases.persons_cases` builds the guard
evaluation's model, so the two share one cached original. :func:`sampled_answers` draws many
sampled answers per question (extraction by sampling); :func:`through_guard`
replays given model outputs through a guard pipeline.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from obliviate.data.qa import QADataset
from obliviate.data.request import ForgetRequest
from obliviate.models.lm import GPT2Spec, QAFormat, train_tokenizer
from obliviate.models.lm_generate import left_padded, sorted_batches
from obliviate.suppression.base import GUARDS, GuardSpec, OnFail
from obliviate.suppression.generators import ReplayGenerator
from obliviate.suppression.pipeline import GuardedGenerator
from obliviate.suppression.protect import ProtectedSet, compile_request
from obliviate.tasks.lm_config import LMBenchConfig
from obliviate.tasks.lm_models import DEFAULT_RECIPES
from obliviate.training.cache import ModelCache
from obliviate.training.lm import LMRecipe, exact_answer_accuracy, train_lm_cached

log = logging.getLogger(__name__)


def persons_problems(cfg: Any) -> list[str]:
    """Problems with the persons fields every LM experiment config has (n_people, epochs, ...)."""
    p = []
    if not isinstance(cfg.n_people, int) or cfg.n_people < 6:
        p.append(f"n_people must be an int >= 6; got {cfg.n_people!r}.")
    if not 0 < cfg.forget_fraction < 1:
        p.append(f"forget_fraction must be in (0, 1); got {cfg.forget_fraction!r}.")
    for name in ("epochs", "batch_size"):
        if getattr(cfg, name) < 1:
            p.append(f"{name} must be >= 1; got {getattr(cfg, name)!r}.")
    if cfg.seed < 0:
        p.append(f"seed must be >= 0; got {cfg.seed!r}.")
    return p


@dataclass
class PersonsModels:
    """The corpus, its forget request compiled for guards, and the two trained models."""

    corpus: Any
    training: QADataset
    retain: QADataset
    protected: ProtectedSet
    fmt: QAFormat
    spec: GPT2Spec
    recipe: LMRecipe
    original: nn.Module
    retrained: nn.Module
    meta: dict[str, Any]

    @property
    def forget(self) -> QADataset:
        return self.corpus.forget

    @property
    def holdout(self) -> QADataset:
        return self.corpus.holdout


def persons_models(*, n_people: int, forget_fraction: float, seed: int, epochs: int, batch_size: int,
                   use_cache: bool = True) -> PersonsModels:
    """Build the corpus and train (or load from the cache) the original and the retain-only GPT-2."""
    from obliviate.data.persons import make_persons_corpus

    corpus = make_persons_corpus(n_people, forget_fraction, seed=seed)
    training = corpus.training_set()
    retain = training.exclude(corpus.forget.ids, name="persons/retain+general")
    names = {p.id: (p.full_name,) for p in corpus.people}
    request = ForgetRequest(subjects=corpus.forget_subjects, source="subjects:" + ",".join(corpus.forget_subjects))
    protected = compile_request(request, corpus.train, retained=retain, names=names)
    texts = [ex.text for ds in (corpus.train, corpus.holdout, corpus.general) for ex in ds]
    model_cfg = LMBenchConfig().model
    tok = train_tokenizer(texts, vocab_size=model_cfg.vocab_size)
    spec = model_cfg.spec(256)  # room for in-context facts before the question (as the guard evaluation)
    fmt = QAFormat(tok, max_length=spec.n_positions)
    recipe = LMRecipe(**{**DEFAULT_RECIPES["persons"], "epochs": epochs, "batch_size": batch_size})
    cache = ModelCache(enabled=use_cache)
    orig = train_lm_cached(spec, fmt, training, recipe, seed=seed, cache=cache, description="persons original (lab)")
    retr = train_lm_cached(spec, fmt, retain, recipe, seed=seed, cache=cache, description="persons retain-only (lab)")
    acc = exact_answer_accuracy(orig.model, fmt, corpus.forget)
    log.info("persons models: original %.1f s (cached %s), retain-only %.1f s (cached %s); original answers %.2f "
             "of the forget set exactly", orig.wall_s, orig.cached, retr.wall_s, retr.cached, acc)
    meta = {"n_people": n_people, "forget_subjects": list(corpus.forget_subjects), "n_forget": len(corpus.forget),
            "n_holdout": len(corpus.holdout), "n_train": len(training), "spec": spec.to_dict(),
            "recipe": recipe.to_dict(), "original_train_s": orig.wall_s, "original_cached": orig.cached,
            "retrain_train_s": retr.wall_s, "retrain_cached": retr.cached, "original_forget_exact": acc,
            "faker_version": corpus.faker_version}
    return PersonsModels(corpus, training, retain, protected, fmt, spec, recipe, orig.model, retr.model, meta)


def guard_specs(names: list[str], pm: PersonsModels, *, stage: str = "output") -> list[GuardSpec]:
    """The named guards fitted on the forget request, each at ``stage``, refusing on a violation."""
    return [GuardSpec(GUARDS.get(n)().fit(pm.protected), stage, OnFail("refuse")) for n in names]


def through_guard(specs: list[GuardSpec], prompts: list[str], outputs: list[str]) -> list[tuple[str, bool]]:
    """What the guarded system shows for each prompt whose model output is given: (text, refused)."""
    guarded = GuardedGenerator(ReplayGenerator({("", p): o for p, o in zip(prompts, outputs, strict=True)}), specs)
    shown = []
    for p in prompts:
        out = guarded.generate(p)
        shown.append((out.text, out.refused))
    return shown


@torch.no_grad()
def sampled_answers(model: nn.Module, fmt: QAFormat, prompts: Sequence[Sequence[int]], *, n: int,
                    temperature: float, seed: int, max_new_tokens: int, batch_size: int = 32) -> list[list[str]]:
    """``n`` answers sampled at ``temperature`` for each prompt (token ids), seeded; ``[prompt][sample]``."""
    model.eval()
    out: list[list[str]] = [[] for _ in prompts]
    gen_state = torch.random.get_rng_state()
    try:
        torch.manual_seed(seed)
        for idx in sorted_batches([len(p) for p in prompts], max(1, batch_size // max(1, n) or 1)):
            ids, mask = left_padded([prompts[i] for i in idx], fmt.pad_id)
            seqs = model.generate(input_ids=ids, attention_mask=mask, do_sample=True, temperature=temperature,
                                  top_k=0, num_return_sequences=n, max_new_tokens=max_new_tokens,
                                  eos_token_id=fmt.eos_id, pad_token_id=fmt.pad_id, use_cache=True)
            new = seqs[:, ids.shape[1]:].tolist()
            for row, i in enumerate(idx):
                out[i] = [fmt.decode(s) for s in new[row * n:(row + 1) * n]]
    finally:
        torch.random.set_rng_state(gen_state)
    return out
