"""What every task has: one config base, one protocol, one way to score a method.

A *task* says what the model is, how it is trained, how its data splits into
forget / retain / test under a :class:`~obliviate.data.request.ForgetRequest`,
and which metrics and attacks apply. The one runner
(:func:`obliviate.bench.runner.run_bench`) drives every task the same way::

    task = get_task(cfg)                 # the task named by cfg.task
    methods = task.preflight()           # every problem in the config, at once
    for seed in cfg.seeds:
        run = task.seed_run(seed, cache=..., progress=...)  # split, original, retrained reference
        records += run.reference_records()                  # `original` and `retrain`
        records += run.run_methods(methods, budget, progress)

Adding a task is one module with a config (a :class:`RunConfig` with the task's
sections on top), a :class:`Task` and a :class:`SeedRun`, and one registration
in :mod:`obliviate.tasks`.
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, ClassVar

import torch
from pydantic import Field, field_validator

from obliviate.config import StrictModel
from obliviate.data.forget import check_request
from obliviate.data.request import ForgetRequest
from obliviate.engine.executor import check_executor
from obliviate.errors import ConfigError, ObliviateError
from obliviate.progress import Progress
from obliviate.registry import closest
from obliviate.removal.base import METHODS, Budget, RemovalMethod, methods_for
from obliviate.training.cache import ModelCache

log = logging.getLogger(__name__)

BASELINE = "original"
REFERENCE = "retrain"


class BudgetConfig(StrictModel):
    max_steps: int | None = None
    max_seconds: float | None = None


class RecipeFields(StrictModel):
    """Optimiser overrides shared by every task's recipe section (None keeps the task's default)."""

    epochs: int | None = None
    batch_size: int | None = None
    lr: float | None = None
    weight_decay: float | None = None
    schedule: str | None = None

    @field_validator("schedule")
    @classmethod
    def _schedule(cls, v: str | None) -> str | None:
        if v is not None and v not in ("cosine", "constant"):
            raise ValueError("schedule must be 'cosine' or 'constant'")
        return v

    def overrides(self) -> dict[str, Any]:
        return {k: v for k, v in self.model_dump().items() if v is not None}


class RunConfig(StrictModel):
    """The fields of every run, whatever the task; saved as ``config.json`` with its results.

    ``forget``: the forget request in ``KIND:ARGUMENT`` form (see
    :mod:`obliviate.data.request`) or as a dict of its fields; None takes the task's default.
    """

    task: str = "classification"
    forget: str | dict[str, Any] | None = None
    methods: list[str] = Field(default_factory=lambda: ["all"])
    method_config: dict[str, dict[str, Any]] = Field(default_factory=dict)
    seeds: list[int] = Field(default_factory=lambda: [0])
    budget: BudgetConfig = Field(default_factory=BudgetConfig)
    out: str = "runs/bench"
    cache_dir: str | None = None
    use_cache: bool = True
    progress: bool = True
    device: str = "cpu"
    #: torch CPU threads; None leaves torch's default. Small models run fastest on 1 thread,
    #: and more threads than free cores make every step slower (OpenMP spin-waiting).
    threads: int | None = Field(default=None, ge=1)
    #: choose each approximate method's settings and stopping point without the retrained model
    #: (oracle-free targets a user can compute; see :mod:`obliviate.tasks.tuning`). The selection's
    #: time counts in the method's ``wall_ratio``; rows carry ``tuned`` and ``tuning_s``.
    tune: bool = False
    #: where the seeds and methods run: ``serial`` (this process), ``process`` or ``ray``
    executor: str = "serial"
    #: an existing Ray cluster's address (``ray://host:10001`` or ``auto``); None starts a local one
    ray_address: str | None = None
    #: worker processes (process executor) or CPUs of the local Ray instance; None: all cores
    workers: int | None = Field(default=None, ge=1)

    @field_validator("seeds", mode="before")
    @classmethod
    def _seeds(cls, v: Any) -> Any:
        # ``seeds: 3`` means three seeds 0, 1, 2; a list names them.
        if isinstance(v, int):
            if v < 1:
                raise ValueError("seeds must be a positive count or a list of seeds")
            return list(range(v))
        return v

    @field_validator("methods", mode="before")
    @classmethod
    def _methods(cls, v: Any) -> Any:
        if isinstance(v, str):
            return [m.strip() for m in v.split(",") if m.strip()]
        return v

    def forget_request(self, default: str) -> ForgetRequest:
        """The run's forget request (``default`` when the config names none)."""
        return check_request(self.forget if self.forget is not None else default)


