"""Oracle-free selection for the language-model tasks: targets a user can compute, without the retain-only model.

A user who must honour a deletion request has the original model, the training data and
the forget set, and can draw more people from the same generator who were never trained
on; they do not have the model retrained without the forget set. So a method's settings
and its stopping point are chosen here from what the *original* and those never-trained
people say (:class:`TuningLevels`), on splits kept apart from every reported metric
(``LMTaskData.tuning``: the tuning people are not the evaluated holdout, and the retain
sample is disjoint from the evaluated one):

- reach ``ks_p``: the forget set's truth ratios should look like never-trained people's.
  TOFU's forget quality compares them with the retain-only model's truth ratios on the
  forget set, i.e. with how a model that never saw these people rates them; the stand-in
  here is how the *original* rates the tuning people, whom it never saw. The KS p-value
  should be at least ``min_ks_p``;
- reach ``mia_auc``: a loss attack's AUC between the forget set and the tuning people, under
  the model being tuned, should be 0.5 (MUSE's PrivLeak is this AUC relative to the retain-only
  model's, which is about 0.5: aiming at 0.5, not at the lowest AUC, is what keeps a method
  from over-shooting to a negative PrivLeak);
- reach ``forget_exact``: the forget answers should be produced about as often as the
  original produces never-trained people's answers (guessable attributes, like a colour);
- keep ``retain_exact``, ``general_exact`` and ``neighbours_exact`` within a tolerance of the
  original's (model utility, and the people who share attributes with the forget set's people).

:func:`tune_method` runs the small search of :mod:`obliviate.tasks.tuning` over the method's
``tuning_space["lm"]``. Each trial is one run of the method whose budget carries a monitor
(:class:`Checkpoints`): it measures the working model ``checks`` times over the run, keeps the
best state by the targets' score, and stops the run when the targets are met or the score has
not improved for ``patience`` checks. The trial's model is that best state (the stopping point).
Everything is built inside the process that runs the method: nothing here is pickled but data.

The retain-only model is never passed to anything in this module.
"""

from __future__ import annotations

import copy
import logging
import math
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from obliviate.audit.lm_eval import greedy_answers, token_logprobs, truth_ratios, SplitSignals
from obliviate.audit.lm_metrics import forget_quality, length_normalised_prob
from obliviate.audit.lm_mia import loss_score, mia_auc
from obliviate.data.qa import QADataset
from obliviate.errors import ConfigError
from obliviate.models.lm import QAFormat
from obliviate.progress import NullProgress, Progress, ProgressTask
from obliviate.removal.base import METHODS, Budget, RemovalMethod, RemovalRecord, UnlearningTask
from obliviate.tasks.lm_config import LMTuningSection
from obliviate.tasks.tuning import Selection, Target, Targets, Trial, candidates, select

log = logging.getLogger(__name__)

__all__ = ["Checkpoints", "TuningLevels", "lm_targets", "measure", "original_levels", "tune_method"]

#: the splits :func:`measure` needs in ``LMTaskData.tuning``
TUNING_SPLITS = ("forget", "holdout", "retain", "neighbours", "general")
#: checks without a better score (after a first improvement) before a trial stops
PATIENCE = 3


# --------------------------------------------------------------------------- measuring


@dataclass
class _Encoded:
    """One split encoded once: true answers, then the paraphrased and wrong answers (truth ratio)."""

    data: QADataset
    true: list[tuple[tuple[int, ...], tuple[int, ...]]]
    extra: list[tuple[tuple[int, ...], tuple[int, ...]]]
    where: list[tuple[int, int]]
    max_new: int


def _encode(fmt: QAFormat, data: QADataset, *, truth_ratio: bool) -> _Encoded:
    true = [fmt.encode(ex.question, ex.answer) for ex in data]
    extra, where = [], []
    if truth_ratio:
        for i, ex in enumerate(data):
            if ex.paraphrased_answer is not None and ex.perturbed_answer:
                extra.append(fmt.encode(ex.question, ex.paraphrased_answer))
                where.append((i, -1))
                for k, wrong in enumerate(ex.perturbed_answer):
                    extra.append(fmt.encode(ex.question, wrong))
                    where.append((i, k))
    return _Encoded(data, true, extra, where, max((len(a) for _, a in true), default=1) + 2)


