"""The attack interface: signals in (pure arrays), a result dict out, and a two-sided verdict.

An attack is one module: a config dataclass with documented defaults and the paper it comes
from, a subclass of :class:`Attack`, and one registration line (``@register``). The audit
orchestration (:mod:`obliviate.bench.audit`) computes the :class:`AttackInput` of each audited
method (model I/O, cached) and only calls ``run`` and ``verdict``; it never branches on names.

Verdicts look both ways: a score as far *below* chance as another is above it is the same
amount of evidence (an attacker flips the sign), so every threshold is on the distance from
the chance or reference value, not on one side of it.
"""

from __future__ import annotations

import dataclasses
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, ClassVar

import numpy as np

from obliviate.errors import ConfigError
from obliviate.registry import Registry, closest

__all__ = [
    "ATTACKS",
    "Attack",
    "AttackConfig",
    "AttackInput",
    "GroupScores",
    "RelearnAccuracies",
    "Thresholds",
    "attack_names",
    "register",
]

#: tolerance of the two-sided comparisons (0.45 is as far from 0.5 as 0.55 is)
_EPS = 1e-12


@dataclass(frozen=True)
class Thresholds:
    """When the weak attack *passes* a method and when a strong attack *catches* it (both ways)."""

    #: weak passes: the run's loss-attack AUC (forget vs test) within this of retrain's (above or below)
    weak_auc_margin: float = 0.05
    #: LiRA catches: online AUC at least this far from 0.5 as 0.55 is, on either side ...
    lira_auc: float = 0.55
    #: ... or TPR at 1% FPR at least this, for the scores or their negation (5x what chance gives)
    lira_tpr_1pct: float = 0.05
    #: U-LiRA catches: mean per-example accuracy at least this far from 0.5 as this is (0.5 is ideal)
    ulira_accuracy: float = 0.55
    #: challenge catches: forget quality F below this share of retrain's own F (retrain's F
    #: is what an exact method reaches with N models; finite samples keep it below 1)
    challenge_f_ratio: float = 0.5
    #: relearn catches: accuracy on the held-back forget half after relearning at least
    #: this much above *or below* the never-exposed control's
    relearn_after_gap: float = 0.05

    def describe(self) -> list[str]:
        return [ATTACKS.get(name).threshold_text(self) for name in attack_names()]


@dataclass(frozen=True)
class AttackConfig:
    """Base of every attack config: serialisable, documented defaults."""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# --------------------------------------------------------------------------- signals (arrays only)
@dataclass(frozen=True, eq=False)
class GroupScores:
    """What the attacks read from one group of N models (logit-scaled confidences ``log p_y - log(1 - p_y)``)."""

    forget: np.ndarray        # (N, n_forget)
    test: np.ndarray          # (N, n_test_eval) on the seeded test sample
    forget_acc: np.ndarray    # (N,)
    retain_acc: np.ndarray    # (N,) on the seeded retain sample
    test_acc: np.ndarray      # (N,) on the test sample
    retain: np.ndarray | None = None  # (N, n_retain_eval): the SVC attack's shadow members

    @property
    def n_models(self) -> int:
        return int(self.forget.shape[0])


@dataclass(frozen=True, eq=False)
class RelearnAccuracies:
    """Accuracy on the held-back forget part B before/after relearning on part A, per model."""

    before: np.ndarray            # (k,) the audited group
    after: np.ndarray
    control_before: np.ndarray    # (k,) the retrained (never-exposed) control
    control_after: np.ndarray
    steps: int
    lr: float
    relearn_examples: int
    held_back_examples: int


@dataclass(frozen=True, eq=False)
class AttackInput:
    """Everything an attack of one audited method may read; all arrays, no models."""

    method: str
    seed: int
    run_row: dict[str, Any] = field(default_factory=dict)  # the run's results.json record for this seed
    target: GroupScores | None = None      # the method's replicas U (None: weak-only audit)
    trained: GroupScores | None = None     # models trained with the forget set (LiRA's "in" side)
    retrained: GroupScores | None = None   # models trained without it (the reference R)
    relearn: RelearnAccuracies | None = None


