"""The guard protocol: a guard looks at text in context and returns a :class:`Decision`.

A guard only *detects* (allow, block, or rewrite the prompt); what happens on a
violation (refuse with a message, redact the span, regenerate) is the
:class:`OnFail` of the pipeline entry that holds the guard, as Presidio keeps
recognisers apart from anonymisers. Guards are registered by name in
:data:`GUARDS`, each in its own module with a config dataclass of documented
defaults and one registration line.

Everything here is *suppression*: a guard changes what the system outputs, never
what a model's weights hold.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

from obliviate.config import build_dataclass
from obliviate.errors import ConfigError, NotFittedError
from obliviate.registry import Registry

__all__ = ["Action", "Stage", "Decision", "GuardContext", "Guard", "OnFail", "GuardSpec", "GUARDS",
           "make_config", "KIND"]

log = logging.getLogger(__name__)

#: the label of every result a guard produces (never "removal" or "forgetting").
KIND = "suppression"

Action = Literal["allow", "block", "redact", "rewrite"]
Stage = Literal["input", "output"]
_ACTIONS = ("allow", "block", "redact", "rewrite")


@dataclass(frozen=True)
class Decision:
    """What one guard decided about one text.

    action: ``allow``; ``block`` (a violation: the pipeline's on-fail action decides
    what follows); ``redact`` (the pipeline replaced ``span``); ``rewrite`` (an input
    guard replaced the prompt context with ``replacement``). ``span`` is a
    ``(start, end)`` character range in the checked text; ``score`` the guard's
    confidence in [0, 1] (1 for rule matches); ``elapsed_ms`` is filled in by the
    pipeline; ``stage`` is ``input`` or ``output``.
    """

    action: Action
    guard: str
    reason: str = ""
    span: tuple[int, int] | None = None
    score: float = 0.0
    matched: str | None = None
    replacement: str | None = None
    elapsed_ms: float = 0.0
    stage: str = ""
    on_fail: str | None = None

    def __post_init__(self) -> None:
        if self.action not in _ACTIONS:
            raise ConfigError(f"The 'action' of a Decision must be one of {', '.join(_ACTIONS)}; "
                              f"got {self.action!r} instead.")

    @property
    def violation(self) -> bool:
        return self.action in ("block", "redact")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class GuardContext:
    """What a guard may look at besides the text it checks.

    prompt: the user's prompt (as received); output: the output so far (empty at the
    input stage); stage: which side is being checked; protected: the compiled forget
    request (:class:`~obliviate.suppression.protect.ProtectedSet`), or None.
    """

    prompt: str
    output: str = ""
    stage: Stage = "input"
    protected: Any = None
    extra: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class OnFail:
    """What the pipeline does when a guard blocks.

    action: ``refuse`` (answer ``message`` instead), ``redact`` (replace the matched
    span by ``redaction`` and go on) or ``regenerate`` (generate again, up to ``k``
    more times, then refuse). A guard that blocks without a span cannot be redacted
    and refuses.
    """

    action: Literal["refuse", "redact", "regenerate"] = "refuse"
    k: int = 2
    message: str = "I'm sorry, I can't share that."
    redaction: str = "[REDACTED]"

    def __post_init__(self) -> None:
        problems = []
        if self.action not in ("refuse", "redact", "regenerate"):
            problems.append(f"The 'action' parameter of OnFail must be 'refuse', 'redact' or 'regenerate'; "
                            f"got {self.action!r} instead.")
        if not isinstance(self.k, int) or isinstance(self.k, bool) or self.k < 0:
            problems.append(f"The 'k' parameter of OnFail must be an int >= 0; got {self.k!r} instead.")
        if problems:
            raise ConfigError("Invalid on-fail action:", problems)


def make_config(config_cls: type, overrides: Mapping[str, Any] | None, *, owner: str) -> Any:
    """``config_cls(**overrides)``, naming every unknown key and its nearest valid one."""
    return build_dataclass(config_cls, overrides, owner=owner)


class Guard:
    """Base class of guards: a constructor that stores the config, ``fit``, ``check``.

    Subclasses set ``name``, ``summary``, ``stages`` (where the guard may run),
    ``scored`` (whether ``score`` is a useful continuous signal, for ROC curves),
    ``Config`` (a dataclass of documented defaults), and implement ``_fit`` and
    ``check``. ``fit(protected)`` compiles the forget request's protected strings,
    facts and examples into the guard's matcher and returns ``self``; learned state
    ends in ``_``.
    """

    name: ClassVar[str] = ""
    summary: ClassVar[str] = ""
    stages: ClassVar[tuple[str, ...]] = ("input", "output")
    scored: ClassVar[bool] = False
    library: ClassVar[str] = ""
    Config: ClassVar[type]

    def __init__(self, config: Any = None, **overrides: Any) -> None:
        if config is not None and overrides:
            raise ConfigError(f"Guard {self.name!r}: pass either a config object or keyword overrides, not both.")
        if config is None or isinstance(config, Mapping):
            config = make_config(self.Config, dict(config or {}) | overrides, owner=f"guard {self.name!r}")
        elif not isinstance(config, self.Config):
            raise ConfigError(f"Guard {self.name!r} takes a {self.Config.__name__}; got {type(config).__name__}.")
        self.config = config
        self.protected_: Any = None

    def fit(self, protected: Any) -> Guard:
        """Compile ``protected`` (a ProtectedSet) into this guard's matcher; returns ``self``."""
        from obliviate.suppression.protect import ProtectedSet

        if not isinstance(protected, ProtectedSet):
            raise ConfigError(f"Guard {self.name!r}.fit takes a ProtectedSet (see "
                              f"obliviate.suppression.compile_request); got {type(protected).__name__}.")
        self.protected_ = protected
        self._fit(protected)
        return self

    def _fit(self, protected: Any) -> None:  # pragma: no cover - trivial default
        pass

    def _require_fitted(self) -> Any:
        if self.protected_ is None:
            raise NotFittedError(f"Guard {self.name!r} has not been fitted; call guard.fit(protected) first "
                                 "(GuardedGenerator does this when given protected=).")
        return self.protected_

    def check(self, text: str, ctx: GuardContext) -> Decision:
        """The decision on ``text`` (the prompt at the input stage, the output so far at the output stage)."""
        raise NotImplementedError

    def score(self, text: str, ctx: GuardContext) -> float:
        """A violation score in [0, 1]; by default the score of :meth:`check`."""
        return self.check(text, ctx).score

    # helpers for subclasses
    def allow(self, reason: str = "", score: float = 0.0) -> Decision:
        return Decision("allow", self.name, reason, score=score)

    def block(self, reason: str, *, span: tuple[int, int] | None, score: float = 1.0,
              matched: str | None = None) -> Decision:
        return Decision("block", self.name, reason, span=span, score=score, matched=matched)

    def describe(self) -> dict[str, Any]:
        return {"guard": self.name, "config": dataclasses.asdict(self.config)}