class Measurer:
    """:func:`measure` with each split encoded once (build it where the model runs)."""

    def __init__(self, fmt: QAFormat, tuning: Mapping[str, QADataset], *, batch_size: int = 64,
                 device: str | torch.device = "cpu") -> None:
        missing = [s for s in TUNING_SPLITS if s not in tuning or len(tuning[s]) == 0]
        if missing:
            raise ConfigError(f"The oracle-free selection needs the tuning splits {list(TUNING_SPLITS)}; "
                              f"{missing} are missing or empty. On the persons task they come with --tune "
                              "(corpus.n_tuning people never trained on).")
        self.fmt, self.batch_size, self.device = fmt, batch_size, device
        self.enc = {name: _encode(fmt, tuning[name], truth_ratio=name in ("forget", "holdout")) for name in TUNING_SPLITS}

    def _logprobs(self, model: nn.Module, items: list[Any]) -> list[np.ndarray]:
        return token_logprobs(model, items, batch_size=self.batch_size, device=self.device,  # type: ignore[return-value]
                              pad_id=self.fmt.pad_id) if items else []

    def signals(self, model: nn.Module, name: str) -> dict[str, Any]:
        """Answer log-probs, truth ratios (forget, holdout) and exact greedy answers of one split."""
        e = self.enc[name]
        answer = self._logprobs(model, e.true)
        out: dict[str, Any] = {"answer": answer}
        if e.extra:
            lps = self._logprobs(model, e.extra)
            para: list[np.ndarray | None] = [None] * len(e.data)
            pert: list[list[np.ndarray]] = [[] for _ in e.data]
            for (i, k), lp in zip(e.where, lps, strict=True):
                if k < 0:
                    para[i] = lp
                else:
                    pert[i].append(lp)
            sig = SplitSignals(ids=[ex.id for ex in e.data], answers=[], answer=[], mu=[], sigma=[],
                               paraphrased=para, perturbed=pert, greedy=[])
            tr = truth_ratios(sig)
            out["truth_ratios"] = tr[np.isfinite(tr)]
        greedy = greedy_answers(model, self.fmt, [ex.question for ex in e.data], max_new_tokens=e.max_new,
                                batch_size=self.batch_size, device=self.device)
        out["exact"] = float(np.mean([g.strip() == ex.answer.strip() for g, ex in zip(greedy, e.data, strict=True)]))
        out["prob"] = float(np.mean([length_normalised_prob(lp) for lp in answer]))
        return out


@dataclass
class TuningLevels:
    """What the original says on the tuning splits: the levels the targets aim at (computed once per seed).

    ``holdout_truth_ratios``: the original's truth ratios on the tuning people (never trained
    on), the stand-in for how a model that never saw the forget people rates them.
    """

    holdout_truth_ratios: np.ndarray
    holdout_exact: float
    holdout_prob: float
    retain_exact: float
    neighbours_exact: float
    general_exact: float
    #: the median answer loss (mean nats per token) of the tuning people: how unfamiliar a
    #: never-trained person's facts are (a forget-loss ceiling, ``"@holdout_loss"`` in a space)
    holdout_loss: float = math.nan
    measures: dict[str, float] = field(default_factory=dict)

    def resolve(self, value: Any) -> Any:
        """A tuning-space value: ``"@name"`` stands for this level (e.g. ``"@holdout_loss"``)."""
        if isinstance(value, str) and value.startswith("@"):
            got = getattr(self, value[1:], None)
            if not isinstance(got, float):
                raise ConfigError(f"tuning-space value {value!r} names no level of the original; known: "
                                  "'@holdout_loss', '@holdout_prob', '@holdout_exact'.")
            return got
        return value

    def to_dict(self) -> dict[str, float]:
        return {"holdout_exact": self.holdout_exact, "holdout_prob": self.holdout_prob,
                "holdout_loss": self.holdout_loss,
                "retain_exact": self.retain_exact, "neighbours_exact": self.neighbours_exact,
                "general_exact": self.general_exact, "n_holdout_truth_ratios": int(self.holdout_truth_ratios.size)}


