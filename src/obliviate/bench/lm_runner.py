"""Run a language-model unlearning benchmark: data -> original -> retain-only -> methods -> metrics.

Protocol (TOFU's, on either the fictitious-persons corpus or TOFU itself):

1. Train the *original* on the whole training set (answers only) and the
   *retain-only* model, the gold standard, on the training set minus the forget
   set, with the same tokenizer, recipe and seed.
2. Run each removal method on the original with a :class:`CausalLMObjective`.
3. Evaluate every model on every split (forget, retain, holdout, neighbours,
   general): answer probability, ROUGE-L of greedy answers, truth ratio; forget
   quality and model utility against the retain-only model; verbatim
   continuation; membership attacks (forget vs holdout) and PrivLeak; the
   relearning and in-context attacks with the retain-only model as control.

The runner only orchestrates; it returns an :class:`LMBenchResult` and the
reporters in :mod:`obliviate.report.lm` write the files.
"""

from __future__ import annotations

import copy
import hashlib
import json
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from obliviate.audit.lm_attacks import (ICLConfig, RelearnConfig, icl_attack, relearn, relearn_attack,
                                        relearn_split)
from obliviate.audit.lm_eval import SplitSignals, mia_aucs, split_metrics, split_signals, truth_ratios
from obliviate.audit.lm_metrics import forget_quality, model_utility
from obliviate.audit.lm_mia import privleak
from obliviate.bench.lm_config import LMBenchConfig
from obliviate.bench.runner import machine_info
from obliviate.data.qa import QADataset, QAExample
from obliviate.errors import ConfigError
from obliviate.models.lm import QAFormat, build_gpt2, load_lm, train_tokenizer
from obliviate.progress import NullProgress, Progress
from obliviate.registry import closest
from obliviate.removal.base import METHODS, Budget, UnlearningTask, methods_for, validate_config
from obliviate.removal.lm_objective import CausalLMObjective
from obliviate.training.cache import ModelCache, TrainedModel, cache_key
from obliviate.training.lm import (LMRecipe, dataset_fingerprint, exact_answer_accuracy, lm_cache_key, train_lm,
                                   train_lm_cached, tokenizer_fingerprint)

log = logging.getLogger(__name__)

BASELINE = "original"
REFERENCE = "retrain"

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

# Per-method settings for the built-in small GPT-2 (the methods' own defaults are the
# papers', for billion-parameter models). Chosen on persons seed 0 only (seeds 1 and 2 of
# the benchmark are out of sample): each a setting that forgets without losing more than
# ~10% utility where one was found. method_config wins; not applied with --model-path.
METHOD_DEFAULTS: dict[str, dict[str, Any]] = {
    "gradient_ascent": {"epochs": 3.0, "lr": 3e-4, "batch_size": 32},
    "graddiff": {"epochs": 30.0, "lr": 5e-4, "batch_size": 32, "retain_weight": 1.2},
    "kl": {"epochs": 30.0, "lr": 5e-4, "batch_size": 32, "kl_weight": 1.2},
    "finetune": {"epochs": 2.0, "lr": 1e-3, "batch_size": 64},
    "npo": {"epochs": 10.0, "lr": 2e-4, "batch_size": 32, "retain_weight": 1.5},
    "simnpo": {"epochs": 12.0, "lr": 5e-4, "batch_size": 32},
    "idk": {"epochs": 6.0, "lr": 5e-4, "batch_size": 32},
    "whp": {"epochs": 8.0, "lr": 5e-4, "batch_size": 32, "alpha": 10.0, "retain_weight": 1.0},
    "lm_layer_reset": {"k": 1, "epochs": 4.0, "lr": 2e-3, "batch_size": 64},
    "rmu": {"layer": "transformer.h.0", "steering_coeff": 15.0, "alpha": 20.0, "lr": 1e-3, "epochs": 5.0,
            "batch_size": 32},
}


# --------------------------------------------------------------------------- data


@dataclass
class LMTaskData:
    """One task's QA splits, ready for training and evaluation.

    ``train``: what the original is fit on; ``retain``: ``train`` without the
    forget set (the retain-only model's data and the methods' retain data);
    ``forget``: the forget set as evaluated (with paraphrased and wrong answers);
    ``evals``: every evaluated split by name (``forget`` included);
    ``utility``: the splits that form model utility, with whether their "Prob."
    is relative to the wrong options (TOFU's real-authors / world-facts convention).
    """

    name: str
    train: QADataset
    retain: QADataset
    forget: QADataset
    evals: dict[str, QADataset]
    utility: dict[str, bool]
    tokenizer_texts: list[str]
    meta: dict[str, Any] = field(default_factory=dict)