#: name -> guard class; one registration line per guard module.
GUARDS: Registry[type[Guard]] = Registry("guard")


@dataclass
class GuardSpec:
    """One pipeline entry: a (fitted or unfitted) guard, the stage it runs at, its on-fail action."""

    guard: Guard
    stage: Stage = "output"
    on_fail: OnFail = field(default_factory=OnFail)

    def __post_init__(self) -> None:
        if not isinstance(self.guard, Guard):
            raise ConfigError(f"GuardSpec.guard must be a Guard; got {type(self.guard).__name__}.")
        if self.stage not in self.guard.stages:
            raise ConfigError(f"Guard {self.guard.name!r} cannot run at the {self.stage!r} stage; "
                              f"it runs at: {', '.join(self.guard.stages)}.")

    @classmethod
    def build(cls, name: str, *, stage: Stage | None = None, on_fail: OnFail | Mapping[str, Any] | None = None,
              **config: Any) -> GuardSpec:
        """A spec from a registered guard's name (``GuardSpec.build("exact", stage="output")``)."""
        guard_cls = GUARDS.get(name)
        fail = on_fail if isinstance(on_fail, OnFail) else make_config(OnFail, on_fail, owner="OnFail")
        return cls(guard_cls(**config), stage or guard_cls.stages[-1], fail)
