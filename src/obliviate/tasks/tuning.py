"""Oracle-free selection: choose a method's settings and stopping point without the retrained model.

Nobody who must honour a deletion request has the model retrained without the data (that is
what they are trying to avoid computing), so a method's hyperparameters and its stopping point
are chosen here from *targets a user can compute*: forget accuracy falling to the level of
held-out data of the same distribution, a membership-inference AUC between forget and held-out
examples near 0.5, and retain and held-out accuracy kept within a tolerance of the original's.
The task supplies what the targets are (:class:`Targets`) and how to measure a model
(``measure``); this module runs a small, budgeted search over a method's
``Config.tuning_space`` with early stopping on those targets and keeps the best trial.

The retrained model is never looked at. The selection's whole time (every trial and every
measurement) is the tuned method's time: a row's ``wall_ratio`` includes it.
"""

from __future__ import annotations

import copy
import dataclasses
import itertools
import logging
import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from torch import nn

from obliviate.errors import ConfigError

log = logging.getLogger(__name__)

__all__ = ["EarlyStop", "Selection", "Target", "Targets", "Trial", "candidates", "generic_space", "select",
           "space_for"]


@dataclass(frozen=True)
class Target:
    """One measurable goal: ``measure`` should be within ``tolerance`` of ``goal``.

    ``kind`` is ``"reach"`` (the method should move the measure to the goal: forget accuracy,
    MIA AUC) or ``"keep"`` (a constraint the method must not break: retain, held-out accuracy).
    ``side`` limits which deviations count: ``"both"``, ``"below"`` (only falling short of the
    goal counts, e.g. retain accuracy may rise) or ``"above"``.
    """

    measure: str
    goal: float
    tolerance: float
    kind: str = "reach"
    side: str = "both"

    def __post_init__(self) -> None:
        if self.kind not in ("reach", "keep"):
            raise ConfigError(f"Target.kind must be 'reach' or 'keep'; got {self.kind!r}.")
        if self.side not in ("both", "below", "above"):
            raise ConfigError(f"Target.side must be 'both', 'below' or 'above'; got {self.side!r}.")
        if not (math.isfinite(self.goal) and self.tolerance >= 0):
            raise ConfigError(f"Target {self.measure!r} needs a finite goal and a tolerance >= 0; "
                              f"got goal={self.goal!r}, tolerance={self.tolerance!r}.")

    def excess(self, value: float) -> float:
        """How far ``value`` lies outside the tolerance band (0 inside it; inf for NaN)."""
        if not math.isfinite(value):
            return math.inf
        d = value - self.goal
        if self.side == "below":
            d = min(d, 0.0)
        elif self.side == "above":
            d = max(d, 0.0)
        return max(abs(d) - self.tolerance, 0.0)

    def to_dict(self) -> dict[str, Any]:
        return {"measure": self.measure, "goal": self.goal, "tolerance": self.tolerance, "kind": self.kind,
                "side": self.side}


@dataclass(frozen=True)
class Targets:
    """The targets of one selection; :meth:`met` is the early-stopping test."""

    targets: tuple[Target, ...]
    #: None: a broken ``keep`` constraint always loses (lexicographic score). A number: the score is
    #: ``(keep_weight * keep + reach, keep)``, so a keep excess at noise level (a 0.1-point dip) can lose
    #: to a large gain on the reach targets; 10 trades one point of accuracy for ten points of reach.
    keep_weight: float | None = None

    def __post_init__(self) -> None:
        if self.keep_weight is not None and not self.keep_weight > 0:
            raise ConfigError(f"Targets.keep_weight must be > 0 or None; got {self.keep_weight!r}.")

    def excesses(self, measures: Mapping[str, float]) -> dict[str, float]:
        missing = [t.measure for t in self.targets if t.measure not in measures]
        if missing:
            raise ConfigError(f"measure() returned no value for target(s) {missing}; it returned {sorted(measures)}.")
        return {t.measure: t.excess(float(measures[t.measure])) for t in self.targets}

    def met(self, measures: Mapping[str, float]) -> bool:
        return all(e == 0.0 for e in self.excesses(measures).values())

    def score(self, measures: Mapping[str, float]) -> tuple[float, float]:
        """Lower is better: (broken constraints, distance from the reach targets); see ``keep_weight``."""
        keep, reach = self.parts(measures)
        return (keep, reach) if self.keep_weight is None else (self.keep_weight * keep + reach, keep)

    def parts(self, measures: Mapping[str, float]) -> tuple[float, float]:
        """(summed excess of the keep constraints, summed excess of the reach targets)."""
        ex = self.excesses(measures)
        keep = sum(ex[t.measure] for t in self.targets if t.kind == "keep")
        reach = sum(ex[t.measure] for t in self.targets if t.kind == "reach")
        return keep, reach

    def to_list(self) -> list[dict[str, Any]]:
        return [t.to_dict() for t in self.targets]


