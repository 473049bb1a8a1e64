"""The classification task: PyTorch classifiers on array data (built-in sets, your tables and images).

The original is trained to fit its training set (or loaded from your weights),
the exact reference is retrained on the retain set with the same recipe, and
every method's model is scored against it with the SalUn/Unlearn-Sparse metrics
(UA, RA, TA, MIA), the tug-of-war and the share of the original's gap closed.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import Field, field_validator, model_validator
from torch import nn

from obliviate.audit.evaluate import SplitOutputs, classifier_metrics
from obliviate.audit.metrics import tug_of_war
from obliviate.audit.outputs import Outputs, outputs_of
from obliviate.config import StrictModel, validate
from obliviate.data.builtin import DATASETS, load_dataset
from obliviate.data.dataset import ArrayDataset, DataBundle
from obliviate.data.forget import ForgetSplit, split_forget
from obliviate.data.images import ImageFolderConfig
from obliviate.data.tabular import TabularConfig
from obliviate.errors import ConfigError, UnknownNameError
from obliviate.models.zoo import MODELS, ModelSpec, build_model
from obliviate.progress import Progress
from obliviate.registry import Registry
from obliviate.removal.base import Budget, UnlearningTask
from obliviate.removal.objective import ClassificationObjective
from obliviate.tasks import TASKS
from obliviate.tasks.base import BASELINE, REFERENCE, RecipeFields, RunConfig, SeedRun, Task, collect
from obliviate.training.cache import ModelCache, TrainedModel, train_cached
from obliviate.training.checkpoint import load_into, load_weights
from obliviate.training.recipe import Recipe

log = logging.getLogger(__name__)

# Recipes that fit each built-in dataset's training set (>= 98% train accuracy where the
# model can), as unlearning papers' originals do.
DEFAULT_RECIPES: dict[str, dict[str, Any]] = {
    "digits": {"epochs": 30, "batch_size": 64, "lr": 1e-3},
    "mnist1d": {"epochs": 60, "batch_size": 128, "lr": 2e-3},
    "mnist": {"epochs": 20, "batch_size": 128, "lr": 1e-3},
    "fashion-mnist": {"epochs": 40, "batch_size": 128, "lr": 1e-3},
}

# Kinds of user data a ``data`` section may hold (``data: {kind: tabular, path: ...}``);
# a new kind registers its config class, which has ``load()`` returning an object with ``.bundle``.
DATA_KINDS: Registry[type[StrictModel]] = Registry("data kind")
DATA_KINDS.register("tabular", TabularConfig)
DATA_KINDS.register("images", ImageFolderConfig)
CUSTOM_DATASET = "custom"  # what ``dataset`` reads when a ``data`` section replaces the built-ins


def infer_data_kind(path: str) -> str:
    """A folder is an image folder; a file is a table."""
    return "images" if path and Path(path).is_dir() else "tabular"


class RecipeConfig(RecipeFields):
    optimizer: Literal["adam", "sgd"] | None = None
    momentum: float | None = None

    def resolve(self, dataset: str) -> Recipe:
        return Recipe(**{**DEFAULT_RECIPES.get(dataset, {}), **self.overrides()})


class BenchConfig(RunConfig):
    """A classifier run: the data, the model and its recipe, on top of the run fields."""

    task: Literal["classification"] = "classification"
    forget: str | dict[str, Any] | None = "random:0.1"
    dataset: str = "digits"
    data_dir: str | None = None
    model: str = "mlp"
    model_options: dict[str, Any] = Field(default_factory=dict)
    # Your own trained weights (safetensors) as the original, instead of training it; the retrain
    # reference is still trained from scratch with ``recipe``, so use the recipe you trained with.
    model_weights: str | None = None
    # Your own data instead of a built-in ``dataset``: a table or an image folder.
    data: TabularConfig | ImageFolderConfig | None = None
    recipe: RecipeConfig = Field(default_factory=RecipeConfig)
    #: Train on a class-stratified random subset of this many training examples (the same subset
    #: for every seed, drawn with ``subset_seed``); the test split is kept whole. For benchmarks
    #: on a small CPU: forgetting is then measured on a smaller, easier-to-memorise training set.
    train_subset: int | None = Field(default=None, ge=2)
    subset_seed: int = 0
    #: Break forget-set results down by memorisation tercile (low / mid / high; see
    #: :mod:`obliviate.audit.memorization`): adds ``ua_<stratum>`` and ``gap_closed_<stratum>``.
    strata: bool = False
    #: ``--tune`` only (see :mod:`obliviate.tasks.classifier_tuning`): the selection's whole budget as a
    #: fraction of the original's training time. 0.04 keeps it under 5% of retraining for forget sets
    #: up to ~20% of the data (retraining on 90% of it costs ~0.9 of the original's time).
    tune_budget: float = Field(default=0.04, gt=0, le=1)
    #: ... or in seconds (needed with ``model_weights``, whose training time this run does not know)
    tune_budget_s: float | None = Field(default=None, gt=0)
    #: share of the test set held out for the selection ("val"); the rest is the reported test set
    tune_val_fraction: float = Field(default=0.5, gt=0, lt=1)
    #: how far retain and val accuracy may fall below the original's in a tuned method
    tune_keep_tolerance: float = Field(default=0.01, ge=0, le=1)
    #: at most this many candidates per method (the budget usually ends the search first)
    tune_max_trials: int = Field(default=8, ge=1)

    @model_validator(mode="before")
    @classmethod
    def _data_replaces_dataset(cls, v: Any) -> Any:
        if isinstance(v, dict) and v.get("data") is not None:
            if v.get("dataset", CUSTOM_DATASET) != CUSTOM_DATASET:
                raise ValueError(f"give either dataset ({v['dataset']!r}, a built-in) or a data section "
                                 "(your own files), not both")
            v = {**v, "dataset": CUSTOM_DATASET}
        return v

    @field_validator("data", mode="before")
    @classmethod
    def _data(cls, v: Any) -> Any:
        # validate against the kind's own config so unknown keys get nearest-key hints
        if isinstance(v, dict):
            kind = v.get("kind") or infer_data_kind(str(v.get("path", "")))
            try:
                config_cls = DATA_KINDS.get(kind)
            except UnknownNameError as exc:
                raise ValueError(str(exc)) from None
            return validate(config_cls, {**v, "kind": kind}, source=f"{kind} data section")
        return v


def load_bundle(cfg: BenchConfig) -> tuple[DataBundle, dict[str, Any] | None]:
    """The run's data (a built-in set or the user's files, then ``train_subset``) and the user data's schema."""
    data_meta: dict[str, Any] | None = None
    if cfg.data is not None:
        user_data = cfg.data.load()  # the user's own files; their fitted schema goes into meta
        bundle, data_meta = user_data.bundle, user_data.to_dict()
    else:
        bundle = load_dataset(cfg.dataset, data_dir=cfg.data_dir)
    if cfg.train_subset is not None:
        bundle = DataBundle(train=bundle.train.stratified_sample(cfg.train_subset, seed=cfg.subset_seed),
                            test=bundle.test, name=bundle.name)
    return bundle, data_meta


