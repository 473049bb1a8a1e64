"""Issue 12 end to end: ``obliviate bench --task persons --model-path DIR`` on a local Llama, through LoRA."""

from __future__ import annotations

import json

import pytest
import torch
from typer.testing import CliRunner

from obliviate.cli.main import app

CORPUS = {"n_people": 6, "forget_fraction": 0.17, "seed": 1, "n_perturbed": 3}


@pytest.mark.slow
def test_bench_unlearns_a_local_llama_through_lora(tmp_path):
    pytest.importorskip("peft")
    from transformers import LlamaConfig, LlamaForCausalLM

    from obliviate.data.persons import make_persons_corpus
    from obliviate.models.lm import train_tokenizer

    corpus = make_persons_corpus(CORPUS["n_people"], CORPUS["forget_fraction"], seed=CORPUS["seed"],
                                 n_perturbed=CORPUS["n_perturbed"])
    tok = train_tokenizer([ex.text for ex in corpus.train], vocab_size=500)
    config = LlamaConfig(vocab_size=len(tok), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=4, max_position_embeddings=128,
                         bos_token_id=tok.eos_token_id, eos_token_id=tok.eos_token_id)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        LlamaForCausalLM(config).save_pretrained(tmp_path / "base")
    tok.save_pretrained(tmp_path / "base")
    cfg = tmp_path / "run.json"
    cfg.write_text(json.dumps({
        "corpus": CORPUS, "eval": {"max_examples": 24, "n_boot": 20},
        "attacks": {"relearn": {"steps": 3, "batch_size": 8}, "icl": {"max_questions": 8, "n_context": 2}},
        "lora": {"r": 4, "alpha": 8}, "method_config": {"graddiff": {"epochs": 1, "lr": 1e-3, "batch_size": 8}},
        "parallel_training": False, "method_workers": 1, "cache_dir": str(tmp_path / "cache")}))
    out = tmp_path / "run"
    res = CliRunner().invoke(app, ["bench", "--task", "persons", "--config", str(cfg), "--model-path",
                                   str(tmp_path / "base"), "--methods", "graddiff", "--epochs", "1",
                                   "--out", str(out), "--no-progress"])
    assert res.exit_code == 0, res.output
    records = json.loads((out / "results.json").read_text())
    assert [r["method"] for r in records] == ["original", "retrain", "graddiff"]
    assert records[2]["steps"] > 0
    meta = json.loads((out / "meta.json").read_text())
    assert meta["seeds"]["0"]["model"]["kind"] == "local"