def values_form(data: QADataset) -> QADataset:
    """Truth-ratio inputs over bare values, for a model trained on bare-value answers.

    The persons corpus writes paraphrased and wrong answers as sentences
    ("X was born in Lyon."). A small model trained only on bare values
    ("Lyon") has never seen such sentences, so its probabilities of them say
    little about what it knows. This rewrites each example's paraphrased
    answer to the true value and the wrong answers to their values, cut out of
    the sentence template around the true value (an example whose wrong
    answers do not follow the template keeps its sentences).
    """
    out = []
    for ex in data:
        para = ex.paraphrased_answer
        values = _cut_values(para, ex.answer, ex.perturbed_answer) if para and ex.perturbed_answer else None
        if values is None:
            out.append(ex)
            continue
        out.append(QAExample(id=ex.id, subject=ex.subject, question=ex.question, answer=ex.answer,
                             paraphrased_question=ex.paraphrased_question, paraphrased_answer=ex.answer,
                             perturbed_answer=tuple(values)))
    return QADataset(out, name=data.name)


def _cut_values(sentence: str, value: str, wrong: tuple[str, ...]) -> list[str] | None:
    at = sentence.rfind(value)
    if at < 0:
        return None
    prefix, suffix = sentence[:at], sentence[at + len(value):]
    # "works as a chemist" / "works as an architect": the article goes with the value
    prefixes = [prefix]
    for a, b in ((" a ", " an "), (" an ", " a ")):
        if prefix.endswith(a):
            prefixes.append(prefix[: -len(a)] + b)
    values = []
    for w in wrong:
        for p in prefixes:
            if w.startswith(p) and w.endswith(suffix) and len(w) > len(p) + len(suffix):
                values.append(w[len(p): len(w) - len(suffix)])
                break
        else:
            return None
    return values


def _sample(data: QADataset, n: int | None, seed: int, tag: int, name: str) -> QADataset:
    if n is None or n >= len(data):
        return QADataset(data, name=name)
    rng = np.random.default_rng([seed, tag])
    keep = sorted(int(i) for i in rng.choice(len(data), size=n, replace=False))
    return QADataset((data[i] for i in keep), name=name)


def persons_data(cfg: LMBenchConfig, seed: int) -> LMTaskData:
    """The fictitious-persons corpus for one seed (corpus seed = run seed unless fixed)."""
    from obliviate.data.persons import make_persons_corpus

    c = cfg.corpus
    corpus = make_persons_corpus(c.n_people, c.forget_fraction, n_perturbed=c.n_perturbed, n_shared=c.n_shared,
                                 seed=seed if c.seed is None else c.seed)
    train = corpus.training_set()
    retain = train.exclude(corpus.forget.ids, name="persons/retain+general")
    n = cfg.eval.max_examples
    forget = values_form(corpus.forget)
    evals = {
        "forget": forget,
        "retain": _sample(values_form(corpus.retain), n, seed, 1, "persons/retain"),
        "holdout": _sample(values_form(corpus.holdout), n, seed, 2, "persons/holdout"),
        "neighbours": _sample(values_form(corpus.neighbours), n, seed, 3, "persons/neighbours"),
        "general": values_form(corpus.general),
    }
    texts = [ex.text for ds in (corpus.train, corpus.holdout, corpus.general) for ex in ds]
    texts += [format_answer for ds in evals.values() for ex in ds for format_answer in ex.perturbed_answer]
    return LMTaskData(
        name="persons", train=train, retain=retain, forget=forget, evals=evals,
        utility={"retain": False, "general": True}, tokenizer_texts=texts,
        meta={"n_people": c.n_people, "forget_fraction": c.forget_fraction, "n_train": len(train),
              "n_forget": len(forget), "n_retain": len(retain), "faker_version": corpus.faker_version,
              "corpus_seed": seed if c.seed is None else c.seed,
              "eval_sizes": {k: len(v) for k, v in evals.items()}},
    )


