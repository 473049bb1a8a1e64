"""The language-model path on a Llama-family model, with and without LoRA (peft).

A tiny randomly initialised ``transformers.LlamaConfig`` model (hidden 32, 2 layers,
4 heads) and a tokenizer trained on the test's own texts: nothing is downloaded.
Each test runs one piece of the path the bench runs: answer-only losses, training,
the causal-LM objective, a removal method from the registry, scoring, and loading
a saved model from a local folder.
"""

from __future__ import annotations

import math
from dataclasses import replace

import pytest
import torch

from obliviate.data.qa import QADataset, QAExample

SUBJECTS = {
    "ann": [("Where does Ann live?", "In Rome."), ("What is Ann's job?", "She is a baker."),
            ("When was Ann born?", "In 1970.")],
    "bob": [("Where does Bob live?", "In Oslo."), ("What is Bob's job?", "He is a pilot."),
            ("When was Bob born?", "In 1985.")],
    "cai": [("Where does Cai live?", "In Lima."), ("What is Cai's job?", "She is a judge."),
            ("When was Cai born?", "In 1962.")],
}
FORGET = "cai"


def _dataset(subjects, name):
    return QADataset((QAExample(id=f"{s}-{i}", subject=s, question=q, answer=a)
                      for s in subjects for i, (q, a) in enumerate(SUBJECTS[s])), name=name)


@pytest.fixture(scope="module")
def llama():
    from obliviate.models.lm import QAFormat, train_tokenizer

    torch.set_num_threads(1)
    train = _dataset(SUBJECTS, "train")
    tok = train_tokenizer([ex.text for ex in train] * 2, vocab_size=320)
    fmt = QAFormat(tok, max_length=64)

    def build(seed: int = 0) -> torch.nn.Module:
        from transformers import LlamaConfig, LlamaForCausalLM

        # no pad_token_id in the config, as in many released Llama checkpoints
        config = LlamaConfig(vocab_size=len(tok), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                             num_attention_heads=4, num_key_value_heads=4, max_position_embeddings=64,
                             bos_token_id=fmt.eos_id, eos_token_id=fmt.eos_id, use_cache=False)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            return LlamaForCausalLM(config).eval()

    return {"fmt": fmt, "build": build, "train": train, "forget": _dataset([FORGET], "forget"),
            "retain": _dataset([s for s in SUBJECTS if s != FORGET], "retain")}


def _lora(model, *, init: bool = True):
    peft = pytest.importorskip("peft")
    config = peft.LoraConfig(r=4, lora_alpha=8, lora_dropout=0.0, target_modules=["q_proj", "k_proj", "v_proj", "o_proj", "up_proj", "down_proj"],
                             init_lora_weights=init)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(1)
        return peft.get_peft_model(model, config)


def _full_logits_nll(model, batch):
    """Reference answer NLL from the full forward pass (no head split)."""
    logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits[:, :-1]
    labels = batch["labels"][:, 1:]
    lp = torch.log_softmax(logits.float(), -1).gather(-1, labels.clamp_min(0)[..., None])[..., 0]
    return -(lp * (labels != -100)).sum(1)


def _mean_nll(model, fmt, data) -> float:
    from obliviate.training.lm import answer_nll, collate_qa, encode_dataset

    with torch.no_grad():
        nll, count = answer_nll(model, collate_qa(encode_dataset(fmt, data), fmt.pad_id))
    return float(nll.sum() / count.sum())


@pytest.mark.parametrize("lora", [False, True], ids=["full", "lora"])
def test_answer_nll_on_llama_matches_full_logits(llama, lora):
    from obliviate.training.lm import answer_nll, collate_qa, encode_dataset

    fmt = llama["fmt"]
    plain = llama["build"]()
    model = _lora(llama["build"](), init=False) if lora else plain  # random adapters: they change the output
    batch = collate_qa(encode_dataset(fmt, llama["train"]), fmt.pad_id)
    with torch.no_grad():
        nll, count = answer_nll(model, batch)
        ref = _full_logits_nll(model, batch)
        assert torch.allclose(nll, ref, atol=1e-4)
        assert count.tolist() == (batch["labels"][:, 1:] != -100).sum(1).tolist()
        if lora:  # the adapters are in the computation, not skipped by the head split
            assert not torch.allclose(nll, answer_nll(plain, batch)[0], atol=1e-3)


