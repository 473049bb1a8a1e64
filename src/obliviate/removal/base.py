"""The removal protocol every method follows, and the method registry.

A method gets the original model, an :class:`UnlearningTask` (forget data,
retain data, the original recipe, a seed, the objective) and a
:class:`Budget`, and returns ``(unlearned_model, RemovalRecord)``. The
original model is never modified: methods work on a copy.

Adding a method: one module with a config dataclass (documented defaults, the
paper), a subclass of :class:`RemovalMethod`, and ``@register``.
"""

from __future__ import annotations

import copy
import dataclasses
import logging
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

import torch
from torch import nn

from obliviate.config import build_dataclass
from obliviate.errors import ConfigError
from obliviate.progress import NullProgress, Progress
from obliviate.registry import Registry
from obliviate.removal.objective import Objective
from obliviate.training.recipe import Recipe, make_optimizer
from obliviate.training.trainer import seeded_generator

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Budget:
    """Caps on a method's work. ``None`` means no cap beyond the method's own config.

    ``max_steps`` counts optimiser steps; ``max_seconds`` is wall time; both
    stop a method early and the record says which one did.
    """

    max_steps: int | None = None
    max_seconds: float | None = None
    #: early stopping: every ``monitor_every`` steps the method's working model is passed to
    #: ``monitor(model, steps)``; a returned string stops the method and becomes ``stopped_by``
    #: (the oracle-free selection of :mod:`obliviate.tasks.tuning` stops on its targets this way).
    monitor: Callable[[nn.Module, int], str | None] | None = None
    monitor_every: int = 0

    def __post_init__(self) -> None:
        if self.max_steps is not None and self.max_steps < 1:
            raise ConfigError(f"Budget.max_steps must be >= 1 or None; got {self.max_steps}.")
        if self.max_seconds is not None and not self.max_seconds > 0:
            raise ConfigError(f"Budget.max_seconds must be > 0 or None; got {self.max_seconds}.")
        if self.monitor is not None and self.monitor_every < 1:
            raise ConfigError(f"Budget.monitor_every must be >= 1 with a monitor; got {self.monitor_every}.")


@dataclass
class UnlearningTask:
    """Everything a method may use besides the model itself.

    ``fit_from_scratch`` trains a fresh model on given data with the original
    recipe and returns ``(model, wall_seconds)``; exact methods use it.
    """

    forget: Any
    retain: Any
    objective: Objective
    recipe: Recipe
    seed: int = 0
    device: str | torch.device = "cpu"
    fit_from_scratch: Callable[[Any], tuple[nn.Module, float]] | None = None
    extras: dict[str, Any] = field(default_factory=dict)


@dataclass
class RemovalRecord:
    """What a method did: for reports and for the audit trail."""

    method: str
    kind: str
    wall_s: float
    steps: int
    stopped_by: str
    config: dict[str, Any]
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


class StepBudget:
    """Counts steps against a :class:`Budget`; methods ask ``ok()`` before each step."""

    def __init__(self, budget: Budget, model: nn.Module | None = None) -> None:
        self.budget = budget
        self.model = model  # the working model a budget's monitor looks at
        self.steps = 0
        self.stopped_by = "completed"
        self._t0 = time.perf_counter()
        self._monitored_at = 0

    def ok(self) -> bool:
        if self.budget.max_steps is not None and self.steps >= self.budget.max_steps:
            self.stopped_by = "max_steps"
            return False
        if self.budget.max_seconds is not None and time.perf_counter() - self._t0 >= self.budget.max_seconds:
            self.stopped_by = "max_seconds"
            return False
        b = self.budget
        if (b.monitor is not None and self.model is not None and self.steps > 0
                and self.steps - self._monitored_at >= b.monitor_every):
            self._monitored_at = self.steps
            was_training = self.model.training
            reason = b.monitor(self.model, self.steps)
            self.model.train(was_training)
            if reason:
                self.stopped_by = str(reason)
                return False
        return True

    def step(self) -> None:
        self.steps += 1


@dataclass
class MethodConfig:
    """Base of every method config: keep fields serialisable and documented.

    A method's defaults are its paper's. ``task_defaults`` holds the settings it
    takes on a given kind of task instead (e.g. ``{"lm": {...}}`` for the small
    built-in language model), each with the reason in the method's module; a
    run's own overrides win over both.
    """

    task_defaults: ClassVar[dict[str, dict[str, Any]]] = {}
    #: the oracle-free selection's search space per task profile (``{"classification": {"lr": [...],
    #: "epochs": [...], ...}}``), candidates ordered gentlest first; see :mod:`obliviate.tasks.tuning`
    tuning_space: ClassVar[dict[str, dict[str, list[Any]]]] = {}

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def validate_config(config_cls: type, overrides: dict[str, Any], *, owner: str) -> Any:
    """Build ``config_cls(**overrides)``, naming every unknown key and its nearest valid one."""
    return build_dataclass(config_cls, overrides, owner=owner)