def tofu_data(cfg: LMBenchConfig, seed: int) -> LMTaskData:
    """TOFU from local files: forget/retain/holdout by ``split``, utility on retain, real authors, world facts."""
    from obliviate.data.tofu import load_tofu

    split = cfg.split or "forget10"
    pct = int(split[-2:])
    train = load_tofu("full", cfg.data_dir)
    forget = load_tofu(f"{split}_perturbed", cfg.data_dir)
    retain = train.exclude(forget.ids, name=f"tofu/retain{100 - pct}")
    n = cfg.eval.max_examples
    evals = {
        "forget": forget,
        "retain": _sample(load_tofu("retain_perturbed", cfg.data_dir), n, seed, 1, "tofu/retain_perturbed"),
        "holdout": _sample(load_tofu(f"holdout{pct:02d}", cfg.data_dir), n, seed, 2, f"tofu/holdout{pct:02d}"),
        "real_authors": load_tofu("real_authors_perturbed", cfg.data_dir),
        "world_facts": load_tofu("world_facts_perturbed", cfg.data_dir),
    }
    texts = [ex.text for ex in train] + [ex.text for ex in evals["holdout"]]
    texts += [a for ds in evals.values() for ex in ds for a in (ex.paraphrased_answer or "", *ex.perturbed_answer)]
    return LMTaskData(
        name=f"tofu/{split}", train=train, retain=retain, forget=forget, evals=evals,
        utility={"retain": False, "real_authors": True, "world_facts": True}, tokenizer_texts=texts,
        meta={"split": split, "n_train": len(train), "n_forget": len(forget), "n_retain": len(retain),
              "eval_sizes": {k: len(v) for k, v in evals.items()}},
    )


TASK_DATA: dict[str, Callable[[LMBenchConfig, int], LMTaskData]] = {"persons": persons_data, "tofu": tofu_data}


# --------------------------------------------------------------------------- models


@dataclass
class LMResult:
    """Records (one per method and seed, plus ``original`` and ``retrain``) and run metadata."""

    config: dict[str, Any]
    records: list[dict[str, Any]]
    meta: dict[str, Any] = field(default_factory=dict)

    def methods(self) -> list[str]:
        return list(dict.fromkeys(r["method"] for r in self.records))


def resolve_lm_methods(names: list[str]) -> list[str]:
    """Expand ``all`` to every method that supports language models; all unknown names at once."""
    available = methods_for("lm")
    out: list[str] = []
    problems = []
    for n in names:
        if n == "all":
            out.extend(available)
        elif n in (REFERENCE, BASELINE):
            continue  # always reported
        elif n in available:
            out.append(n)
        else:
            hint = closest(n, available)
            extra = " (it supports classifiers only)" if n in METHODS else ""
            problems.append(f"unknown language-model method {n!r}{extra}" + (f"; did you mean {hint!r}?" if hint else "")
                            + f" Available: {', '.join(available)}.")
    if problems:
        raise ConfigError("Invalid --methods:", problems)
    return list(dict.fromkeys(out))


def method_overrides(cfg: LMBenchConfig, name: str) -> dict[str, Any]:
    base = dict(METHOD_DEFAULTS.get(name, {})) if cfg.method_defaults and cfg.model_path is None else {}
    base.update(cfg.method_config.get(name, {}))
    return base