def load_original(spec: ModelSpec, input_shape: tuple[int, ...], n_classes: int, path: str, *, seed: int,
                  device: str) -> TrainedModel:
    """The user's trained weights as the original model (no training, so its time is 0).

    Only the original comes from the file: the retrain reference is trained from
    scratch with the recipe, as it must be to be the gold standard.
    """
    model = build_model(spec, input_shape, n_classes, seed=seed)
    load_into(model, load_weights(path), source=f"model weights {path}")
    return TrainedModel(model.to(device).eval(), 0.0, False, f"weights:{path}", {"weights": path, "steps": 0})


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


def change_flags(outs: SplitOutputs, original: SplitOutputs) -> dict[str, Any]:
    """Did the model change at all, and did it collapse? (every report flags both)

    ``pred_changed``: the share of forget, retain and test examples whose predicted class differs
    from the original's (0 = the method changed no prediction: "changed nothing").
    ``forget_pred_changed``: the same share on the forget set alone (reports flag a method that
    changed fewer than 1% of them).
    ``collapsed``: test accuracy at or below the majority-class rate of the test set.
    """
    splits = ("forget", "retain", "test")
    changed = sum(int((getattr(outs, s).predictions != getattr(original, s).predictions).sum()) for s in splits)
    total = sum(len(getattr(outs, s).labels) for s in splits)
    labels = outs.test.labels
    majority = float(np.bincount(labels).max() / len(labels)) if len(labels) else float("nan")
    nf = len(outs.forget.labels)
    forget_changed = int((outs.forget.predictions != original.forget.predictions).sum())
    return {"pred_changed": changed / total if total else float("nan"),
            "forget_pred_changed": forget_changed / nf if nf else float("nan"),
            "collapsed": bool(outs.test.accuracy <= majority + 1e-12)}


