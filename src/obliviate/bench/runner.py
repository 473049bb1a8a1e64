"""Run a classifier unlearning benchmark: data -> original -> retrain -> methods -> metrics.

The runner only orchestrates; training, removal and metrics live in their own
packages. It returns a :class:`BenchResult`; writing files is the reporters' job.
"""

from __future__ import annotations

import logging
import platform
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from obliviate.audit.evaluate import SplitOutputs, classifier_metrics
from obliviate.audit.metrics import tug_of_war
from obliviate.audit.outputs import Outputs, outputs_of
from obliviate.bench.config import BenchConfig
from obliviate.data.builtin import load_dataset
from obliviate.data.dataset import ArrayDataset, DataBundle
from obliviate.data.forget import ForgetSplit, split_forget
from obliviate.errors import ConfigError
from obliviate.models.zoo import ModelSpec, build_model
from obliviate.progress import NullProgress, Progress
from obliviate.registry import closest
from obliviate.removal.base import METHODS, Budget, UnlearningTask, methods_for, validate_config
from obliviate.removal.objective import ClassificationObjective
from obliviate.training.cache import ModelCache, TrainedModel, train_cached
from obliviate.training.checkpoint import load_into, load_weights
from obliviate.training.recipe import Recipe

log = logging.getLogger(__name__)

BASELINE = "original"
REFERENCE = "retrain"


@dataclass
class BenchResult:
    """Records (one per method and seed, plus the ``original`` baseline) and run metadata."""

    config: dict[str, Any]
    records: list[dict[str, Any]]
    meta: dict[str, Any] = field(default_factory=dict)

    def methods(self) -> list[str]:
        seen: dict[str, None] = {}
        for r in self.records:
            seen.setdefault(r["method"], None)
        return list(seen)


def resolve_methods(names: list[str], task: str = "classification") -> list[str]:
    """Expand ``all`` and check every name, reporting all unknown names at once."""
    available = methods_for(task)
    out: list[str] = []
    problems = []
    for n in names:
        if n == "all":
            out.extend(available)
        elif n in available:
            out.append(n)
        elif n in METHODS:
            where = ("a language-model task (--task persons or --task tofu)" if "lm" in METHODS.get(n).tasks
                     else "a classifier task (--task classification)")
            problems.append(f"method {n!r} does not work on {task} tasks; run it in {where}. "
                            f"Available here: {', '.join(available)}.")
        else:
            hint = closest(n, available)
            problems.append(f"unknown method {n!r}" + (f"; did you mean {hint!r}?" if hint else "")
                            + f" Available: {', '.join(available)}.")
    if problems:
        raise ConfigError("Invalid --methods:", problems)
    if not out:
        raise ConfigError("No method selected; pass --methods all or a comma-separated list.")
    # retrain is always computed (it is the reference every row is measured against),
    # so it is always reported, first
    out = list(dict.fromkeys(out))
    return [REFERENCE] + [m for m in out if m != REFERENCE]


def preflight(cfg: BenchConfig) -> list[str]:
    """Check every name in ``cfg`` before any work starts; raise once with all problems."""
    from obliviate.data.builtin import DATASETS
    from obliviate.data.forget import parse_spec
    from obliviate.errors import ObliviateError
    from obliviate.models.zoo import MODELS

    problems: list[str] = []
    methods: list[str] = []
    checks = [
        lambda: DATASETS.get(cfg.dataset) if cfg.data is None else None,
        lambda: parse_spec(cfg.forget),
        lambda: MODELS.get(cfg.model) if ":" not in cfg.model else None,
        lambda: cfg.recipe.resolve(cfg.dataset),
        lambda: Budget(**cfg.budget.model_dump()),
        lambda: check_method_config(cfg),
    ]
    for check in checks:
        try:
            check()
        except ObliviateError as exc:
            problems.extend(getattr(exc, "problems", None) or [str(exc)])
    try:
        methods = resolve_methods(cfg.methods, cfg.task)
    except ConfigError as exc:
        problems.extend(exc.problems or [str(exc)])
    if problems:
        raise ConfigError("Invalid bench configuration:", problems)
    return methods


