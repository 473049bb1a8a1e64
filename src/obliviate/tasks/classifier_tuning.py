"""Oracle-free tuning of classifier unlearning methods (``obliviate bench --tune``).

What a user who must honour a deletion request can compute, and so what the selection aims at
(the retrained model is never looked at):

- a *selection split* ("val") of held-out examples: the test set is split once per seed,
  stratified, into ``val`` and the reported test split (``tune_val_fraction``), for every row of
  a tuned run so that rows stay comparable. Reported test metrics never see ``val``.
- random / id / stratum forgetting (the forget set looks like the training distribution):
  ``forget_gap`` = forget accuracy - val accuracy -> 0 and ``mia_auc`` = a loss attack's AUC of
  forget against val examples -> 0.5 (reach); ``retain_acc`` and ``val_acc`` at most
  ``tune_keep_tolerance`` below the original's (keep).
- class forgetting (the retain set has none of the forget set's classes): ``forget_acc`` -> 0
  and ``val_forget_acc`` (val examples of those classes) -> 0 (reach); ``retain_acc`` and
  ``val_other_acc`` (the other classes) kept.

A trial's score is ``KEEP_WEIGHT`` times its keep excess plus its reach excess (lower is better),
so a dip at noise level in retain accuracy does not outweigh reaching the forget targets.
Reach tolerances are two standard errors of the measure on the full sets (at least 0.01 for
accuracies and 0.02 for the AUC). During a trial the monitor (:class:`~obliviate.tasks.tuning.EarlyStop`)
measures on subsamples of at most ``MONITOR_N`` examples per set; a trial's final measurement
uses the whole forget and val sets and at most ``FINAL_RETAIN_N`` retain examples.

Budget: the whole selection (every trial and measurement) gets ``tune_budget`` times the
original's training time (measured in this run, or recorded with a cached original: a user
knows how long their model took to train; the retraining time is what they avoid and do not
have), or ``tune_budget_s`` seconds when given.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import nn

from obliviate.audit.mia import auc
from obliviate.audit.outputs import outputs_of
from obliviate.data.dataset import ArrayDataset
from obliviate.errors import ConfigError
from obliviate.removal.base import METHODS, Budget, RemovalRecord
from obliviate.tasks.tuning import EarlyStop, Selection, Target, Targets, Trial, candidates, select, space_for

if TYPE_CHECKING:
    from obliviate.tasks.classification import ClassifierSeedRun

log = logging.getLogger(__name__)

MONITOR_N = 1000       # examples per set the early-stopping monitor measures on
FINAL_RETAIN_N = 5000  # retain examples of a trial's final measurement
MONITOR_EVERY = 5      # steps between monitor calls (each call is throttled by EarlyStop)
#: a trial's score is 10 x (keep excess) + (reach excess): one point of retain or val accuracy lost
#: beyond the tolerance weighs as much as ten points of distance from the reach targets
KEEP_WEIGHT = 10.0
MONITOR_OVERHEAD = 0.25  # at most this share of a trial's time goes to the monitor's measurements (1: every call)


def split_held_out(test: ArrayDataset, fraction: float, *, seed: int) -> tuple[ArrayDataset, ArrayDataset]:
    """``(val, reported_test)``: a seeded, class-stratified split of the test set."""
    from sklearn.model_selection import train_test_split

    n = len(test)
    n_val = int(round(fraction * n))
    if not 1 <= n_val < n:
        raise ConfigError(f"tune_val_fraction {fraction} of {n} test examples leaves no val or no test example; "
                          "choose a fraction between 0 and 1 that leaves both.")
    counts = np.bincount(test.y, minlength=test.n_classes)
    ok = (counts[counts > 0] >= 2).all() and min(n_val, n - n_val) >= (counts > 0).sum()
    val_idx, test_idx = train_test_split(np.arange(n), train_size=n_val, random_state=seed,
                                         stratify=test.y if ok else None)
    return (test.subset(np.sort(val_idx), name=f"{test.name}[val]"),
            test.subset(np.sort(test_idx), name=f"{test.name}[test]"))


def _sample(data: ArrayDataset, n: int, rng: np.random.Generator) -> ArrayDataset:
    return data if len(data) <= n else data.subset(np.sort(rng.choice(len(data), n, replace=False)))


def _acc_se(p: float, n: int) -> float:
    return math.sqrt(max(p * (1 - p), 1e-4) / max(n, 1))


@dataclass
class Sets:
    """The data one measurement reads (full or subsampled)."""

    forget: ArrayDataset
    retain: ArrayDataset
    val: ArrayDataset


class ClassifierTargets:
    """The targets of one seed's selection and the measurements behind them (no retrained model here)."""

    def __init__(self, *, forget: ArrayDataset, retain: ArrayDataset, val: ArrayDataset, original: nn.Module,
                 keep_tolerance: float, device: str, seed: int) -> None:
        self.device = device
        rng = np.random.default_rng([seed, 0x7E])
        self.full = Sets(forget, _sample(retain, FINAL_RETAIN_N, rng), val)
        self.fast = Sets(_sample(forget, MONITOR_N, rng), _sample(retain, MONITOR_N, rng), _sample(val, MONITOR_N, rng))
        forgotten = sorted(set(np.unique(forget.y)) - set(np.unique(retain.y)))
        self.class_forgetting = bool(forgotten) and set(np.unique(forget.y)) == set(forgotten)
        self.classes = np.array(forgotten, dtype=np.int64)
        if self.class_forgetting and not np.isin(val.y, self.classes).any():
            raise ConfigError("class forgetting with --tune needs val examples of the forgotten class(es); "
                              "raise tune_val_fraction or give a test set that has them.")
        base = self.measure(original, full=True)
        self.original_measures = base
        nf, nv = len(forget), len(val)
        if self.class_forgetting:
            nvo = int((~np.isin(val.y, self.classes)).sum())
            self.targets = Targets(keep_weight=KEEP_WEIGHT, targets=(
                Target("forget_acc", 0.0, 0.01, "reach", "above"),
                Target("val_forget_acc", 0.0, 0.02, "reach", "above"),
                Target("retain_acc", base["retain_acc"], keep_tolerance, "keep", "below"),
                Target("val_other_acc", base["val_other_acc"], max(keep_tolerance, 2 * _acc_se(base["val_other_acc"], nvo)),
                       "keep", "below"),
            ))
        else:
            p = base["val_acc"]
            gap_tol = max(0.01, 2 * math.sqrt(_acc_se(p, nf) ** 2 + _acc_se(p, nv) ** 2))
            auc_tol = max(0.02, 2 * math.sqrt((1 / nf + 1 / nv) / 12))
            self.targets = Targets(keep_weight=KEEP_WEIGHT, targets=(
                Target("forget_gap", 0.0, gap_tol, "reach"),
                Target("mia_auc", 0.5, auc_tol, "reach"),
                Target("retain_acc", base["retain_acc"], keep_tolerance, "keep", "below"),
                Target("val_acc", base["val_acc"], keep_tolerance, "keep", "below"),
            ))

    def measure(self, model: nn.Module, *, full: bool) -> dict[str, float]:
        sets = self.full if full else self.fast
        f, r, v = (outputs_of(model, d, device=self.device) for d in (sets.forget, sets.retain, sets.val))
        out = {"forget_acc": f.accuracy, "retain_acc": r.accuracy, "val_acc": v.accuracy}
        if self.class_forgetting:
            hit = v.predictions == v.labels
            in_cls = np.isin(v.labels, self.classes)
            out["val_forget_acc"] = float(hit[in_cls].mean()) if in_cls.any() else float("nan")
            out["val_other_acc"] = float(hit[~in_cls].mean()) if (~in_cls).any() else float("nan")
        else:
            out["forget_gap"] = f.accuracy - v.accuracy
            out["mia_auc"] = auc(-f.loss, -v.loss)  # higher score = member: low loss
        return out