# --------------------------------------------------------------------------- the interface
class Attack(ABC):
    """Base class of audit attacks. Subclasses set the class attributes, ``run`` and ``verdict``."""

    name: ClassVar[str]
    title: ClassVar[str] = ""
    paper: ClassVar[str] = ""
    Config: ClassVar[type[AttackConfig]] = AttackConfig
    #: position in the default attack list and in every report (registry names are sorted)
    order: ClassVar[int] = 100
    #: "weak" attacks decide whether a method *passes*; "strong" ones whether they *catch* it
    strength: ClassVar[str] = "strong"
    #: signals the orchestration must compute: "replicas" (groups of models), "relearn" (fine-tuning)
    needs: ClassVar[frozenset[str]] = frozenset({"replicas"})
    #: config field -> AuditSettings field it is read from (the CLI's flags)
    settings_fields: ClassVar[dict[str, str]] = {}

    def __init__(self, config: AttackConfig | None = None, **overrides: Any) -> None:
        if config is None:
            valid = [f.name for f in dataclasses.fields(self.Config)]
            problems = []
            for k in overrides:
                if k not in valid:
                    hint = closest(k, valid)
                    problems.append(f"{k!r} is not a parameter of attack {self.name!r}"
                                    + (f"; did you mean {hint!r}?" if hint else "")
                                    + f" Valid: {', '.join(valid) or 'none'}.")
            if problems:
                raise ConfigError(f"Invalid configuration for attack {self.name!r}:", problems)
            config = self.Config(**overrides)
        if not isinstance(config, self.Config):
            raise ConfigError(f"attack {self.name!r} expects a {self.Config.__name__}; got {type(config).__name__}.")
        self.config = config

    @classmethod
    def from_settings(cls, settings: Any) -> Attack:
        """Build the attack with the config fields the audit settings carry (``settings_fields``)."""
        return cls(**{f: getattr(settings, s) for f, s in cls.settings_fields.items()})

    @abstractmethod
    def run(self, inputs: AttackInput) -> dict[str, Any]:
        """The attack's numbers for one method (the method's ``audit.json`` entry under ``name``)."""

    @abstractmethod
    def verdict(self, result: dict[str, Any], reference: dict[str, Any] | None, th: Thresholds) -> str | None:
        """Strong attacks: a phrase saying how the method is caught, or None. Weak attacks: see subclasses.

        ``reference`` is the retrain oracle's result of the same attack (None where there is none).
        """

    @staticmethod
    @abstractmethod
    def threshold_text(th: Thresholds) -> str:
        """One sentence: when this attack passes or catches a method."""

    def passes(self, result: dict[str, Any], reference: dict[str, Any] | None, th: Thresholds) -> bool | None:
        """Weak attacks: whether the method passes (None: not enough numbers to say). Strong: not caught."""
        return self.verdict(result, reference, th) is None

    def caveat(self, result: dict[str, Any]) -> str | None:
        """A sentence when this attack's own number cannot be trusted for this method (else None)."""
        return None


ATTACKS: Registry[type[Attack]] = Registry("attack")


def register(cls: type[Attack]) -> type[Attack]:
    """Class decorator: add an attack to the registry under ``cls.name``."""
    ATTACKS.register(cls.name, cls)
    return cls


def attack_names(*, strength: str | None = None) -> list[str]:
    """Registered attack names in report order (optionally only the weak or strong ones)."""
    names = sorted(ATTACKS.names(), key=lambda n: (ATTACKS.get(n).order, n))
    return [n for n in names if strength is None or ATTACKS.get(n).strength == strength]


def parse_attacks(spec: str | Sequence[str]) -> tuple[str, ...]:
    """``"population,lira"`` or a list -> registered names; ``all`` expands. Unknown names get the nearest one."""
    names = [s.strip() for s in spec.split(",")] if isinstance(spec, str) else [str(s).strip() for s in spec]
    names = [n for n in names if n]
    valid = attack_names()
    problems = []
    out: list[str] = []
    for n in names:
        if n == "all":
            out.extend(valid)
        elif n in ATTACKS:
            out.append(n)
        else:
            hint = closest(n, valid)
            problems.append(f"unknown attack {n!r}" + (f"; did you mean {hint!r}?" if hint else "")
                            + f" Valid attacks: {', '.join(valid)}.")
    if problems:
        raise ConfigError("Invalid --attacks:", problems)
    if not out:
        raise ConfigError(f"No attack selected; pass --attacks with some of {', '.join(valid)} (or all).")
    return tuple(dict.fromkeys(out))


def far_from(value: float, centre: float, margin: float) -> bool:
    """Two-sided: ``|value - centre| >= margin`` (with a rounding tolerance)."""
    return bool(abs(float(value) - centre) >= margin - _EPS)
