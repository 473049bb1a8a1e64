"""Where a language-model task's models come from: the built-in GPT-2 trained here, or your local model.

:class:`ModelSource` builds the tokenizer and the question-answer format, and
trains (or fine-tunes) the original on the training set and the retain-only
model on the retain set, with the same recipe and seed, through the model
cache; the two trainings run side by side in two processes on a multi-core CPU.
"""

from __future__ import annotations

import copy
import hashlib
import os
from pathlib import Path
from typing import Any

import torch
from torch import nn

from obliviate.data.qa import QADataset
from obliviate.errors import ConfigError
from obliviate.models.lm import QAFormat, build_gpt2, load_lm, train_tokenizer
from obliviate.progress import Progress
from obliviate.tasks.lm_config import LMBenchConfig
from obliviate.tasks.lm_data import LMTaskData
from obliviate.training.cache import ModelCache, TrainedModel, cache_key
from obliviate.training.lm import dataset_fingerprint, lm_cache_key, train_lm, train_lm_cached, tokenizer_fingerprint

# Recipes that fit each task's training set with the built-in GPT-2 (>= 90% exact answers
# on the persons corpus; see benchmarks/results/lm.md).
DEFAULT_RECIPES: dict[str, dict[str, Any]] = {
    "persons": {"epochs": 40, "batch_size": 64, "lr": 3e-3, "warmup_fraction": 0.03, "schedule": "cosine",
                "max_grad_norm": 1.0, "weight_decay": 0.0},
    "tofu": {"epochs": 30, "batch_size": 32, "lr": 2e-3, "warmup_fraction": 0.03, "schedule": "cosine",
             "max_grad_norm": 1.0, "weight_decay": 0.0},
}
# A pre-trained model from --model-path is fine-tuned, as TOFU does (5 epochs, lr 1e-5).
FINETUNE_RECIPE: dict[str, Any] = {"epochs": 5, "batch_size": 16, "lr": 1e-5, "warmup_fraction": 0.2,
                                   "schedule": "cosine", "max_grad_norm": 1.0, "weight_decay": 0.01}

# Named pre-trained models fine-tune with their own recipe: issue 17 reports SmolLM2-135M
# learning a 200-pair QA set in 5 epochs of full fine-tuning at lr 5e-5 (TOFU's 1e-5 is its
# rate for 7B models; a 135M model is usually fine-tuned at a higher rate).
PRETRAINED_RECIPES: dict[str, dict[str, Any]] = {
    "smollm2-135m": {"epochs": 5, "batch_size": 8, "lr": 5e-5, "warmup_fraction": 0.1, "schedule": "cosine",
                     "max_grad_norm": 1.0, "weight_decay": 0.01},
}


def base_recipe(cfg: LMBenchConfig) -> dict[str, Any]:
    """The default training recipe: the built-in GPT-2's for the task, or a pre-trained model's fine-tuning."""
    if cfg.pretrained_name is not None:
        return PRETRAINED_RECIPES[cfg.pretrained_name]
    return FINETUNE_RECIPE if cfg.model_path is not None else DEFAULT_RECIPES[cfg.task]


def training_precision(cfg: LMBenchConfig) -> Any:
    """The context that training steps (fine-tuning, methods) run in: bf16 autocast on request, else nothing."""
    import contextlib

    if not cfg.uses_bf16():
        return contextlib.nullcontext()
    device_type = "cuda" if str(cfg.device).startswith("cuda") else "cpu"
    return torch.autocast(device_type, dtype=torch.bfloat16)


def pretrained_folder(cfg: LMBenchConfig, cache: ModelCache) -> str | None:
    """The local folder of the pre-trained model: ``model_path``, or a named model converted into the cache."""
    if cfg.pretrained_name is not None:
        from obliviate.models.smollm2 import ensure_smollm2

        return str(ensure_smollm2(cache.root))
    return cfg.model_path


def _path_fingerprint(path: str) -> str:
    folder = Path(path).expanduser()
    parts = []
    for f in sorted(folder.glob("*")):
        if f.is_file():
            st = f.stat()
            parts.append(f"{f.name}:{st.st_size}:{st.st_mtime_ns}")
    return hashlib.sha256("|".join(parts).encode()).hexdigest()[:24]