@dataclass
class Trial:
    """One candidate's run: its overrides, where it stopped, what was measured, and its model."""

    overrides: dict[str, Any]
    measures: dict[str, float]
    score: tuple[float, float]
    met: bool
    steps: int
    stopped_by: str
    seconds: float
    model: nn.Module | None = field(default=None, repr=False)
    record: Any = field(default=None, repr=False)

    def to_dict(self) -> dict[str, Any]:
        return {"overrides": self.overrides, "measures": self.measures, "score": list(self.score),
                "met": self.met, "steps": self.steps, "stopped_by": self.stopped_by,
                "seconds": round(self.seconds, 3)}


@dataclass
class Selection:
    """The outcome of a selection: every trial, the chosen one, and the time it all took."""

    method: str
    targets: Targets
    trials: list[Trial]
    chosen: Trial | None
    tuning_s: float
    budget_s: float | None
    stopped_by: str

    def summary(self) -> dict[str, Any]:
        """What a result row keeps of the selection (JSON-serialisable)."""
        return {"targets": self.targets.to_list(), "chosen": self.chosen.overrides if self.chosen else None,
                "chosen_met_targets": bool(self.chosen and self.chosen.met), "budget_s": self.budget_s,
                "stopped_by": self.stopped_by, "trials": [t.to_dict() for t in self.trials]}


def candidates(space: Mapping[str, Sequence[Any]], *, limit: int | None = None) -> list[dict[str, Any]]:
    """Every combination of ``space``'s values, in a fixed order (first values first), at most ``limit``."""
    for key, values in space.items():
        if isinstance(values, (str, bytes)) or not isinstance(values, Sequence) or len(values) == 0:
            raise ConfigError(f"tuning space entry {key!r} must be a non-empty list of values; got {values!r}.")
    keys = list(space)
    out = [dict(zip(keys, combo)) for combo in itertools.product(*(space[k] for k in keys))]
    return out[:limit] if limit is not None else out


def select(method: str, trials: Sequence[dict[str, Any]], run_trial: Callable[[dict[str, Any], float | None], Trial],
           targets: Targets, *, budget_s: float | None = None, stop_when_met: bool = True) -> Selection:
    """Run ``run_trial(overrides, seconds_left)`` over ``trials`` until the budget is spent; keep the best.

    The best trial has the fewest broken ``keep`` constraints, then the smallest distance from
    the ``reach`` targets, then the fewest steps. With ``stop_when_met`` the search ends at the
    first trial that meets every target (trials are ordered cheapest/gentlest first).
    """
    if not trials:
        raise ConfigError(f"method {method!r} has an empty tuning space; give it at least one candidate.")
    if budget_s is not None and not budget_s > 0:
        raise ConfigError(f"the selection budget must be > 0 seconds; got {budget_s!r}.")
    t0 = time.perf_counter()
    done: list[Trial] = []
    chosen: Trial | None = None
    why = "searched every candidate"
    for overrides in trials:
        left = None if budget_s is None else budget_s - (time.perf_counter() - t0)
        if left is not None and left <= 0:
            why = "budget"
            break
        trial = run_trial(dict(overrides), left)
        done.append(trial)
        log.info("tuning %s %s: %s met=%s score=%s", method, overrides, trial.measures, trial.met, trial.score)
        if chosen is None or (trial.score, trial.steps) < (chosen.score, chosen.steps):
            if chosen is not None:
                chosen.model = None  # keep only the best model in memory
            chosen = trial
        else:
            trial.model = None
        if stop_when_met and trial.met:
            why = "targets met"
            break
    return Selection(method=method, targets=targets, trials=done, chosen=chosen,
                     tuning_s=time.perf_counter() - t0, budget_s=budget_s, stopped_by=why)