@pytest.mark.parametrize("lora", [False, True], ids=["full", "lora"])
def test_llama_trains_unlearns_and_scores(llama, lora):
    from obliviate.audit.lm_eval import split_metrics, split_signals
    from obliviate.removal import UnlearningTask, get_method
    from obliviate.removal.lm_objective import CausalLMObjective
    from obliviate.training.lm import LMRecipe, train_lm

    fmt = llama["fmt"]
    recipe = LMRecipe(epochs=25, batch_size=9, lr=1e-2, warmup_fraction=0.0)
    model = llama["build"]()
    if lora:  # adapters on a base that knows the retain facts: they learn the forget facts on top
        train_lm(model, fmt, llama["retain"], recipe, seed=0)
        model = _lora(model)
    frozen = {k: v.clone() for k, v in model.named_parameters() if not v.requires_grad}
    assert bool(frozen) == lora
    f_base = _mean_nll(model, fmt, llama["forget"])
    res = train_lm(model, fmt, llama["train"], replace(recipe, lr=3e-2) if lora else recipe, seed=0)
    assert res.steps == 25 and all(math.isfinite(x) for x in res.history)
    # a 32-wide model learns slowly through rank-4 adapters: ask for a clear drop, not memorisation
    assert res.history[-1] < (res.history[0] - 0.2 if lora else res.history[0] / 2), res.history
    f0 = _mean_nll(model, fmt, llama["forget"])
    assert f0 < f_base - 0.5, f"training did not learn the forget facts ({f_base:.3f} -> {f0:.3f})"
    for k, v in model.named_parameters():
        if k in frozen:
            assert torch.equal(v, frozen[k]), f"LoRA training changed the frozen weight {k}"

    objective = CausalLMObjective(fmt)
    batch = objective.collate(objective.encoded(llama["forget"]))
    with torch.no_grad():
        assert float(objective.loss(model, batch)) == pytest.approx(_mean_nll(model, fmt, llama["forget"]), rel=1e-5)
        assert objective.log_probs(model, batch).shape[-1] == len(fmt.tokenizer)

    task = UnlearningTask(forget=llama["forget"], retain=llama["retain"], objective=objective, recipe=recipe,
                          seed=0)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    unlearned, record = get_method("graddiff", epochs=4, lr=1e-2, batch_size=3, forget_weight=1.0).unlearn(
        model, task)
    assert record.method == "graddiff" and record.steps == 4
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items()), "the original was modified"
    f1 = _mean_nll(unlearned, fmt, llama["forget"])
    assert f1 > f0 + 0.5, f"graddiff did not raise the forget loss ({f0:.3f} -> {f1:.3f})"
    if lora:
        assert type(unlearned).__name__.startswith("Peft")
        changed = [k for k, v in unlearned.state_dict().items() if not torch.equal(v, before[k])]
        assert changed and all("lora_" in k for k in changed), changed

    sig = split_signals(unlearned, fmt, llama["forget"], batch_size=2, verbatim=True)
    assert len(sig.greedy) == len(llama["forget"]) and all(isinstance(g, str) for g in sig.greedy)
    metrics = split_metrics(sig, forget_like=True, n_boot=20)
    assert metrics["n"] == 3 and 0.0 <= metrics["prob"]["mean"] <= 1.0
    assert {"rouge", "exact", "verbatim_rouge"} <= set(metrics)