def resolve_methods(names: list[str], task: str) -> list[str]:
    """Expand ``all`` to the methods that support ``task`` and check every name, all problems at once.

    ``original`` and ``retrain`` are always reported, so naming them adds nothing.
    """
    available = methods_for(task)
    out: list[str] = []
    problems = []
    for n in names:
        if n == "all":
            out.extend(m for m in available if m != REFERENCE)
        elif n in (BASELINE, REFERENCE):
            continue
        elif n in available:
            out.append(n)
        elif n in METHODS:
            other = METHODS.get(n).tasks
            lm = "lm" in other
            where = "a language-model task (--task persons or --task tofu)" if lm else \
                "a classifier task (--task classification)"
            problems.append(f"method {n!r} does not work on {task} tasks (it supports "
                            f"{'language models' if lm else 'classifiers'} only); run it in {where}. "
                            f"Available here: {', '.join(available)}.")
        else:
            hint = closest(n, available)
            problems.append(f"unknown method {n!r}" + (f"; did you mean {hint!r}?" if hint else "")
                            + f" Available: {', '.join(available)}.")
    if problems:
        raise ConfigError("Invalid --methods:", problems)
    if not out and not any(n in (BASELINE, REFERENCE) for n in names):
        raise ConfigError("No method selected; pass --methods all or a comma-separated list.")
    return list(dict.fromkeys(out))


def collect(*checks: Any) -> list[str]:
    """Run each check, collecting the problems of every typed error instead of stopping at the first."""
    problems: list[str] = []
    for check in checks:
        try:
            check()
        except ObliviateError as exc:
            problems.extend(getattr(exc, "problems", None) or [str(exc)])
    return problems


@dataclass
class BenchResult:
    """The result of any task's run: records (one per method and seed, plus ``original`` and ``retrain``) and run metadata."""

    config: dict[str, Any]
    records: list[dict[str, Any]]
    meta: dict[str, Any] = field(default_factory=dict)

    def methods(self) -> list[str]:
        return list(dict.fromkeys(r["method"] for r in self.records))

    @property
    def task(self) -> str:
        return str(self.meta.get("task", self.config.get("task", "classification")))


class SeedRun(ABC):
    """One seed of one task: the data split by the forget request, the original and the reference."""

    #: what this seed's run records about itself (sizes, training times, cache hits)
    meta: dict[str, Any]

    @abstractmethod
    def reference_records(self) -> list[dict[str, Any]]:
        """The records of the untouched ``original`` and of the exact ``retrain`` reference."""

    @abstractmethod
    def run_methods(self, methods: list[str], budget: Budget, progress: Progress) -> list[dict[str, Any]]:
        """One record per method: unlearn a copy of the original, then score it against the reference."""


class Task(ABC):
    """A kind of model and data: builds its seed runs from a validated config."""

    name: ClassVar[str]
    #: the kind of methods that apply ("classification" or "lm"; see RemovalMethod.tasks)
    method_kind: ClassVar[str]
    Config: ClassVar[type[RunConfig]]
    description: ClassVar[str] = ""
    #: the forget request a run without ``forget`` gets
    default_forget: ClassVar[str] = "random:0.1"

    def __init__(self, config: RunConfig) -> None:
        if not isinstance(config, self.Config):
            raise ConfigError(f"task {self.name!r} expects a {self.Config.__name__}; got {type(config).__name__}.")
        self.config = config

    @property
    def request(self) -> ForgetRequest:
        return self.config.forget_request(self.default_forget)

    def method(self, name: str) -> RemovalMethod:
        """The method ``name`` with its defaults for this task and the run's overrides."""
        return METHODS.get(name).for_task(self.method_profile(), **self.config.method_config.get(name, {}))

    def method_profile(self) -> str | None:
        """Which of a method's per-task defaults apply (``MethodConfig.task_defaults``; None: the paper's)."""
        return self.method_kind

    def preflight(self) -> list[str]:
        """Check every name and setting before any work starts; raise once with all problems."""
        cfg = self.config
        methods: list[str] = []
        problems = collect(lambda: cfg.forget_request(self.default_forget), lambda: Budget(**cfg.budget.model_dump()))
        try:
            methods = resolve_methods(cfg.methods, self.method_kind)
        except ConfigError as exc:
            problems.extend(exc.problems or [str(exc)])
        for name in cfg.method_config:
            if name not in METHODS:
                hint = closest(name, METHODS.names())
                problems.append(f"method_config names unknown method {name!r}"
                                + (f"; did you mean {hint!r}?" if hint else ""))
        # every method that will run, and every method_config entry (even for a method left out), is checked
        checked = dict.fromkeys([REFERENCE, *methods, *(n for n in cfg.method_config if n in METHODS)])
        problems += collect(*(lambda n=n: self.method(n) for n in checked))
        problems += self.check()
        problems += check_executor(cfg.executor, workers=cfg.workers, address=cfg.ray_address)
        if problems:
            raise ConfigError(f"Invalid {self.noun} configuration:", problems)
        return methods

    noun: ClassVar[str] = "bench"

    def check(self) -> list[str]:
        """The task's own problems (data, model, recipe); empty when all is well."""
        return []

    def setup(self) -> None:
        """Process-wide settings of the run (torch threads)."""
        if self.config.threads is not None:
            torch.set_num_threads(self.config.threads)

    def cache(self) -> ModelCache:
        return ModelCache(self.config.cache_dir, enabled=self.config.use_cache)

    def run_meta(self) -> dict[str, Any]:
        """What the run records about itself before its first seed."""
        return {"task": self.name, "forget": self.request.to_dict()}

    @abstractmethod
    def seed_run(self, seed: int, *, cache: ModelCache, progress: Progress) -> SeedRun:
        """Split the data for ``seed``, train (or load) the original and the reference."""