# --- search spaces --------------------------------------------------------------

#: config fields a generic space varies as the method's length, in order of preference
LENGTH_FIELDS = ("epochs", "steps", "max_steps", "iterations")


def generic_space(config: Any) -> dict[str, list[Any]]:
    """A space for a method without a ``tuning_space``: its learning rate x1, x3, x10 and its length x1, x2.

    ``config`` is the method's config (a dataclass) at the defaults the task would use. Fields
    it lacks are left out; a config with neither gives ``{}`` (one trial at its defaults, still
    with early stopping). Early stopping ends a trial once the targets are met, so a longer
    length is only an upper limit.
    """
    values = dataclasses.asdict(config) if dataclasses.is_dataclass(config) else dict(config)
    space: dict[str, list[Any]] = {}
    lr = values.get("lr")
    if isinstance(lr, (int, float)) and not isinstance(lr, bool) and lr > 0:
        space["lr"] = [float(lr) * f for f in (1.0, 3.0, 10.0)]
    for name in LENGTH_FIELDS:
        v = values.get(name)
        if isinstance(v, (int, float)) and not isinstance(v, bool) and v > 0:
            space[name] = [v, type(v)(v * 2)]
            break
    return space


def space_for(config: Any, profile: str | None) -> dict[str, list[Any]]:
    """The method's own ``tuning_space[profile]``, else :func:`generic_space` of ``config``."""
    own = getattr(type(config), "tuning_space", {}) or {}
    if profile is not None and own.get(profile):
        return {k: list(v) for k, v in own[profile].items()}
    return generic_space(config)


# --- early stopping ---------------------------------------------------------------

class EarlyStop:
    """A :class:`~obliviate.removal.base.Budget` monitor: stop a trial when its targets are met.

    ``measure(model)`` should be cheap (subsampled sets). Checks are throttled so that measuring
    takes at most ``overhead`` of the trial's time. The best-scoring state seen is kept
    (:meth:`restore_best` puts it back when the trial ended somewhere worse), and a trial whose
    ``keep`` constraints are broken by more than ``abort_keep`` at ``patience`` checks in a row is
    stopped: a collapse, not the dip of a few points a fine-tune often shows at the start and recovers from.
    """

    def __init__(self, measure: Callable[[nn.Module], Mapping[str, float]], targets: Targets, *,
                 overhead: float = 0.25, abort_keep: float = 0.3, patience: int = 3) -> None:
        if not 0 < overhead <= 1:
            raise ConfigError(f"EarlyStop.overhead must be in (0, 1]; got {overhead!r}.")
        self.measure, self.targets, self.overhead, self.abort_keep = measure, targets, overhead, abort_keep
        self.patience = patience
        self._broken = 0
        self._t0 = time.perf_counter()
        self.spent_s = 0.0
        self.checks = 0
        self.best_score: tuple[float, float] | None = None
        self.best_steps = 0
        self._best_state: dict[str, Any] | None = None

    def _check(self, model: nn.Module) -> tuple[dict[str, float], tuple[float, float]]:
        t = time.perf_counter()
        was_training = model.training
        model.eval()
        measures = {k: float(v) for k, v in self.measure(model).items()}
        model.train(was_training)
        self.spent_s += time.perf_counter() - t
        self.checks += 1
        return measures, self.targets.score(measures)

    def __call__(self, model: nn.Module, steps: int) -> str | None:
        if self.spent_s > self.overhead * (time.perf_counter() - self._t0):
            return None  # measuring already took its share of this trial's time
        measures, score = self._check(model)
        if self.best_score is None or score < self.best_score:
            self.best_score, self.best_steps = score, steps
            self._best_state = copy.deepcopy(model.state_dict())
        if self.targets.met(measures):
            return "targets met"
        self._broken = self._broken + 1 if self.targets.parts(measures)[0] > self.abort_keep else 0
        if self._broken >= self.patience:
            return "constraints broken"
        return None

    def restore_best(self, model: nn.Module, steps: int) -> int:
        """Leave ``model`` at the best state seen (the final one if none was better); return its step."""
        if self._best_state is None:
            return steps
        _, final = self._check(model)
        if self.best_score is not None and self.best_score < final:
            model.load_state_dict(self._best_state)
            return self.best_steps
        return steps