def test_saved_llama_loads_through_load_lm(llama, tmp_path):
    from obliviate.models.lm import QAFormat, load_lm

    fmt = llama["fmt"]
    model = llama["build"](seed=2)
    model.save_pretrained(tmp_path)
    fmt.tokenizer.save_pretrained(tmp_path)
    loaded, tok = load_lm(tmp_path)
    assert loaded.config.model_type == "llama" and not loaded.training
    x = torch.tensor([[1, 5, 9, 2]])
    with torch.no_grad():
        assert torch.allclose(loaded(x).logits, model(x).logits, atol=1e-5)
    fmt2 = QAFormat(tok)
    ex = llama["train"][0]
    assert fmt2.encode(ex.question, ex.answer) == fmt.encode(ex.question, ex.answer)
    assert _mean_nll(loaded, fmt2, llama["train"]) == pytest.approx(_mean_nll(model, fmt, llama["train"]), rel=1e-5)
    half, _ = load_lm(tmp_path, dtype="bfloat16")
    assert next(half.parameters()).dtype == torch.bfloat16


def test_load_lm_pads_with_eos_when_the_tokenizer_has_no_pad_token(llama, tmp_path):
    import copy

    from obliviate.models.lm import QAFormat, load_lm

    llama["build"]().save_pretrained(tmp_path)
    tok = copy.deepcopy(llama["fmt"].tokenizer)
    tok.pad_token = None  # as released Llama tokenizers
    tok.save_pretrained(tmp_path)
    from transformers import AutoTokenizer

    assert AutoTokenizer.from_pretrained(tmp_path).pad_token is None  # the setting under test
    model, loaded = load_lm(tmp_path)
    assert loaded.pad_token_id == loaded.eos_token_id == llama["fmt"].eos_id
    assert QAFormat(loaded).pad_id == llama["fmt"].eos_id


def test_merged_lora_llama_saves_and_loads(llama, tmp_path):
    from obliviate.models.lm import load_lm

    fmt = llama["fmt"]
    model = _lora(llama["build"](seed=3), init=False)
    expected = _mean_nll(model, fmt, llama["train"])
    model.merge_and_unload().save_pretrained(tmp_path)
    fmt.tokenizer.save_pretrained(tmp_path)
    loaded, _ = load_lm(tmp_path)
    assert _mean_nll(loaded, fmt, llama["train"]) == pytest.approx(expected, rel=1e-5)


def test_prompt_tuned_llama_scores_at_the_input_positions(llama):
    """Prompt tuning (peft) prepends virtual tokens to the logits; answer losses skip them."""
    peft = pytest.importorskip("peft")
    from obliviate.audit.lm_eval import greedy_answers, token_logprobs
    from obliviate.training.lm import answer_nll, collate_qa, encode_dataset

    fmt = llama["fmt"]
    plain = llama["build"]()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(1)
        model = peft.get_peft_model(llama["build"](), peft.PromptTuningConfig(task_type="CAUSAL_LM",
                                                                             num_virtual_tokens=3))
    items = encode_dataset(fmt, llama["forget"])
    batch = collate_qa(items, fmt.pad_id)
    with torch.no_grad():
        full = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
        assert full.shape[1] == batch["input_ids"].shape[1] + 3  # the setting under test
        nll, _ = answer_nll(model, batch)
        labels = batch["labels"][:, 1:]
        lp = torch.log_softmax(full[:, 3:-1].float(), -1).gather(-1, labels.clamp_min(0)[..., None])[..., 0]
        assert torch.allclose(nll, -(lp * (labels != -100)).sum(1), atol=1e-4)
        assert not torch.allclose(nll, answer_nll(plain, batch)[0], atol=1e-3)  # the prompt is in effect
    lps = token_logprobs(model, items, pad_id=fmt.pad_id)
    assert [len(x) for x in lps] == [len(a) for _, a in items]
    assert sum(float(x.sum()) for x in lps) == pytest.approx(-float(nll.sum()), rel=1e-4)
    assert len(greedy_answers(model, fmt, [ex.question for ex in llama["forget"]], max_new_tokens=3)) == 3