class ModelSource:
    """Where the original and retain-only models come from: the built-in GPT-2 or a local model."""

    def __init__(self, cfg: LMBenchConfig, data: LMTaskData, *, seed: int, cache: ModelCache,
                 progress: Progress) -> None:
        self.cfg, self.data, self.seed, self.cache, self.progress = cfg, data, seed, cache, progress
        self.base_path = pretrained_folder(cfg, cache)
        if self.base_path is None:
            tok = train_tokenizer(data.tokenizer_texts, vocab_size=cfg.model.vocab_size)
            pairs = [QAFormat(tok).encode(ex.question, ex.answer) for ds in (data.train, *data.evals.values())
                     for ex in ds]
            longest = max(len(p) + len(a) for p, a in pairs)
            # greedy decoding pads a batch to its longest prompt, then adds the longest answer's length
            decoding = max(len(p) for p, _ in pairs) + max(len(a) for _, a in pairs) + 2
            n_ctx = cfg.attacks.icl.n_context + 1 if cfg.attacks.icl.enabled else 1
            self.n_positions = cfg.model.n_positions or 32 * ((max(longest * n_ctx, decoding) + 8 + 31) // 32)
            self.fmt = QAFormat(tok, max_length=self.n_positions)
            self.spec = cfg.model.spec(self.n_positions)
            self.recipe = cfg.recipe.resolve(DEFAULT_RECIPES[cfg.task])
            self._base: nn.Module | None = None
        else:
            base, tok = load_lm(self.base_path, device=cfg.device, dtype=cfg.dtype)
            self._base = base
            limit = getattr(base.config, "max_position_embeddings", None) or getattr(base.config, "n_positions", None)
            self.n_positions = int(limit) if limit else 2048
            self.fmt = QAFormat(tok, chat_template=cfg.chat_template, max_length=self.n_positions)
            self.recipe = cfg.recipe.resolve(base_recipe(cfg))

    def describe(self) -> dict[str, Any]:
        out: dict[str, Any] = {"recipe": self.recipe.to_dict(), "format": self.fmt.describe()}
        if self._base is None:
            out["model"] = {"kind": "gpt2", **self.spec.to_dict(), "vocab_size": len(self.fmt.tokenizer),
                            "parameters": None}
        else:
            out["model"] = {"kind": "local" if self.cfg.pretrained_name is None else self.cfg.pretrained_name,
                            "path": self.base_path, "model_type": getattr(self._base.config, "model_type", None),
                            "bf16_autocast": self.cfg.uses_bf16()}
        return out

    def train_pair(self, original: QADataset, retain: QADataset) -> tuple[TrainedModel, TrainedModel]:
        """The original and the retain-only model; trained side by side in two processes when allowed.

        Two single-threaded trainings on two cores take the time of one; each is the same
        deterministic computation as in this process, so the weights are identical.
        """
        cfg = self.cfg
        parallel = (cfg.parallel_training and self._base is None and str(cfg.device) == "cpu"
                    and (os.cpu_count() or 1) >= 2)
        if parallel:
            keys = [self._key(d) for d in (original, retain)]
            if all(self.cache.enabled and self.cache.load(k, self._fresh()) is not None for k in keys):
                parallel = False  # both cached: nothing to train
        if not parallel:
            return self.train(original, "original"), self.train(retain, "retain")
        import multiprocessing as mp
        from concurrent.futures import ProcessPoolExecutor

        jobs = [(self.spec, self.fmt.tokenizer, self.fmt.max_length, d, self.recipe, self.seed) for d in (original, retain)]
        with self.progress.task(f"original + retain-only seed={self.seed} (2 processes)", total=None):
            with ProcessPoolExecutor(max_workers=2, mp_context=mp.get_context("spawn")) as pool:
                outs = list(pool.map(_train_worker, jobs))
        models = []
        for (state, result), data in zip(outs, (original, retain), strict=True):
            model = self._fresh()
            model.load_state_dict(state)
            key = self._key(data)
            manifest = {"key": key, "dataset": data.name, "n_train": len(data), "spec": self.spec.to_dict(),
                        "recipe": self.recipe.to_dict(), "seed": self.seed, "wall_s": result.wall_s,
                        "steps": result.steps, "final_loss": result.final_loss, "torch": torch.__version__,
                        "trained_in": "subprocess"}
            self.cache.store(key, model, manifest)
            models.append(TrainedModel(model.eval(), result.wall_s, False, key, manifest))
        return models[0], models[1]

    def _fresh(self) -> nn.Module:
        return build_gpt2(self.spec, len(self.fmt.tokenizer), seed=self.seed, eos_token_id=self.fmt.eos_id)

    def _key(self, data: QADataset) -> str:
        return lm_cache_key(self.spec, self.fmt, data, self.recipe, self.seed)

    def train(self, data: QADataset, role: str) -> TrainedModel:
        """The model trained (or fine-tuned) on ``data``; ``role`` is 'original' or 'retain'."""
        cfg = self.cfg
        given = cfg.original_path if role == "original" else cfg.retain_path
        if given:
            model, _ = load_lm(given, device=cfg.device, dtype=cfg.dtype)
            return TrainedModel(model.eval(), 0.0, False, f"path:{given}", {"path": given, "steps": 0})
        desc = f"{role} seed={self.seed}"
        if self._base is None:
            tm = train_lm_cached(self.spec, self.fmt, data, self.recipe, seed=self.seed, cache=self.cache,
                                 progress=self.progress, device=cfg.device, description=desc)
            tm.manifest.setdefault("parameters", sum(p.numel() for p in tm.model.parameters()))
            return tm
        key = cache_key(kind="finetune-qa", base=_path_fingerprint(self.base_path or ""), data=dataset_fingerprint(data),
                        tokenizer=tokenizer_fingerprint(self.fmt.tokenizer), format=self.fmt.describe(),
                        recipe=self.recipe.to_dict(), seed=self.seed,
                        **({"autocast": "bf16"} if cfg.uses_bf16() else {}))
        model = copy.deepcopy(self._base)
        manifest = self.cache.load(key, model)
        if manifest is not None:
            return TrainedModel(model.eval(), float(manifest["wall_s"]), True, key, manifest)
        with training_precision(cfg):
            res = train_lm(model, self.fmt, data, self.recipe, seed=self.seed, device=cfg.device,
                           progress=self.progress, description=desc)
        n_tokens = sum(len(p) + len(a) for p, a in (self.fmt.encode(ex.question, ex.answer) for ex in data))
        manifest = {"key": key, "wall_s": res.wall_s, "steps": res.steps, "final_loss": res.final_loss,
                    "loss_history": res.history, "train_tokens_per_s": n_tokens * res.epochs / max(res.wall_s, 1e-9)}
        self.cache.store(key, model, manifest)
        return TrainedModel(model.eval(), res.wall_s, False, key, manifest)


def _train_worker(job: tuple[Any, ...]) -> tuple[dict[str, torch.Tensor], Any]:
    """Train one GPT-2 in a subprocess (one thread) and return its weights and training result."""
    spec, tokenizer, max_length, data, recipe, seed = job
    torch.set_num_threads(1)
    fmt = QAFormat(tokenizer, max_length=max_length)
    model = build_gpt2(spec, len(tokenizer), seed=seed, eos_token_id=fmt.eos_id)
    result = train_lm(model, fmt, data, recipe, seed=seed)
    return {k: v.detach().clone() for k, v in model.state_dict().items()}, result


def lora_wrap(model: nn.Module, cfg: LMBenchConfig) -> nn.Module:
    from peft import LoraConfig, get_peft_model

    if cfg.lora is None:
        raise ConfigError("lora_wrap needs a lora section in the configuration.")
    lcfg = LoraConfig(r=cfg.lora.r, lora_alpha=cfg.lora.alpha, lora_dropout=cfg.lora.dropout,
                      target_modules=cfg.lora.target_modules, task_type="CAUSAL_LM",
                      fan_in_fan_out=getattr(model.config, "model_type", "") == "gpt2")
    return get_peft_model(copy.deepcopy(model), lcfg)