def measure(model: nn.Module, measurer: Measurer, levels: TuningLevels | None) -> dict[str, float]:
    """The oracle-free measures of ``model`` (``levels`` None: the original itself, before any levels exist)."""
    was_training = model.training
    model.eval()
    try:
        sig = {name: measurer.signals(model, name) for name in TUNING_SPLITS}
    finally:
        model.train(was_training)
    ref_tr = levels.holdout_truth_ratios if levels is not None else sig["holdout"]["truth_ratios"]
    fg, ho = sig["forget"], sig["holdout"]
    out = {
        "ks_p": forget_quality(fg["truth_ratios"], ref_tr) if fg["truth_ratios"].size and ref_tr.size else math.nan,
        "mia_auc": mia_auc([loss_score(lp) for lp in fg["answer"]], [loss_score(lp) for lp in ho["answer"]]),
        "forget_exact": fg["exact"], "holdout_exact": ho["exact"],
        "forget_prob": fg["prob"], "holdout_prob": ho["prob"],
        "retain_exact": sig["retain"]["exact"], "neighbours_exact": sig["neighbours"]["exact"],
        "general_exact": sig["general"]["exact"],
    }
    if levels is None:
        out["_holdout_truth_ratios"] = ho["truth_ratios"]  # type: ignore[assignment]
        out["_holdout_loss"] = float(np.median([-float(np.mean(lp)) for lp in ho["answer"]]))
    return out


def original_levels(original: nn.Module, measurer: Measurer) -> TuningLevels:
    """The levels of :class:`TuningLevels`, from the original model (never the retain-only one)."""
    m = measure(original, measurer, None)
    tr = np.asarray(m.pop("_holdout_truth_ratios"))  # type: ignore[call-overload]
    loss = float(m.pop("_holdout_loss"))
    return TuningLevels(holdout_truth_ratios=tr, holdout_exact=m["holdout_exact"], holdout_prob=m["holdout_prob"],
                        retain_exact=m["retain_exact"], neighbours_exact=m["neighbours_exact"],
                        general_exact=m["general_exact"], holdout_loss=loss, measures=m)


def lm_targets(levels: TuningLevels, cfg: LMTuningSection) -> Targets:
    """The selection's targets: reach held-out people's level on the forget set, keep the rest."""
    return Targets((
        Target("ks_p", goal=1.0, tolerance=1.0 - cfg.min_ks_p, kind="reach", side="below"),
        Target("mia_auc", goal=0.5, tolerance=cfg.mia_tolerance, kind="reach"),
        Target("forget_exact", goal=levels.holdout_exact, tolerance=cfg.keep_tolerance, kind="reach"),
        Target("retain_exact", goal=levels.retain_exact, tolerance=cfg.keep_tolerance, kind="keep", side="below"),
        Target("general_exact", goal=levels.general_exact, tolerance=cfg.keep_tolerance, kind="keep", side="below"),
        Target("neighbours_exact", goal=levels.neighbours_exact, tolerance=cfg.neighbour_tolerance, kind="keep",
               side="below"),
    ))


# --------------------------------------------------------------------------- one trial


class _PlannedSteps(Progress):
    """Passes progress on and remembers the planned length of the method's step loops (``total``)."""

    def __init__(self, inner: Progress) -> None:
        self.inner = inner
        self.total: int | None = None

    @contextmanager
    def task(self, description: str, total: float | None = None) -> Iterator[ProgressTask]:
        if total:
            self.total = int(total)
        with self.inner.task(description, total=total) as t:
            yield t

    def log(self, message: str) -> None:
        self.inner.log(message)


def _fingerprint(model: nn.Module) -> float:
    return float(sum(float(p.detach().double().abs().sum()) for p in model.parameters() if p.requires_grad))


class Checkpoints:
    """A budget monitor: measure the working model ``checks`` times a run, keep its best state, stop when done.

    Called every step; it measures every ``ceil(planned steps / checks)`` steps (the plan comes
    from the method's step loop through :class:`_PlannedSteps`) and only when the weights moved.
    Returns ``"targets met"`` or ``"no improvement"`` to stop the run.
    """

    def __init__(self, measure_fn: Any, targets: Targets, *, checks: int, planned: _PlannedSteps,
                 patience: int = PATIENCE) -> None:
        self.measure_fn, self.targets, self.checks, self.planned, self.patience = \
            measure_fn, targets, checks, planned, patience
        self.best: tuple[tuple[float, float], int, dict[str, float], dict[str, torch.Tensor] | None] | None = None
        self.first_score: tuple[float, float] | None = None
        self.since_best = 0
        self.history: list[dict[str, Any]] = []
        self.measure_s = 0.0
        self._last_print: float | None = None

    def observe(self, model: nn.Module, steps: int, *, keep_state: bool = True) -> dict[str, float] | None:
        fp = _fingerprint(model)
        if self._last_print is not None and fp == self._last_print:
            return None  # the weights have not moved since the last measurement (e.g. a reinforce phase)
        self._last_print = fp
        t0 = time.perf_counter()
        m = self.measure_fn(model)
        self.measure_s += time.perf_counter() - t0
        score = self.targets.score(m)
        self.history.append({"steps": steps, "score": list(score), **{k: round(v, 4) for k, v in m.items()}})
        if self.first_score is None:
            self.first_score = score
        if self.best is None or score < self.best[0]:
            state = {k: v.detach().clone() for k, v in model.state_dict().items()} if keep_state else None
            self.best = (score, steps, m, state)
            self.since_best = 0
        else:
            self.since_best += 1
        return m

    def __call__(self, model: nn.Module, steps: int) -> str | None:
        every = max(1, math.ceil((self.planned.total or self.checks) / self.checks))
        if steps % every:
            return None
        m = self.observe(model, steps)
        if m is None:
            return None
        if self.targets.met(m):
            return "targets met"
        improved = self.best is not None and self.first_score is not None and self.best[0] < self.first_score
        if improved and self.since_best >= self.patience:
            return "no improvement"
        return None