def preflight(cfg: LMBenchConfig) -> list[str]:
    """Check every name and setting before any work starts; raise once with all problems."""
    problems: list[str] = []
    methods: list[str] = []
    try:
        methods = resolve_lm_methods(cfg.methods)
    except ConfigError as exc:
        problems.extend(exc.problems or [str(exc)])
    for name, overrides in cfg.method_config.items():
        if name not in METHODS:
            hint = closest(name, METHODS.names())
            problems.append(f"method_config names unknown method {name!r}" + (f"; did you mean {hint!r}?" if hint else ""))
    for name in methods:
        try:
            validate_config(METHODS.get(name).Config, method_overrides(cfg, name), owner=f"method {name!r}")
        except ConfigError as exc:
            problems.extend(exc.problems or [str(exc)])
    checks: list[Callable[[], Any]] = [
        lambda: cfg.recipe.resolve(DEFAULT_RECIPES[cfg.task] if cfg.model_path is None else FINETUNE_RECIPE),
        lambda: Budget(**cfg.budget.model_dump()),
        lambda: RelearnConfig(**cfg.attacks.relearn.model_dump(exclude={"enabled"})),
        lambda: ICLConfig(**cfg.attacks.icl.model_dump(exclude={"enabled"})),
    ]
    if cfg.model_path is None:
        checks.append(lambda: cfg.model.spec(64))
    for check in checks:
        try:
            check()
        except ConfigError as exc:
            problems.extend(exc.problems or [str(exc)])
    if cfg.split is not None and cfg.task != "tofu":
        problems.append(f"split {cfg.split!r} is a TOFU forget set; use it with --task tofu.")
    for key in ("original_path", "retain_path"):
        if getattr(cfg, key) and not cfg.model_path:
            problems.append(f"{key} needs model_path (the tokenizer and architecture come from there).")
    if cfg.lora is not None:
        try:
            import peft  # noqa: F401
        except ImportError:
            problems.append("lora needs the 'peft' package: pip install peft")
    if problems:
        raise ConfigError("Invalid language-model bench configuration:", problems)
    return methods


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
        if cfg.model_path is None:
            tok = train_tokenizer(data.tokenizer_texts, vocab_size=cfg.model.vocab_size)
            longest = max(len(p) + len(a) for p, a in (QAFormat(tok).encode(ex.question, ex.answer)
                                                       for ds in (data.train, *data.evals.values()) for ex in ds))
            n_ctx = cfg.attacks.icl.n_context + 1 if cfg.attacks.icl.enabled else 1
            self.n_positions = cfg.model.n_positions or 32 * ((longest * n_ctx + 8 + 31) // 32)
            self.fmt = QAFormat(tok, max_length=self.n_positions)
            self.spec = cfg.model.spec(self.n_positions)
            self.recipe = cfg.recipe.resolve(DEFAULT_RECIPES[cfg.task])
            self._base: nn.Module | None = None
        else:
            base, tok = load_lm(cfg.model_path, device=cfg.device, dtype=cfg.dtype)
            self._base = base
            limit = getattr(base.config, "max_position_embeddings", None) or getattr(base.config, "n_positions", None)
            self.n_positions = int(limit) if limit else 2048
            self.fmt = QAFormat(tok, chat_template=cfg.chat_template, max_length=self.n_positions)
            self.recipe = cfg.recipe.resolve(FINETUNE_RECIPE)

    def describe(self) -> dict[str, Any]:
        out: dict[str, Any] = {"recipe": self.recipe.to_dict(), "format": self.fmt.describe()}
        if self._base is None:
            out["model"] = {"kind": "gpt2", **self.spec.to_dict(), "vocab_size": len(self.fmt.tokenizer),
                            "parameters": None}
        else:
            out["model"] = {"kind": "local", "path": self.cfg.model_path,
                            "model_type": getattr(self._base.config, "model_type", None)}
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
        key = cache_key(kind="finetune-qa", base=_path_fingerprint(cfg.model_path or ""), data=dataset_fingerprint(data),
                        tokenizer=tokenizer_fingerprint(self.fmt.tokenizer), format=self.fmt.describe(),
                        recipe=self.recipe.to_dict(), seed=self.seed)
        model = copy.deepcopy(self._base)
        manifest = self.cache.load(key, model)
        if manifest is not None:
            return TrainedModel(model.eval(), float(manifest["wall_s"]), True, key, manifest)
        res = train_lm(model, self.fmt, data, self.recipe, seed=self.seed, device=cfg.device,
                       progress=self.progress, description=desc)
        manifest = {"key": key, "wall_s": res.wall_s, "steps": res.steps, "final_loss": res.final_loss}
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


# --------------------------------------------------------------------------- evaluation


@dataclass
class ModelEval:
    """Signals and per-split metrics of one model (cached for the comparisons)."""

    signals: dict[str, SplitSignals]
    metrics: dict[str, dict[str, Any]]
    forget_truth_ratios: np.ndarray
    mia: dict[str, float]


def evaluate_model(model: nn.Module, fmt: QAFormat, data: LMTaskData, cfg: LMBenchConfig, *, seed: int) -> ModelEval:
    ev = cfg.eval
    signals = {name: split_signals(model, fmt, ds, batch_size=ev.batch_size, device=cfg.device,
                                   verbatim=ev.verbatim and name in ("forget", "retain"))
               for name, ds in data.evals.items()}
    metrics = {name: split_metrics(sig, forget_like=name == "forget", option_prob=data.utility.get(name, False),
                                   seed=seed, n_boot=ev.n_boot)
               for name, sig in signals.items()}
    mia = mia_aucs(signals["forget"], signals["holdout"], k=ev.mia_k)
    return ModelEval(signals, metrics, truth_ratios(signals["forget"]), mia)


def utility_of(ev: ModelEval, data: LMTaskData) -> float:
    parts: list[float] = []
    for name in data.utility:
        m = ev.metrics[name]
        parts += [m["prob"]["mean"], m["rouge"]["mean"], m.get("truth_ratio", {"mean": m["prob"]["mean"]})["mean"]]
    return model_utility(np.clip(parts, 0.0, None))


def record_for(method: str, seed: int, ev: ModelEval, ref: ModelEval, data: LMTaskData) -> dict[str, Any]:
    """The flat record of one model against the retain-only reference."""
    rec: dict[str, Any] = {"method": method, "seed": seed}
    fq_a = ev.forget_truth_ratios[np.isfinite(ev.forget_truth_ratios)]
    fq_b = ref.forget_truth_ratios[np.isfinite(ref.forget_truth_ratios)]
    rec["forget_quality"] = forget_quality(fq_a, fq_b) if fq_a.size and fq_b.size else float("nan")
    rec["log10_forget_quality"] = float(np.log10(max(rec["forget_quality"], 1e-300)))
    rec["model_utility"] = utility_of(ev, data)
    ref_mu = utility_of(ref, data)
    rec["model_utility_ratio"] = rec["model_utility"] / ref_mu if ref_mu > 0 else float("nan")
    for split, m in ev.metrics.items():
        for metric in ("prob", "rouge", "exact", "truth_ratio", "verbatim_exact", "verbatim_rouge"):
            if metric in m:
                key = f"{split}_{metric}" if not metric.startswith("verbatim") or split == "forget" \
                    else f"{split}_{metric}"
                rec[key] = m[metric]["mean"]
                rec[f"{key}_ci"] = [m[metric]["low"], m[metric]["high"]]
    if "forget_verbatim_rouge" in rec:
        rec["verbatim_rouge"] = rec["forget_verbatim_rouge"]
        rec["verbatim_exact"] = rec["forget_verbatim_exact"]
    for attack, auc in ev.mia.items():
        rec[f"mia_auc_{attack}"] = auc
        rec[f"privleak_{attack}"] = privleak(auc, ref.mia[attack]) if ref.mia[attack] > 0 else float("nan")
    rec["privleak"] = rec["privleak_min_k"]  # MUSE's PrivLeak uses Min-K% Prob
    return rec


# --------------------------------------------------------------------------- the run


def _lora_wrap(model: nn.Module, cfg: LMBenchConfig) -> nn.Module:
    from peft import LoraConfig, get_peft_model

    assert cfg.lora is not None
    lcfg = LoraConfig(r=cfg.lora.r, lora_alpha=cfg.lora.alpha, lora_dropout=cfg.lora.dropout,
                      target_modules=cfg.lora.target_modules, task_type="CAUSAL_LM",
                      fan_in_fan_out=getattr(model.config, "model_type", "") == "gpt2")
    return get_peft_model(copy.deepcopy(model), lcfg)


@dataclass
class _SeedContext:
    """What every method of one seed is scored against (picklable, for worker processes)."""

    cfg: LMBenchConfig
    seed: int
    data: LMTaskData
    recipe: LMRecipe
    budget: Budget
    ref_ev: ModelEval
    part_a: QADataset
    part_b: QADataset
    relearn_cfg: RelearnConfig
    icl_cfg: ICLConfig
    control_relearn: dict[str, Any] | None
    control_icl: dict[str, float] | None
    ref_wall: float


def _finish(ctx: _SeedContext, fmt: QAFormat, name: str, model: nn.Module, ev: ModelEval,
            extra: dict[str, Any]) -> dict[str, Any]:
    """One model's record: metrics against the reference, then the relearning and in-context attacks."""
    cfg, seed = ctx.cfg, ctx.seed
    t_attack = time.perf_counter()
    rec = record_for(name, seed, ev, ctx.ref_ev, ctx.data)
    if ctx.control_relearn is not None:
        scores = ctx.control_relearn if name == REFERENCE else relearn(
            model, fmt, ctx.part_a, ctx.part_b, ctx.relearn_cfg, seed=seed, device=cfg.device)
        rec.update(relearn_attack(scores, ctx.control_relearn))
    if ctx.control_icl is not None:
        control = ctx.control_icl
        icl = control if name == REFERENCE else icl_attack(model, fmt, ctx.data.forget, ctx.icl_cfg, seed=seed,
                                                           device=cfg.device)
        rec.update(icl)
        rec["icl_recovery_control"] = control["icl_recovery"]
        rec["icl_related_recovery_control"] = control["icl_related_recovery"]
        rec["icl_excess"] = icl["icl_recovery"] - control["icl_recovery"]
        rec["icl_after_gap"] = icl["icl_rouge_facts"] - control["icl_rouge_facts"]
    rec["attack_s"] = time.perf_counter() - t_attack
    rec.update(extra)
    rec["wall_ratio"] = rec["wall_s"] / ctx.ref_wall if np.isfinite(ctx.ref_wall) else float("nan")
    return rec


def _unlearn_and_score(ctx: _SeedContext, fmt: QAFormat, name: str, original: nn.Module,
                       fit_from_scratch: Callable[[QADataset], Any] | None, progress: Progress) -> dict[str, Any]:
    """Run one method on the original, evaluate the result and attack it."""
    cfg, seed = ctx.cfg, ctx.seed
    method = METHODS.get(name)(**method_overrides(cfg, name))
    task = UnlearningTask(forget=ctx.data.forget, retain=ctx.data.retain, objective=CausalLMObjective(fmt, cfg.device),
                          recipe=ctx.recipe, seed=seed, device=cfg.device,  # type: ignore[arg-type]
                          fit_from_scratch=fit_from_scratch,
                          extras={"train": ctx.data.train, "format": fmt, "task": cfg.task})
    start = _lora_wrap(original, cfg) if cfg.lora is not None else original
    log.info("seed %d: running %s", seed, name)
    # A method's numbers must not depend on which methods ran before it (or in which process):
    # anything it draws from torch's global generator starts from the seed.
    torch.manual_seed(seed)
    unlearned, record = method.unlearn(start, task, budget=ctx.budget, progress=progress)
    if cfg.lora is not None:
        unlearned = unlearned.merge_and_unload().requires_grad_(True)  # peft froze the base weights
    t_eval = time.perf_counter()
    ev = evaluate_model(unlearned, fmt, ctx.data, cfg, seed=seed)
    return _finish(ctx, fmt, name, unlearned, ev,
                   {"eval_s": time.perf_counter() - t_eval, "kind": record.kind, "wall_s": record.wall_s,
                    "steps": record.steps, "stopped_by": record.stopped_by, "method_config": record.config,
                    **{f"extra_{k}": v for k, v in record.extra.items() if isinstance(v, (int, float, str))}})


def _method_workers(cfg: LMBenchConfig, source: ModelSource, methods: list[str]) -> int:
    """How many processes run the methods: ``cfg.method_workers``, or 2 on a multi-core CPU.

    Only the built-in GPT-2 runs in workers (a local model would be loaded once per
    process), and ``retrain`` as a method needs this process's model cache, so it runs here.
    """
    if cfg.method_workers is not None:
        wanted = cfg.method_workers
    else:
        wanted = 2 if str(cfg.device) == "cpu" and (os.cpu_count() or 1) >= 2 else 1
    if source._base is not None or "retrain" in methods or len(methods) < 2:
        return 1
    return max(1, min(wanted, len(methods)))


def _method_worker(job: tuple[Any, ...]) -> dict[str, Any]:
    """One method in a worker process (one torch thread): rebuild the original, unlearn, score."""
    ctx, spec, tokenizer, max_length, state, name = job
    torch.set_num_threads(1)
    fmt = QAFormat(tokenizer, max_length=max_length)
    model = build_gpt2(spec, len(tokenizer), seed=ctx.seed, eos_token_id=fmt.eos_id)
    model.load_state_dict(state)
    return _unlearn_and_score(ctx, fmt, name, model.eval(), None, NullProgress())


def run_lm_bench(cfg: LMBenchConfig, *, progress: Progress | None = None) -> LMResult:
    """Run the benchmark described by ``cfg``."""
    progress = progress or NullProgress()
    methods = preflight(cfg)
    if cfg.threads is not None:
        torch.set_num_threads(cfg.threads)
    budget = Budget(**cfg.budget.model_dump())
    cache = ModelCache(cfg.cache_dir, enabled=cfg.use_cache)
    relearn_cfg = RelearnConfig(**cfg.attacks.relearn.model_dump(exclude={"enabled"}))
    icl_cfg = ICLConfig(**cfg.attacks.icl.model_dump(exclude={"enabled"}))
    records: list[dict[str, Any]] = []
    meta: dict[str, Any] = {"task": cfg.task, "methods": [BASELINE, REFERENCE, *methods], "machine": machine_info(),
                            "started": time.strftime("%Y-%m-%d %H:%M:%S"), "seeds": {}}
    for seed in cfg.seeds:
        t_seed = time.perf_counter()
        data = TASK_DATA[cfg.task](cfg, seed)
        source = ModelSource(cfg, data, seed=seed, cache=cache, progress=progress)
        fmt = source.fmt
        original, retained = source.train_pair(data.train, data.retain)
        seed_meta: dict[str, Any] = {**data.meta, **source.describe(), "original_train_s": original.wall_s,
                                     "retain_train_s": retained.wall_s, "original_cached": original.cached,
                                     "retain_cached": retained.cached}
        seed_meta["model"]["parameters"] = sum(p.numel() for p in original.model.parameters())
        seed_meta["original_train_exact"] = exact_answer_accuracy(original.model, fmt, data.train, device=cfg.device)
        seed_meta["retain_train_exact"] = exact_answer_accuracy(retained.model, fmt, data.retain, device=cfg.device)
        ref_wall = retained.wall_s if retained.wall_s > 0 else float("nan")

        seed_meta["train_pair_s"] = time.perf_counter() - t_seed
        t_eval = time.perf_counter()
        ref_ev = evaluate_model(retained.model, fmt, data, cfg, seed=seed)
        seed_meta["eval_s"] = time.perf_counter() - t_eval
        part_a, part_b = relearn_split(data.forget, relearn_cfg.fraction, seed=seed)
        control_relearn = relearn(retained.model, fmt, part_a, part_b, relearn_cfg, seed=seed, device=cfg.device) \
            if cfg.attacks.relearn.enabled else None
        control_icl = icl_attack(retained.model, fmt, data.forget, icl_cfg, seed=seed, device=cfg.device) \
            if cfg.attacks.icl.enabled else None
        seed_meta["relearn_split"] = {"relearn": len(part_a), "held_back": len(part_b)}

        ctx = _SeedContext(cfg=cfg, seed=seed, data=data, recipe=source.recipe, budget=budget, ref_ev=ref_ev,
                           part_a=part_a, part_b=part_b, relearn_cfg=relearn_cfg, icl_cfg=icl_cfg,
                           control_relearn=control_relearn, control_icl=control_icl, ref_wall=ref_wall)
        records.append(_finish(ctx, fmt, BASELINE, original.model,
                               evaluate_model(original.model, fmt, data, cfg, seed=seed),
                               {"kind": "baseline", "wall_s": 0.0, "steps": 0, "stopped_by": "n/a"}))
        records.append(_finish(ctx, fmt, REFERENCE, retained.model, ref_ev,
                               {"kind": "exact", "wall_s": retained.wall_s,
                                "steps": int(retained.manifest.get("steps", 0)), "stopped_by": "completed"}))

        def fit_from_scratch(subset: QADataset, _seed: int = seed) -> tuple[nn.Module, float, dict[str, Any]]:
            tm = source.train(subset, "retain")
            return tm.model, tm.wall_s, {"cached": tm.cached, "steps": tm.manifest.get("steps", 0)}

        workers = _method_workers(cfg, source, methods)
        seed_meta["method_workers"] = workers
        if workers > 1:
            # Each method is independent of the others (it starts from the original and reseeds),
            # so running them in worker processes gives the same records as running them here.
            from obliviate.engine.executor import ProcessExecutor

            state = {k: v.detach().clone() for k, v in original.model.state_dict().items()}
            jobs = [(ctx, source.spec, fmt.tokenizer, fmt.max_length, state, name) for name in methods]
            with ProcessExecutor(max_workers=workers) as ex:
                records += ex.map(_method_worker, jobs, progress=progress,
                                  description=f"methods seed={seed} ({workers} processes)")
        else:
            for name in methods:
                records.append(_unlearn_and_score(ctx, fmt, name, original.model, fit_from_scratch, progress))
        seed_meta["seed_wall_s"] = time.perf_counter() - t_seed
        meta["seeds"][str(seed)] = seed_meta
    meta["finished"] = time.strftime("%Y-%m-%d %H:%M:%S")
    try:
        meta["load_average"] = list(os.getloadavg())
    except OSError:  # pragma: no cover - not on every platform
        pass
    return LMResult(config=json.loads(cfg.model_dump_json()), records=records, meta=meta)