def check_method_config(cfg: BenchConfig) -> None:
    problems = []
    for name, overrides in cfg.method_config.items():
        if name not in METHODS:
            hint = closest(name, METHODS.names())
            problems.append(f"method_config names unknown method {name!r}" + (f"; did you mean {hint!r}?" if hint else ""))
            continue
        try:
            validate_config(METHODS.get(name).Config, overrides, owner=f"method {name!r}")
        except ConfigError as exc:
            problems.extend(exc.problems or [str(exc)])
    if problems:
        raise ConfigError("Invalid method_config:", problems)


def _splits(model: nn.Module, split: ForgetSplit, test: ArrayDataset, device: str) -> SplitOutputs:
    return SplitOutputs(forget=outputs_of(model, split.forget, device=device),
                        retain=outputs_of(model, split.retain, device=device),
                        test=outputs_of(model, test, device=device))


def run_bench(cfg: BenchConfig, *, progress: Progress | None = None, bundle: DataBundle | None = None) -> BenchResult:
    """Run the benchmark described by ``cfg``. ``bundle`` overrides loading ``cfg.dataset``."""
    progress = progress or NullProgress()
    methods = preflight(cfg)
    if cfg.threads is not None:
        if cfg.threads < 1:
            raise ConfigError(f"threads must be >= 1; got {cfg.threads}.")
        torch.set_num_threads(cfg.threads)
    recipe: Recipe = cfg.recipe.resolve(cfg.dataset)
    budget = Budget(**cfg.budget.model_dump())
    spec = ModelSpec(cfg.model, dict(cfg.model_options))
    cache = ModelCache(cfg.cache_dir, enabled=cfg.use_cache)
    data_meta: dict[str, Any] | None = None
    if bundle is None and cfg.data is not None:
        user_data = cfg.data.load()  # the user's own files; their fitted schema goes into meta
        bundle, data_meta = user_data.bundle, user_data.to_dict()
    if bundle is None:
        bundle = load_dataset(cfg.dataset, data_dir=cfg.data_dir)
    if cfg.train_subset is not None:
        bundle = DataBundle(train=bundle.train.stratified_sample(cfg.train_subset, seed=cfg.subset_seed),
                            test=bundle.test, name=bundle.name)
    n_classes = bundle.n_classes
    records: list[dict[str, Any]] = []
    meta: dict[str, Any] = {
        "dataset": bundle.name, "n_train": len(bundle.train), "n_test": len(bundle.test),
        "n_classes": n_classes, "recipe": recipe.to_dict(), "methods": methods,
        "machine": machine_info(), "started": time.strftime("%Y-%m-%d %H:%M:%S"), "seeds": {},
    }
    if data_meta is not None:
        meta["data"] = data_meta
    for seed in cfg.seeds:
        split = split_forget(bundle.train, cfg.forget, seed=seed)
        seed_meta: dict[str, Any] = {"n_forget": len(split.forget), "n_retain": len(split.retain)}
        if cfg.model_weights:
            original = load_original(spec, bundle.train.input_shape, n_classes, cfg.model_weights,
                                     seed=seed, device=cfg.device)
        else:
            original = train_cached(spec, bundle.train, recipe, seed=seed, n_classes=n_classes, cache=cache,
                                    progress=progress, device=cfg.device, description=f"original seed={seed}")
        seed_meta["original_cached"] = original.cached
        seed_meta["original_train_s"] = original.wall_s

        def fit_from_scratch(data: ArrayDataset, _seed: int = seed) -> tuple[nn.Module, float, dict[str, Any]]:
            tm = train_cached(spec, data, recipe, seed=_seed, n_classes=n_classes, cache=cache,
                              progress=progress, device=cfg.device, description=f"retrain seed={_seed}")
            return tm.model, tm.wall_s, {"cached": tm.cached, "steps": tm.manifest.get("steps", 0)}

        task = UnlearningTask(forget=split.forget, retain=split.retain,
                              objective=ClassificationObjective(n_classes, cfg.device), recipe=recipe,
                              seed=seed, device=cfg.device, fit_from_scratch=fit_from_scratch,
                              extras={"train": bundle.train, "test": bundle.test, "model_spec": spec})
        # The reference model is always retrained, whether or not 'retrain' is a reported row.
        ref_model, ref_record = METHODS.get(REFERENCE)().unlearn(original.model, task, progress=progress)
        ref = _splits(ref_model, split, bundle.test, cfg.device)
        orig = _splits(original.model, split, bundle.test, cfg.device)
        retrain_s = ref_record.wall_s
        seed_meta["retrain_s"] = retrain_s
        seed_meta["original_train_acc"] = orig.forget.accuracy * seed_meta["n_forget"] / len(bundle.train) + \
            orig.retain.accuracy * seed_meta["n_retain"] / len(bundle.train)
        meta["seeds"][str(seed)] = seed_meta
        original_tow = tug_of_war(orig.accuracies, ref.accuracies)
        forget_strata = None
        if cfg.strata:
            from obliviate.audit.memorization import STRATA, strata_of

            forget_strata = strata_of(bundle.train, seed=seed)[bundle.train.positions(split.forget.ids)]
            seed_meta["forget_per_stratum"] = {s: int((forget_strata == k).sum()) for k, s in enumerate(STRATA)}

        def row(method: str, kind: str, outs: SplitOutputs, wall_s: float, extra: dict[str, Any]) -> dict[str, Any]:
            rec = {"method": method, "kind": kind, "seed": seed}
            rec.update(classifier_metrics(outs, ref, original_tow=original_tow, seed=seed))
            if forget_strata is not None:
                rec.update(stratum_metrics(outs.forget, orig.forget, ref.forget, forget_strata))
            rec.update({"wall_s": wall_s, "wall_ratio": wall_s / retrain_s if retrain_s > 0 else float("nan")})
            rec.update(extra)
            return rec

        records.append(row(BASELINE, "none", orig, 0.0, {"steps": 0, "stopped_by": "none", "config": {}}))
        for name in methods:
            if name == REFERENCE:
                records.append(row(REFERENCE, "exact", ref, retrain_s,
                                   {"steps": ref_record.steps, "stopped_by": ref_record.stopped_by,
                                    "config": ref_record.config, **ref_record.extra}))
                continue
            method = METHODS.get(name)(**cfg.method_config.get(name, {}))
            torch.manual_seed(seed)  # methods that draw from the global RNG stay reproducible
            unlearned, record = method.unlearn(original.model, task, budget=budget, progress=progress)
            records.append(row(name, record.kind, _splits(unlearned, split, bundle.test, cfg.device),
                               record.wall_s, {"steps": record.steps, "stopped_by": record.stopped_by,
                                               "config": record.config, **record.extra}))
            log.info("seed %d %s: tow=%.4f", seed, name, records[-1]["tow"])
    meta["finished"] = time.strftime("%Y-%m-%d %H:%M:%S")
    return BenchResult(config=cfg.model_dump(), records=records, meta=meta)