def _trial_method(name: str, profile: str | None, base: Mapping[str, Any], overrides: Mapping[str, Any]) -> RemovalMethod:
    return METHODS.get(name).for_task(profile, **{**base, **overrides})


@dataclass
class TunedRun:
    """The outcome of :func:`tune_method`: the chosen model, its record, and the selection."""

    model: nn.Module
    record: RemovalRecord
    selection: Selection
    levels: TuningLevels


def tune_method(name: str, start: nn.Module, task: UnlearningTask, measurer: Measurer, levels: TuningLevels,
                cfg: LMTuningSection, *, profile: str | None, base: Mapping[str, Any] | None = None,
                seed: int = 0, progress: Progress | None = None) -> TunedRun:
    """Choose ``name``'s settings and stopping point on the oracle-free targets; return the chosen model.

    ``start``: the model the method starts from (the original); ``base``: the run's own
    overrides of the method (fixed: a key set there is not searched over); ``measurer``/``levels``: the tuning
    splits and the original's levels on them. The search runs the candidates of
    ``Config.tuning_space[profile]`` in order (one trial at the method's settings when it has
    none), each with early stopping, until one meets every target or ``cfg.budget_s`` is spent.
    """
    method_cls = METHODS.get(name)
    # The spaces are sized for the built-in small GPT-2 (profile "lm"); a local pre-trained model
    # (no profile) gets one trial at its own settings, still with early stopping.
    space = method_cls.Config.tuning_space.get(profile) if profile else None
    base = dict(base or {})
    # a setting the run fixes (--set) is not searched over
    space = {k: v for k, v in (space or {}).items() if k not in base}
    trials = [{k: levels.resolve(v) for k, v in c.items()} for c in candidates(space)] if space else [{}]
    targets = lm_targets(levels, cfg)
    progress = progress or NullProgress()

    def run_trial(overrides: dict[str, Any], left: float | None) -> Trial:
        method = _trial_method(name, profile, base, overrides)
        planned = _PlannedSteps(progress)
        monitor = Checkpoints(lambda m: measure(m, measurer, levels), targets, checks=cfg.checks, planned=planned)
        budget = Budget(max_seconds=left, monitor=monitor, monitor_every=1)
        t0 = time.perf_counter()
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            model, record = method.unlearn(start, task, budget=budget, progress=planned)
        monitor.observe(model, record.steps)  # the final state is a candidate too
        if monitor.best is None:  # the weights never moved and nothing was measured
            monitor._last_print = None
            monitor.observe(model, record.steps)
        score, steps, m, state = monitor.best  # type: ignore[misc]
        if state is not None and steps != record.steps:
            model.load_state_dict(state)
        met = targets.met(m)
        return Trial(overrides=dict(overrides), measures=m, score=score, met=met, steps=steps,
                     stopped_by=record.stopped_by, seconds=time.perf_counter() - t0, model=model,
                     record={"record": record, "history": monitor.history, "measure_s": monitor.measure_s})

    selection = select(name, trials, run_trial, targets, budget_s=cfg.budget_s)
    chosen = selection.chosen
    if chosen is None or chosen.model is None:
        raise ConfigError(f"The selection for {name!r} ran no trial within its budget of {cfg.budget_s} s; "
                          "raise tuning.budget_s.")
    record: RemovalRecord = chosen.record["record"]
    record = copy.copy(record)
    record.steps = chosen.steps
    return TunedRun(model=chosen.model, record=record, selection=selection, levels=levels)
