"""Greedy decoding: left-padded batches decode as each prompt alone would, with no transformers warnings."""

from __future__ import annotations

import logging
import warnings

import pytest
import torch

PROMPTS = [[5, 9, 12, 7, 3, 8], [4], [11, 6, 2]]  # different lengths: the batch is left-padded


@pytest.fixture(scope="module")
def tokenizer():
    from obliviate.models.lm import train_tokenizer

    return train_tokenizer(["Question: Who is Ann?\nAnswer: A baker in Rome."] * 3, vocab_size=300)


def _llama(vocab: int, eos: int):
    from transformers import LlamaConfig, LlamaForCausalLM

    # no pad_token_id, as in many released Llama checkpoints: generate cannot infer the padding
    config = LlamaConfig(vocab_size=vocab, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=4, max_position_embeddings=64,
                         bos_token_id=eos, eos_token_id=eos)
    torch.manual_seed(0)
    return LlamaForCausalLM(config).eval()


def _gpt2(vocab: int, eos: int):
    from obliviate.models.lm import GPT2Spec, build_gpt2

    return build_gpt2(GPT2Spec(n_layer=1, n_embd=32, n_head=2, n_positions=64), vocab, seed=0, eos_token_id=eos)


class _Messages(logging.Handler):
    """Collects transformers' log records (its logger does not propagate to the root)."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.levelno >= logging.WARNING:
            self.messages.append(record.getMessage())


def _noise(fn) -> list[str]:
    """Warnings and transformers warning logs raised while ``fn()`` runs."""
    handler = _Messages()
    logger = logging.getLogger("transformers")
    logger.addHandler(handler)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            fn()
    finally:
        logger.removeHandler(handler)
    return handler.messages + [str(w.message) for w in caught]


@pytest.mark.parametrize("build", [_llama, _gpt2], ids=["llama", "gpt2"])
def test_batched_greedy_decoding_is_quiet_and_matches_one_by_one(tokenizer, build, capfd):
    from obliviate.audit.lm_eval import token_logprobs
    from obliviate.models.lm import QAFormat
    from obliviate.models.lm_generate import greedy_answers, greedy_continuations

    fmt = QAFormat(tokenizer)
    model = build(len(tokenizer), fmt.eos_id)
    kw = {"max_new_tokens": 4, "eos_id": fmt.eos_id, "pad_id": fmt.pad_id}
    out: dict[str, list] = {}
    noise = _noise(lambda: out.update(
        batched=greedy_continuations(model, PROMPTS, batch_size=3, **kw),
        answers=greedy_answers(model, fmt, ["Who is Ann?", "Where?"], max_new_tokens=3),
        lp=token_logprobs(model, [((5, 9, 12), (7, 3)), ((4,), (8,))], pad_id=fmt.pad_id)))
    assert noise == []
    assert "attention mask" not in capfd.readouterr().err
    alone = [greedy_continuations(model, [p], batch_size=1, **kw)[0] for p in PROMPTS]
    assert out["batched"] == alone  # the mask keeps the left padding out of the computation
    assert all(0 < len(c) <= 4 for c in alone) and len(out["answers"]) == 2


def test_unmasked_batched_generate_does_warn(tokenizer):
    """Control: the check above sees transformers' warning when the mask and pad id are missing."""
    from obliviate.models.lm_generate import left_padded

    model = _llama(len(tokenizer), 0)
    ids, _ = left_padded(PROMPTS, 0)
    noise = _noise(lambda: model.generate(input_ids=ids, do_sample=False, max_new_tokens=2))
    assert any("attention mask" in m.lower() for m in noise), noise
