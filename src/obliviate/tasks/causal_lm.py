"""The causal-language-model tasks (persons, TOFU, any local Hugging Face causal LM) under the one runner.

Protocol (TOFU's):

1. Train the *original* on the whole training set (answers only) and the
   *retain-only* model, the gold standard, on the training set minus the forget
   set, with the same tokenizer, recipe and seed (:mod:`obliviate.tasks.lm_models`).
2. Run each removal method on the original with a :class:`CausalLMObjective`.
3. Evaluate every model on every split (forget, retain, holdout, neighbours,
   general): answer probability, ROUGE-L of greedy answers, truth ratio; forget
   quality and model utility against the retain-only model; verbatim
   continuation; membership attacks (forget vs holdout) and PrivLeak; the
   relearning and in-context attacks with the retain-only model as control.

With ``tune`` (``--tune``), each approximate method also runs with its settings and
stopping point chosen without the retain-only model (:mod:`obliviate.tasks.lm_tuning`:
targets from the original and from people never trained on): rows carry ``tuned``
(false: the method's defaults; true: the selection's choice) and ``tuning_s``, and a
tuned row's ``wall_s`` and ``wall_ratio`` include the whole selection.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn

from obliviate.audit.lm_attacks import ICLConfig, RelearnConfig, icl_attack, relearn, relearn_attack, relearn_split
from obliviate.audit.lm_eval import SplitSignals, mia_aucs, split_metrics, split_signals, truth_ratios
from obliviate.audit.lm_metrics import forget_quality, model_utility
from obliviate.audit.lm_mia import privleak
from obliviate.data.qa import QADataset
from obliviate.models.lm import QAFormat, build_gpt2
from obliviate.progress import NullProgress, Progress
from obliviate.removal.base import METHODS, Budget, RemovalMethod, UnlearningTask
from obliviate.removal.lm_objective import CausalLMObjective
from obliviate.tasks import TASKS
from obliviate.tasks.base import BASELINE, REFERENCE, SeedRun, Task, collect
from obliviate.tasks.lm_config import LMBenchConfig
from obliviate.tasks.lm_data import TASK_DATA, LMTaskData, check_persons_request, tofu_split
from obliviate.tasks.lm_models import ModelSource, base_recipe, lora_wrap, training_precision
from obliviate.training.cache import ModelCache
from obliviate.training.lm import LMRecipe, exact_answer_accuracy

log = logging.getLogger(__name__)


def method_profile(cfg: LMBenchConfig) -> str | None:
    """Which ``task_defaults`` the methods take (None: their papers' defaults; ``method_defaults=False`` too).

    ``lm``: the built-in GPT-2 trained here; ``lm-pretrained``: a named pre-trained model
    (``--model smollm2-135m``) fine-tuned here; a ``model_path`` model keeps the papers' defaults.

    ``lm-pretrained`` is TOFU's unlearning recipe (Maini et al. 2024: 5 epochs at the
    fine-tuning learning rate, forget and retain terms weighted 1; NPO's beta 0.1, SimNPO's
    beta 2.5 and gamma 0 from their papers) at SmolLM2's fine-tuning rate 5e-5, with batch 8
    because the forget sets of a 200-400-pair subset are 10x smaller than TOFU's (about as
    many steps per epoch as TOFU's forget01 at batch 32). Set from the papers, not from any
    result here (in particular not against the retain-only model).
    """
    if not cfg.method_defaults:
        return None
    if cfg.pretrained_name is not None:
        return "lm-pretrained"
    return "lm" if cfg.model_path is None else None


def lm_method(cfg: LMBenchConfig, name: str) -> RemovalMethod:
    return METHODS.get(name).for_task(method_profile(cfg), **cfg.method_config.get(name, {}))


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



# --------------------------------------------------------------------------- one method


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
    #: with ``tune``: the original's levels on the tuning splits (oracle-free) and their cost
    tuning_levels: Any = None
    tuning_levels_s: float = 0.0


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


def _unlearning_task(ctx: _SeedContext, fmt: QAFormat,
                     fit_from_scratch: Callable[[QADataset], Any] | None) -> UnlearningTask:
    cfg = ctx.cfg
    return UnlearningTask(forget=ctx.data.forget, retain=ctx.data.retain, objective=CausalLMObjective(fmt, cfg.device),
                          recipe=ctx.recipe, seed=ctx.seed, device=cfg.device,  # type: ignore[arg-type]
                          fit_from_scratch=fit_from_scratch,
                          extras={"train": ctx.data.train, "format": fmt, "task": cfg.task})


def _unlearn_and_score(ctx: _SeedContext, fmt: QAFormat, name: str, original: nn.Module,
                       fit_from_scratch: Callable[[QADataset], Any] | None, progress: Progress,
                       tuned: bool = False) -> dict[str, Any]:
    """Run one method on the original (at its defaults, or tuned oracle-free), evaluate the result and attack it."""
    if tuned:
        return _tune_and_score(ctx, fmt, name, original, fit_from_scratch, progress)
    cfg, seed = ctx.cfg, ctx.seed
    method = lm_method(cfg, name)
    task = _unlearning_task(ctx, fmt, fit_from_scratch)
    start = lora_wrap(original, cfg) if cfg.lora is not None else original
    log.info("seed %d: running %s", seed, name)
    # A method's numbers must not depend on which methods ran before it (or in which process):
    # anything it draws from torch's global generator starts from the seed.
    t_cpu = time.process_time()
    with torch.random.fork_rng(devices=[]), training_precision(cfg):
        torch.manual_seed(seed)
        unlearned, record = method.unlearn(start, task, budget=ctx.budget, progress=progress)
    cpu_s = time.process_time() - t_cpu
    if cfg.lora is not None:
        unlearned = unlearned.merge_and_unload().requires_grad_(True)  # peft froze the base weights
    t_eval = time.perf_counter()
    ev = evaluate_model(unlearned, fmt, ctx.data, cfg, seed=seed)
    return _finish(ctx, fmt, name, unlearned, ev,
                   {"eval_s": time.perf_counter() - t_eval, "kind": record.kind, "wall_s": record.wall_s,
                    "cpu_s": cpu_s,
                    "steps": record.steps, "stopped_by": record.stopped_by, "method_config": record.config,
                    "tuned": False, "tuning_s": 0.0,
                    **{f"extra_{k}": v for k, v in record.extra.items() if isinstance(v, (int, float, str))}})


def _tune_and_score(ctx: _SeedContext, fmt: QAFormat, name: str, original: nn.Module,
                    fit_from_scratch: Callable[[QADataset], Any] | None, progress: Progress) -> dict[str, Any]:
    """Choose the method's settings and stopping point without the retain-only model, then score the choice.

    The selection sees the original, the training data and the tuning people only
    (:mod:`obliviate.tasks.lm_tuning`); ``ctx.ref_ev`` is used afterwards, to score, as for
    every row. The row's ``wall_s`` is the whole selection (every trial and measurement, and
    the original's levels), so its ``wall_ratio`` includes it.
    """
    from obliviate.tasks.lm_tuning import Measurer, tune_method

    cfg, seed = ctx.cfg, ctx.seed
    task = _unlearning_task(ctx, fmt, fit_from_scratch)
    start = lora_wrap(original, cfg) if cfg.lora is not None else original
    measurer = Measurer(fmt, ctx.data.tuning, batch_size=cfg.eval.batch_size, device=cfg.device)
    log.info("seed %d: tuning %s", seed, name)
    t_cpu = time.process_time()
    run = tune_method(name, start, task, measurer, ctx.tuning_levels, cfg.tuning, profile=method_profile(cfg),
                      base=cfg.method_config.get(name, {}), seed=seed, progress=progress)
    cpu_s = time.process_time() - t_cpu
    unlearned, record, sel = run.model, run.record, run.selection
    if cfg.lora is not None:
        unlearned = unlearned.merge_and_unload().requires_grad_(True)
    t_eval = time.perf_counter()
    ev = evaluate_model(unlearned, fmt, ctx.data, cfg, seed=seed)
    tuning_s = sel.tuning_s + ctx.tuning_levels_s
    chosen = sel.chosen
    return _finish(ctx, fmt, name, unlearned, ev,
                   {"eval_s": time.perf_counter() - t_eval, "kind": record.kind, "wall_s": tuning_s,
                    "cpu_s": cpu_s, "steps": record.steps,
                    "stopped_by": chosen.stopped_by if chosen else record.stopped_by,
                    "method_config": record.config, "tuned": True, "tuning_s": tuning_s,
                    "tuning_trials": len(sel.trials), "tuning_met": bool(chosen and chosen.met),
                    "tuning_measures": dict(chosen.measures) if chosen else {},
                    "tuning": sel.summary(),
                    "tuning_history": [t.record["history"] if isinstance(t.record, dict) else [] for t in sel.trials],
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
    ctx, spec, tokenizer, max_length, state, name, tuned = job
    torch.set_num_threads(1)
    fmt = QAFormat(tokenizer, max_length=max_length)
    model = build_gpt2(spec, len(tokenizer), seed=ctx.seed, eos_token_id=fmt.eos_id)
    model.load_state_dict(state)
    # the selection's monitor and measurer are built here, in the worker (closures are not pickled)
    return _unlearn_and_score(ctx, fmt, name, model.eval(), None, NullProgress(), tuned)


# --------------------------------------------------------------------------- the task


class CausalLMTask(Task):
    """A causal LM on question-answer data; ``name`` picks the data (persons or tofu)."""

    method_kind = "lm"
    Config = LMBenchConfig
    noun: ClassVar[str] = "language-model bench"

    @property
    def default_forget(self) -> str:  # type: ignore[override]
        cfg: LMBenchConfig = self.config  # type: ignore[assignment]
        if cfg.task == "tofu":
            return f"random:{int((cfg.split or 'forget10')[-2:]) / 100:g}"
        return f"random:{cfg.corpus.forget_fraction:g}"

    def method_profile(self) -> str | None:
        return method_profile(self.config)  # type: ignore[arg-type]

    def check(self) -> list[str]:
        cfg: LMBenchConfig = self.config  # type: ignore[assignment]
        checks: list[Callable[[], Any]] = [
            lambda: cfg.recipe.resolve(base_recipe(cfg)),
            lambda: RelearnConfig(**cfg.attacks.relearn.model_dump(exclude={"enabled"})),
            lambda: ICLConfig(**cfg.attacks.icl.model_dump(exclude={"enabled"})),
        ]
        if not cfg.pretrained:
            checks.append(lambda: cfg.model.spec(64))  # type: ignore[union-attr]
        if cfg.pretrained_name is not None:
            from obliviate.models.smollm2 import gguf_file

            checks.append(gguf_file)
        checks.append(lambda: tofu_split(cfg, self.request) if cfg.task == "tofu"
                      else check_persons_request(cfg, self.request))
        problems = collect(*checks)
        if cfg.tune and cfg.task == "tofu":
            problems.append("--tune chooses settings against people never trained on and never evaluated; the "
                            "TOFU files hold none to spare (the holdout set is the evaluated one). Run --tune "
                            "with --task persons, or leave it off for TOFU.")
        if cfg.tune and cfg.task == "persons" and cfg.corpus.n_tuning == 0:
            problems.append("--tune needs tuning people (corpus.n_tuning > 0, or None for as many as the forget "
                            "people); got corpus.n_tuning = 0.")
        if cfg.split is not None and cfg.task != "tofu":
            problems.append(f"split {cfg.split!r} is a TOFU forget set; use it with --task tofu.")
        for key in ("original_path", "retain_path"):
            if getattr(cfg, key) and not cfg.pretrained:
                problems.append(f"{key} needs model_path or a named model (the tokenizer and architecture "
                                "come from there).")
        if cfg.model_path is not None and cfg.pretrained_name is not None:
            problems.append(f"model {cfg.pretrained_name!r} and model_path both name the model to fine-tune; "
                            "give one of them.")
        if cfg.subset is not None and cfg.task != "tofu":
            problems.append("subset picks TOFU authors; use it with --task tofu.")
        if cfg.lora is not None:
            try:
                import peft  # noqa: F401
            except ImportError:
                problems.append("lora needs the 'peft' package: pip install peft")
        return problems

    def seed_run(self, seed: int, *, cache: ModelCache, progress: Progress) -> LMSeedRun:
        return LMSeedRun(self, seed, cache=cache, progress=progress)


class LMSeedRun(SeedRun):
    """One seed: the QA splits, the original and the retain-only model, their evaluations and the controls."""

    def __init__(self, task: CausalLMTask, seed: int, *, cache: ModelCache, progress: Progress) -> None:
        cfg: LMBenchConfig = task.config  # type: ignore[assignment]
        self.cfg, self.seed = cfg, seed
        t_seed = self._t0 = time.perf_counter()
        relearn_cfg = RelearnConfig(**cfg.attacks.relearn.model_dump(exclude={"enabled"}))
        icl_cfg = ICLConfig(**cfg.attacks.icl.model_dump(exclude={"enabled"}))
        data = TASK_DATA[cfg.task](cfg, seed, task.request)
        self.source = source = ModelSource(cfg, data, seed=seed, cache=cache, progress=progress)
        self.fmt = fmt = source.fmt
        original, retained = source.train_pair(data.train, data.retain)
        self.original, self.retained = original, retained
        meta: dict[str, Any] = {**data.meta, **source.describe(), "original_train_s": original.wall_s,
                                "retain_train_s": retained.wall_s, "original_cached": original.cached,
                                "retain_cached": retained.cached}
        meta["model"]["parameters"] = sum(p.numel() for p in original.model.parameters())
        meta["original_train_exact"] = exact_answer_accuracy(original.model, fmt, data.train, device=cfg.device)
        meta["retain_train_exact"] = exact_answer_accuracy(retained.model, fmt, data.retain, device=cfg.device)
        ref_wall = retained.wall_s if retained.wall_s > 0 else float("nan")
        meta["train_pair_s"] = time.perf_counter() - t_seed
        t_eval = time.perf_counter()
        ref_ev = evaluate_model(retained.model, fmt, data, cfg, seed=seed)
        meta["eval_s"] = time.perf_counter() - t_eval
        part_a, part_b = relearn_split(data.forget, relearn_cfg.fraction, seed=seed)
        control_relearn = relearn(retained.model, fmt, part_a, part_b, relearn_cfg, seed=seed, device=cfg.device) \
            if cfg.attacks.relearn.enabled else None
        control_icl = icl_attack(retained.model, fmt, data.forget, icl_cfg, seed=seed, device=cfg.device) \
            if cfg.attacks.icl.enabled else None
        meta["relearn_split"] = {"relearn": len(part_a), "held_back": len(part_b)}
        self.ctx = _SeedContext(cfg=cfg, seed=seed, data=data, recipe=source.recipe, budget=Budget(), ref_ev=ref_ev,
                                part_a=part_a, part_b=part_b, relearn_cfg=relearn_cfg, icl_cfg=icl_cfg,
                                control_relearn=control_relearn, control_icl=control_icl, ref_wall=ref_wall)
        self.meta = meta

    def reference_records(self) -> list[dict[str, Any]]:
        ctx, fmt, cfg = self.ctx, self.fmt, self.cfg
        orig_ev = evaluate_model(self.original.model, fmt, ctx.data, cfg, seed=self.seed)
        return [_finish(ctx, fmt, BASELINE, self.original.model, orig_ev,
                        {"kind": "baseline", "wall_s": 0.0, "steps": 0, "stopped_by": "n/a"}),
                _finish(ctx, fmt, REFERENCE, self.retained.model, ctx.ref_ev,
                        {"kind": "exact", "wall_s": self.retained.wall_s,
                         "steps": int(self.retained.manifest.get("steps", 0)), "stopped_by": "completed"})]

    def run_methods(self, methods: list[str], budget: Budget, progress: Progress) -> list[dict[str, Any]]:
        import dataclasses

        ctx = self.ctx = dataclasses.replace(self.ctx, budget=budget)
        source, fmt, seed = self.source, self.fmt, self.seed

        def fit_from_scratch(subset: QADataset) -> tuple[nn.Module, float, dict[str, Any]]:
            tm = source.train(subset, "retain")
            return tm.model, tm.wall_s, {"cached": tm.cached, "steps": tm.manifest.get("steps", 0)}

        runs = [(name, False) for name in methods]
        if self.cfg.tune:
            runs += [(name, True) for name in methods if METHODS.get(name).kind == "approximate"]
            if ctx.tuning_levels is None:
                ctx = self.ctx = dataclasses.replace(ctx, **self._tuning_levels())
        workers = _method_workers(self.cfg, source, [name for name, _ in runs])
        self.meta["method_workers"] = workers
        if workers > 1:
            # Each method is independent of the others (it starts from the original and reseeds),
            # so running them in worker processes gives the same records as running them here.
            from obliviate.engine.executor import ProcessExecutor

            state = {k: v.detach().clone() for k, v in self.original.model.state_dict().items()}
            jobs = [(ctx, source.spec, fmt.tokenizer, fmt.max_length, state, name, tuned) for name, tuned in runs]
            with ProcessExecutor(max_workers=workers) as ex:
                records = ex.map(_method_worker, jobs, progress=progress,
                                 description=f"methods seed={seed} ({workers} processes)")
        else:
            records = [_unlearn_and_score(ctx, fmt, name, self.original.model, fit_from_scratch, progress, tuned)
                       for name, tuned in runs]
        self.meta["seed_wall_s"] = time.perf_counter() - self._t0
        return list(records)

    def _tuning_levels(self) -> dict[str, Any]:
        """The original's levels on the tuning splits (the oracle-free targets' goals), measured once per seed."""
        from obliviate.tasks.lm_tuning import Measurer, original_levels

        t0 = time.perf_counter()
        measurer = Measurer(self.fmt, self.ctx.data.tuning, batch_size=self.cfg.eval.batch_size, device=self.cfg.device)
        levels = original_levels(self.original.model, measurer)
        spent = time.perf_counter() - t0
        self.meta["tuning_levels"] = {**levels.to_dict(), "seconds": spent}
        return {"tuning_levels": levels, "tuning_levels_s": spent}


class PersonsTask(CausalLMTask):
    name = "persons"
    description = "causal LM on the fictitious-persons QA corpus (TOFU protocol)"


class TofuTask(CausalLMTask):
    name = "tofu"
    description = "causal LM on TOFU (--split forget01|forget05|forget10)"


TASKS.register("persons", PersonsTask)
TASKS.register("tofu", TofuTask)