@dataclass
class TunedResult:
    model: nn.Module
    record: RemovalRecord
    selection: Selection
    cpu_s: float


def tune_method(run: ClassifierSeedRun, name: str, budget: Budget, targets: ClassifierTargets,
                budget_s: float) -> TunedResult:
    """Select ``name``'s settings and stopping point on ``targets`` within ``budget_s`` seconds (no retrain)."""
    task, cfg = run.task, run.cfg
    base = task.method(name)  # the task's defaults and the user's method_config
    space = space_for(base.config, task.method_profile())
    user = dict(cfg.method_config.get(name, {}))
    # the defaults (with early stopping) first, then the space: a tuned method is never chosen
    # over its defaults unless it scores better on the oracle-free targets
    trials = [{}] + [c for c in candidates(space) if any(getattr(base.config, k, object()) != v for k, v in c.items())]
    trials = trials[:cfg.tune_max_trials]

    def run_trial(overrides: dict[str, Any], left: float | None) -> Trial:
        t0 = time.perf_counter()
        method = METHODS.get(name).for_task(task.method_profile(), **{**user, **overrides})
        monitor = EarlyStop(lambda m: targets.measure(m, full=False), targets.targets, overhead=MONITOR_OVERHEAD)
        caps = [s for s in (budget.max_seconds, left) if s is not None]
        trial_budget = Budget(max_steps=budget.max_steps, max_seconds=min(caps) if caps else None,
                              monitor=monitor, monitor_every=MONITOR_EVERY)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(run.seed)
            model, record = method.unlearn(run.original.model, run.unlearning, budget=trial_budget)
        steps = monitor.restore_best(model, record.steps)
        model.eval()
        measures = targets.measure(model, full=True)
        stopped = record.stopped_by if steps == record.steps else f"{record.stopped_by}; best state kept (step {steps})"
        return Trial(overrides=overrides, measures=measures, score=targets.targets.score(measures),
                     met=targets.targets.met(measures), steps=steps, stopped_by=stopped,
                     seconds=time.perf_counter() - t0, model=model, record=record)

    c0 = time.process_time()
    sel = select(name, trials, run_trial, targets.targets, budget_s=budget_s)
    cpu_s = time.process_time() - c0
    chosen = sel.chosen
    assert chosen is not None and chosen.model is not None  # select() runs at least one trial
    rec: RemovalRecord = chosen.record
    record = RemovalRecord(method=name, kind=rec.kind, wall_s=sel.tuning_s, steps=chosen.steps,
                           stopped_by=chosen.stopped_by, config=rec.config, extra=dict(rec.extra))
    return TunedResult(chosen.model, record, sel, cpu_s)
