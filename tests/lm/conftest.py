"""Fixtures for the language-model tests: a tiny persons corpus and a tiny GPT-2 trained once.

Sizes are chosen so every LM test together runs in about a minute
on two shared CPU cores: 6 people (one of them forgotten),
a 2-layer, 64-wide GPT-2 with a 600-token vocabulary, trained on the 108 person facts.
"""

from __future__ import annotations

import os

import pytest
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

pytest.importorskip("transformers")
pytest.importorskip("tokenizers")

N_PEOPLE = 6
CORPUS_SEED = 1
TINY_SPEC = {"n_layer": 2, "n_embd": 64, "n_head": 2, "n_positions": 128}
TINY_RECIPE = {"epochs": 60, "batch_size": 16, "lr": 5e-3, "warmup_fraction": 0.05}


@pytest.fixture(scope="session")
def tiny_lm():
    """Corpus, tokenizer/format, and original + retain-only models trained on it."""
    from obliviate.data.persons import make_persons_corpus
    from obliviate.models.lm import GPT2Spec, QAFormat, build_gpt2, train_tokenizer
    from obliviate.training.lm import LMRecipe, train_lm

    torch.set_num_threads(1)
    # Corpus seed 1 draws no Italian people: Faker's it_IT city() depends on PYTHONHASHSEED,
    # so other seeds give a different corpus in every process.
    corpus = make_persons_corpus(N_PEOPLE, 1 / N_PEOPLE, seed=CORPUS_SEED, n_perturbed=3)
    texts = [ex.text for ds in (corpus.train, corpus.holdout, corpus.general) for ex in ds]
    tok = train_tokenizer(texts, vocab_size=600)
    fmt = QAFormat(tok, max_length=TINY_SPEC["n_positions"])
    spec = GPT2Spec(**TINY_SPEC)
    recipe = LMRecipe(**TINY_RECIPE)
    train = corpus.train  # general facts left out: fewer examples, faster tests
    retain = corpus.retain
    original = build_gpt2(spec, len(tok), seed=0, eos_token_id=fmt.eos_id)
    res = train_lm(original, fmt, train, recipe, seed=0)
    retained = build_gpt2(spec, len(tok), seed=0, eos_token_id=fmt.eos_id)
    train_lm(retained, fmt, retain, recipe, seed=0)
    return {"corpus": corpus, "fmt": fmt, "spec": spec, "recipe": recipe, "train": train, "retain": retain,
            "forget": corpus.forget, "original": original, "retained": retained, "result": res}