def split_outputs(model: nn.Module, split: ForgetSplit, test: ArrayDataset, device: str) -> SplitOutputs:
    """A model's outputs on the forget, retain and test sets (what every classifier metric reads)."""
    return SplitOutputs(forget=outputs_of(model, split.forget, device=device),
                        retain=outputs_of(model, split.retain, device=device),
                        test=outputs_of(model, test, device=device))


class ClassificationTask(Task):
    name = "classification"
    method_kind = "classification"
    Config = BenchConfig
    description = "PyTorch classifiers on array data"

    def __init__(self, config: BenchConfig, *, bundle: DataBundle | None = None) -> None:
        super().__init__(config)
        self._bundle = bundle
        self._data_meta: dict[str, Any] | None = None

    def check(self) -> list[str]:
        cfg: BenchConfig = self.config  # type: ignore[assignment]
        return collect(
            lambda: DATASETS.get(cfg.dataset) if cfg.data is None and self._bundle is None else None,
            lambda: MODELS.get(cfg.model) if ":" not in cfg.model else None,
            lambda: cfg.recipe.resolve(cfg.dataset),
            lambda: self._check_tune(cfg),
        )

    @staticmethod
    def _check_tune(cfg: BenchConfig) -> None:
        if cfg.tune and cfg.model_weights and cfg.tune_budget_s is None:
            raise ConfigError("--tune with model_weights needs tune_budget_s (seconds for the whole selection): "
                              "this run does not know how long your weights took to train, and tune_budget is a "
                              "fraction of that time.")

    @property
    def bundle(self) -> DataBundle:
        if self._bundle is None:
            self._bundle, self._data_meta = load_bundle(self.config)  # type: ignore[arg-type]
        return self._bundle

    def run_meta(self) -> dict[str, Any]:
        cfg: BenchConfig = self.config  # type: ignore[assignment]
        bundle = self.bundle
        meta = {**super().run_meta(), "dataset": bundle.name, "n_train": len(bundle.train),
                "n_test": len(bundle.test), "n_classes": bundle.n_classes,
                "recipe": cfg.recipe.resolve(cfg.dataset).to_dict(), "data_fingerprint": bundle.train.fingerprint}
        if self._data_meta is not None:
            meta["data"] = self._data_meta
        if cfg.tune:
            meta["tuning"] = {"budget": cfg.tune_budget, "budget_s": cfg.tune_budget_s,
                              "val_fraction": cfg.tune_val_fraction, "keep_tolerance": cfg.tune_keep_tolerance,
                              "max_trials": cfg.tune_max_trials,
                              "note": "the test set is split per seed (stratified) into a selection split (val) "
                                      "and the reported test split; every row's test metrics use the latter"}
        return meta

    def seed_run(self, seed: int, *, cache: ModelCache, progress: Progress) -> ClassifierSeedRun:
        return ClassifierSeedRun(self, seed, cache=cache, progress=progress)