def stratum_metrics(forget: Outputs, original: Outputs, retrain: Outputs, strata: np.ndarray) -> dict[str, float]:
    """UA (1 - forget accuracy) per memorisation tercile, and the share of the original's gap to retrain closed there.

    ``gap_closed_<s> = 1 - |UA_s - UA_s^retrain| / |UA_s^original - UA_s^retrain|`` (NaN when the
    original already matches retrain there, or the tercile has no forget example).
    """
    from obliviate.audit.memorization import STRATA

    out: dict[str, float] = {}
    hit, hit_o, hit_r = (o.predictions == o.labels for o in (forget, original, retrain))
    for k, name in enumerate(STRATA):
        rows = strata == k
        if not rows.any():
            out[f"ua_{name}"] = out[f"gap_closed_{name}"] = float("nan")
            continue
        ua, ua_o, ua_r = (1.0 - float(h[rows].mean()) for h in (hit, hit_o, hit_r))
        gap = abs(ua_o - ua_r)
        out[f"ua_{name}"] = ua
        out[f"gap_closed_{name}"] = 1.0 - abs(ua - ua_r) / gap if gap > 1e-12 else float("nan")
    return out


def load_original(spec: ModelSpec, input_shape: tuple[int, ...], n_classes: int, path: str, *, seed: int,
                  device: str) -> TrainedModel:
    """The user's trained weights as the original model (no training, so its time is 0).

    Only the original comes from the file: the retrain reference is trained from
    scratch with the recipe, as it must be to be the gold standard.
    """
    model = build_model(spec, input_shape, n_classes, seed=seed)
    load_into(model, load_weights(path), source=f"model weights {path}")
    return TrainedModel(model.to(device).eval(), 0.0, False, f"weights:{path}", {"weights": path, "steps": 0})


def machine_info() -> dict[str, Any]:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    import os

    return {"cpu": cpu, "cores": os.cpu_count(), "torch_threads": torch.get_num_threads(),
            "torch": torch.__version__, "python": platform.python_version(), "platform": platform.platform()}
