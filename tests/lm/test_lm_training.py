"""Tokenizer, GPT-2 construction, answer-only training, exact-answer accuracy, local loading."""

from __future__ import annotations

import pytest
import torch

from obliviate.errors import ConfigError, DatasetNotFoundError


def test_tokenizer_is_deterministic_and_round_trips(tiny_lm):
    from obliviate.models.lm import train_tokenizer

    corpus = tiny_lm["corpus"]
    texts = [ex.text for ex in corpus.train]
    a = train_tokenizer(texts, vocab_size=400)
    b = train_tokenizer(texts, vocab_size=400)
    assert a.backend_tokenizer.to_str() == b.backend_tokenizer.to_str()
    text = "Question: Où est Zoë Łukasz?\nAnswer: +44 20 7946"
    assert a.decode(a(text)["input_ids"]) == text  # byte-level: no unknown tokens
    with pytest.raises(ConfigError, match="vocab_size"):
        train_tokenizer(texts, vocab_size=10)


def test_prompt_is_prefix_and_answer_ends_with_eos(tiny_lm):
    fmt = tiny_lm["fmt"]
    ex = tiny_lm["train"][0]
    prompt, answer = fmt.encode(ex.question, ex.answer)
    assert prompt == fmt.prompt_ids(ex.question)
    assert answer[-1] == fmt.eos_id
    assert fmt.decode(list(answer)) == ex.answer


def test_build_gpt2_is_seeded():
    from obliviate.models.lm import GPT2Spec, build_gpt2

    spec = GPT2Spec(n_layer=1, n_embd=32, n_head=2, n_positions=32)
    a, b, c = (build_gpt2(spec, 300, seed=s) for s in (0, 0, 1))
    assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values(), strict=True))
    assert not torch.equal(a.transformer.h[0].mlp.c_fc.weight, c.transformer.h[0].mlp.c_fc.weight)
    with pytest.raises(ConfigError, match="divisible"):
        GPT2Spec(n_embd=30, n_head=4)


def test_answer_only_training_memorises(tiny_lm):
    from obliviate.training.lm import exact_answer_accuracy

    res = tiny_lm["result"]
    assert res.history[-1] < res.history[0] / 10
    acc = exact_answer_accuracy(tiny_lm["original"], tiny_lm["fmt"], tiny_lm["train"])
    assert acc >= 0.9, f"the tiny model answers only {acc:.2f} of its training questions exactly"
    # never-seen people are not answered
    assert exact_answer_accuracy(tiny_lm["retained"], tiny_lm["fmt"], tiny_lm["forget"]) < 0.3


def test_training_is_deterministic(tiny_lm):
    from obliviate.models.lm import build_gpt2
    from obliviate.training.lm import LMRecipe, train_lm

    fmt, spec = tiny_lm["fmt"], tiny_lm["spec"]
    data = tiny_lm["forget"]
    weights = []
    for _ in range(2):
        m = build_gpt2(spec, len(fmt.tokenizer), seed=3, eos_token_id=fmt.eos_id)
        train_lm(m, fmt, data, LMRecipe(epochs=2, batch_size=8), seed=3)
        weights.append(m.state_dict())
    assert all(torch.equal(weights[0][k], weights[1][k]) for k in weights[0])


def test_answer_nll_matches_full_logits(tiny_lm):
    from obliviate.training.lm import answer_nll, collate_qa, encode_dataset

    fmt, model = tiny_lm["fmt"], tiny_lm["original"]
    batch = collate_qa(encode_dataset(fmt, tiny_lm["train"][:5]), fmt.pad_id)
    nll, count = answer_nll(model, batch)
    logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits[:, :-1]
    labels = batch["labels"][:, 1:]
    lp = torch.log_softmax(logits, -1).gather(-1, labels.clamp_min(0)[..., None])[..., 0]
    ref = -(lp * (labels != -100)).sum(1)
    assert torch.allclose(nll, ref, atol=1e-4)
    assert count.tolist() == (labels != -100).sum(1).tolist()


def test_training_cache_reuses_model(tiny_lm, tmp_path):
    from obliviate.training.cache import ModelCache
    from obliviate.training.lm import LMRecipe, train_lm_cached

    cache = ModelCache(tmp_path)
    kw = dict(seed=0, cache=cache)
    a = train_lm_cached(tiny_lm["spec"], tiny_lm["fmt"], tiny_lm["forget"], LMRecipe(epochs=1, batch_size=8), **kw)
    b = train_lm_cached(tiny_lm["spec"], tiny_lm["fmt"], tiny_lm["forget"], LMRecipe(epochs=1, batch_size=8), **kw)
    assert not a.cached and b.cached and b.wall_s == pytest.approx(a.wall_s)
    assert all(torch.equal(x, y) for x, y in zip(a.model.state_dict().values(), b.model.state_dict().values(),
                                                 strict=True))


def test_load_lm_round_trip_and_chat_template(tiny_lm, tmp_path):
    from obliviate.models.lm import QAFormat, load_lm

    tiny_lm["original"].save_pretrained(tmp_path)
    tok = tiny_lm["fmt"].tokenizer
    tok.chat_template = "{% for m in messages %}<{{ m['role'] }}>{{ m['content'] }}\n{% endfor %}" \
                        "{% if add_generation_prompt %}<assistant>{% endif %}"
    tok.save_pretrained(tmp_path)
    tok.chat_template = None
    model, loaded = load_lm(tmp_path)
    x = torch.tensor([[1, 2, 3]])
    assert torch.allclose(model(x).logits, tiny_lm["original"](x).logits, atol=1e-5)
    chat = QAFormat(loaded, chat_template=True)
    assert chat.prompt_text("Who?") == "<user>Who?\n<assistant>"
    assert chat.context_prompt_ids("Who?", [("Q1", "A1")]) == tuple(loaded("<user>Q1\n<assistant>A1\n<user>Who?\n<assistant>",
                                                                         add_special_tokens=False)["input_ids"])
    with pytest.raises(DatasetNotFoundError):
        load_lm(tmp_path / "missing")
    with pytest.raises(ConfigError, match="chat template"):
        QAFormat(tiny_lm["fmt"].tokenizer, chat_template=True)