class RemovalMethod(ABC):
    """Base class of removal methods. Subclasses set the class attributes and ``_run``."""

    name: ClassVar[str]
    #: exact (the model's distribution is retraining's), approximate (weights moved toward it, no
    #: guarantee), or suppression (a fine-tune that only steers what the model says, e.g. toward
    #: refusals: the weights still hold the information)
    kind: ClassVar[Literal["exact", "approximate", "suppression"]] = "approximate"
    summary: ClassVar[str] = ""
    paper: ClassVar[str] = ""
    Config: ClassVar[type[MethodConfig]] = MethodConfig
    #: which kinds of task the method runs on ("classification", "lm"); the
    #: bench's ``--methods all`` picks those that support its task.
    tasks: ClassVar[tuple[str, ...]] = ("classification",)

    def __init__(self, config: MethodConfig | None = None, **overrides: Any) -> None:
        if config is not None and overrides:
            config = dataclasses.replace(config, **overrides)
        elif config is None:
            config = validate_config(self.Config, overrides, owner=f"method {self.name!r}")
        if not isinstance(config, self.Config):
            raise ConfigError(f"method {self.name!r} expects a {self.Config.__name__}; got {type(config).__name__}.")
        self.config = config

    @classmethod
    def for_task(cls, profile: str | None, **overrides: Any) -> RemovalMethod:
        """The method with its defaults for ``profile`` (a key of ``Config.task_defaults``) under ``overrides``."""
        values = dict(cls.Config.task_defaults.get(profile, {})) if profile else {}
        values.update(overrides)
        return cls(**values)

    def unlearn(self, model: nn.Module, task: UnlearningTask, *, budget: Budget | None = None,
                progress: Progress | None = None) -> tuple[nn.Module, RemovalRecord]:
        """Return an unlearned copy of ``model`` and the record of what was done."""
        work = copy.deepcopy(model).to(task.device)
        ctl = StepBudget(budget or Budget(), work)
        t0 = time.perf_counter()
        out, extra = self._run(work, model, task, ctl, progress or NullProgress())
        wall = time.perf_counter() - t0
        out.eval()
        wall = float(extra.pop("wall_s_override", wall))
        record = RemovalRecord(method=self.name, kind=self.kind, wall_s=wall, steps=ctl.steps,
                               stopped_by=ctl.stopped_by, config=self.config.to_dict(), extra=extra)
        return out, record

    @abstractmethod
    def _run(self, model: nn.Module, original: nn.Module, task: UnlearningTask, ctl: StepBudget,
             progress: Progress) -> tuple[nn.Module, dict[str, Any]]:
        """Unlearn in ``model`` (a copy of ``original``); return it and extra record fields."""


METHODS: Registry[type[RemovalMethod]] = Registry("method")


def register(cls: type[RemovalMethod]) -> type[RemovalMethod]:
    """Class decorator: add a method to the registry under ``cls.name``."""
    METHODS.register(cls.name, cls)
    return cls


def get_method(name: str, **overrides: Any) -> RemovalMethod:
    return METHODS.get(name)(**overrides)


def methods_for(task: str) -> list[str]:
    """Names of registered methods that support ``task``."""
    return [n for n, cls in METHODS.items() if task in cls.tasks]


# --- helpers shared by gradient-based methods --------------------------------

def optimizer_for(model: nn.Module, cfg: Any) -> torch.optim.Optimizer:
    return make_optimizer(model.parameters(), cfg.optimizer, cfg.lr, momentum=getattr(cfg, "momentum", 0.9),
                          weight_decay=getattr(cfg, "weight_decay", 0.0))


def planned_steps(task: UnlearningTask, data: Any, epochs: float, batch_size: int) -> int:
    """How many steps :func:`epoch_loop` will take over ``data`` (before any budget cap)."""
    per_epoch = max(1, (task.objective.size(data) + batch_size - 1) // batch_size)
    return max(1, int(round(epochs * per_epoch)))


def scheduler_for(opt: torch.optim.Optimizer, cfg: Any, total_steps: int) -> Any:
    """The learning-rate schedule a config asks for (``schedule``: constant or cosine)."""
    from obliviate.training.recipe import make_scheduler

    return make_scheduler(opt, getattr(cfg, "schedule", "constant"), total_steps)


def epoch_loop(task: UnlearningTask, data: Any, epochs: float, batch_size: int, ctl: StepBudget,
               progress: Progress, description: str, *, seed_tag: int) -> Iterator[Any]:
    """Yield minibatches of ``data`` for ``epochs`` passes (fractional allowed), honouring the budget."""
    total = planned_steps(task, data, epochs, batch_size)
    gen = seeded_generator(task.seed, seed_tag)
    done = 0
    with progress.task(description, total=total) as bar:
        while done < total:
            for batch in task.objective.batches(data, batch_size, gen):
                if done >= total or not ctl.ok():
                    return
                yield batch
                ctl.step()
                done += 1
                bar.advance(1)
            if not ctl.ok():
                return


def endless(task: UnlearningTask, data: Any, batch_size: int, *, seed_tag: int) -> Iterator[Any]:
    """A second stream of minibatches (e.g. retain data alongside forget data), cycling forever."""
    gen = seeded_generator(task.seed, seed_tag)
    while True:
        yield from task.objective.batches(data, batch_size, gen)