class ClassifierSeedRun(SeedRun):
    """One seed: the forget split, the original (trained or yours) and the retrained reference."""

    def __init__(self, task: ClassificationTask, seed: int, *, cache: ModelCache, progress: Progress) -> None:
        cfg: BenchConfig = task.config  # type: ignore[assignment]
        self.task, self.seed, self.cfg = task, seed, cfg
        bundle = task.bundle
        self.test = bundle.test
        self.val: ArrayDataset | None = None
        if cfg.tune:  # a selection split for every row of a tuned run, so rows stay comparable
            from obliviate.tasks.classifier_tuning import split_held_out

            self.val, self.test = split_held_out(bundle.test, cfg.tune_val_fraction, seed=seed)
        recipe = cfg.recipe.resolve(cfg.dataset)
        spec = ModelSpec(cfg.model, dict(cfg.model_options))
        n_classes = bundle.n_classes
        self.split = split = split_forget(bundle.train, task.request, seed=seed)
        meta: dict[str, Any] = {"n_forget": len(split.forget), "n_retain": len(split.retain)}
        if cfg.model_weights:
            original = load_original(spec, bundle.train.input_shape, n_classes, cfg.model_weights,
                                     seed=seed, device=cfg.device)
        else:
            original = train_cached(spec, bundle.train, recipe, seed=seed, n_classes=n_classes, cache=cache,
                                    progress=progress, device=cfg.device, description=f"original seed={seed}")
        meta["original_cached"] = original.cached
        meta["original_train_s"] = original.wall_s
        self.original = original

        def fit_from_scratch(data: ArrayDataset) -> tuple[nn.Module, float, dict[str, Any]]:
            tm = train_cached(spec, data, recipe, seed=seed, n_classes=n_classes, cache=cache,
                              progress=progress, device=cfg.device, description=f"retrain seed={seed}")
            return tm.model, tm.wall_s, {"cached": tm.cached, "steps": tm.manifest.get("steps", 0),
                                         "trained_at": tm.manifest.get("created")}

        self.unlearning = UnlearningTask(forget=split.forget, retain=split.retain,
                                         objective=ClassificationObjective(n_classes, cfg.device), recipe=recipe,
                                         seed=seed, device=cfg.device, fit_from_scratch=fit_from_scratch,
                                         extras={"train": bundle.train, "test": self.test, "model_spec": spec})
        # The reference model is always retrained, whether or not 'retrain' is a reported row.
        ref_model, self.ref_record = task.method(REFERENCE).unlearn(original.model, self.unlearning,
                                                                    progress=progress)
        self.ref = split_outputs(ref_model, split, self.test, cfg.device)
        self.orig = split_outputs(original.model, split, self.test, cfg.device)
        if self.val is not None:
            meta["n_val"], meta["n_test_reported"] = len(self.val), len(self.test)
            meta["tune_budget_s"] = (cfg.tune_budget_s if cfg.tune_budget_s is not None
                                     else cfg.tune_budget * original.wall_s)
        self.retrain_s = self.ref_record.wall_s
        meta["retrain_s"] = self.retrain_s
        meta["retrain_cached"] = bool(self.ref_record.extra.get("cached", False))
        if meta["retrain_cached"]:
            # the reference time was measured when the cached model was trained, not in this run
            meta["retrain_cached_from"] = (f"seed {seed}: a cached model trained "
                                           f"{self.ref_record.extra.get('trained_at') or 'in an earlier run'}")
        n = len(bundle.train)
        meta["original_train_acc"] = (self.orig.forget.accuracy * meta["n_forget"]
                                      + self.orig.retain.accuracy * meta["n_retain"]) / n
        self.original_tow = tug_of_war(self.orig.accuracies, self.ref.accuracies)
        self.strata: np.ndarray | None = None
        if cfg.strata:
            from obliviate.audit.memorization import STRATA, strata_of

            self.strata = strata_of(bundle.train, seed=seed)[bundle.train.positions(split.forget.ids)]
            meta["forget_per_stratum"] = {s: int((self.strata == k).sum()) for k, s in enumerate(STRATA)}
        self.meta = meta

    def _row(self, method: str, kind: str, outs: SplitOutputs, wall_s: float, extra: dict[str, Any]) -> dict[str, Any]:
        rec = {"method": method, "kind": kind, "seed": self.seed, "tuned": False, "tuning_s": 0.0}
        rec.update(classifier_metrics(outs, self.ref, original_tow=self.original_tow, seed=self.seed))
        rec.update(change_flags(outs, self.orig))
        if self.strata is not None:
            rec.update(stratum_metrics(outs.forget, self.orig.forget, self.ref.forget, self.strata))
        rec.update({"wall_s": wall_s,
                    "wall_ratio": wall_s / self.retrain_s if self.retrain_s > 0 else float("nan")})
        rec.update(extra)
        return rec

    def reference_records(self) -> list[dict[str, Any]]:
        r = self.ref_record
        return [self._row(BASELINE, "none", self.orig, 0.0, {"steps": 0, "stopped_by": "none", "config": {}}),
                self._row(REFERENCE, "exact", self.ref, self.retrain_s,
                          {"steps": r.steps, "stopped_by": r.stopped_by, "config": r.config, **r.extra})]

    def run_methods(self, methods: list[str], budget: Budget, progress: Progress) -> list[dict[str, Any]]:
        import torch

        out = []
        targets = None
        for name in methods:
            method = self.task.method(name)
            t0 = time.process_time()
            # methods that draw from the global RNG stay reproducible, and the caller's generator is untouched
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(self.seed)
                unlearned, record = method.unlearn(self.original.model, self.unlearning, budget=budget,
                                                   progress=progress)
            cpu_s = time.process_time() - t0
            out.append(self._row(name, record.kind, split_outputs(unlearned, self.split, self.test, self.cfg.device),
                                 record.wall_s, {"cpu_s": cpu_s, "steps": record.steps,
                                                 "stopped_by": record.stopped_by, "config": record.config,
                                                 **record.extra}))
            log.info("seed %d %s: tow=%.4f", self.seed, name, out[-1]["tow"])
            if self.cfg.tune and method.kind == "approximate":
                if targets is None:
                    targets = self._targets()
                out.append(self._tuned_row(name, budget, targets))
        return out

    def _targets(self) -> Any:
        from obliviate.tasks.classifier_tuning import ClassifierTargets

        assert self.val is not None  # set whenever cfg.tune is
        t = ClassifierTargets(forget=self.split.forget, retain=self.split.retain, val=self.val,
                              original=self.original.model, keep_tolerance=self.cfg.tune_keep_tolerance,
                              device=self.cfg.device, seed=self.seed)
        self.meta["tuning_targets"] = t.targets.to_list()
        self.meta["tuning_original_measures"] = t.original_measures
        return t

    def _tuned_row(self, name: str, budget: Budget, targets: Any) -> dict[str, Any]:
        """The method tuned without the retrained model; its time is the whole selection's."""
        from obliviate.tasks.classifier_tuning import tune_method

        res = tune_method(self, name, budget, targets, self.meta["tune_budget_s"])
        r = res.record
        row = self._row(name, r.kind, split_outputs(res.model, self.split, self.test, self.cfg.device), r.wall_s,
                        {"cpu_s": res.cpu_s, "steps": r.steps, "stopped_by": r.stopped_by, "config": r.config,
                         **r.extra})
        row.update({"tuned": True, "tuning_s": res.selection.tuning_s, "tuning": res.selection.summary()})
        log.info("seed %d %s (tuned, %.1fs): tow=%.4f", self.seed, name, r.wall_s, row["tow"])
        return row


TASKS.register("classification", ClassificationTask)
