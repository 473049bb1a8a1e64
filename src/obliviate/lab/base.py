"""What every lab experiment is: a config dataclass, ``run(config) -> ExperimentResult``, one registration.

An experiment measures one mismatch between what unlearning does and what is hoped of it
(Cooper et al.'s list, plus the forging argument of Thudi et al.). It returns numbers, one
sentence written from those numbers, a figure, and the kind of every model it compared;
the CLI and :mod:`obliviate.lab.render` only wire and render it.
"""

from __future__ import annotations

import dataclasses
import io
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from obliviate.errors import ConfigError
from obliviate.registry import Registry
from obliviate.removal.base import validate_config

#: what a compared model or run is: exactly as if the data were never used, an approximation
#: of that, an output-side control, or the untouched model trained with the data.
KINDS = ("exact", "approximate", "suppression", "none")


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


@dataclass
class ExperimentResult:
    """One experiment's outcome.

    ``measured`` holds numbers, or named groups of numbers one level deep (one group per
    compared model). ``kind`` maps each compared model or run to one of :data:`KINDS`.
    ``figure`` is PNG bytes or the name of a PNG file. ``rows`` is an optional table (each row
    with its ``kind``); ``details`` holds non-numeric context (chosen classes, names).
    """

    name: str
    claim: str
    measured: dict[str, Any]
    figure: bytes | str | None
    kind: dict[str, str]
    seconds: float
    config: dict[str, Any] = field(default_factory=dict)
    rows: list[dict[str, Any]] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        problems = []
        if not self.claim.strip():
            problems.append("claim is empty; write one sentence from the measured numbers.")
        for key, value in self.measured.items():
            if isinstance(value, dict):
                bad = [k for k, v in value.items() if not _is_number(v)]
                if bad:
                    problems.append(f"measured[{key!r}] holds non-numbers at {bad}; move them to details.")
            elif not _is_number(value):
                problems.append(f"measured[{key!r}] is {type(value).__name__}, not a number; move it to details.")
        for what, k in self.kind.items():
            if k not in KINDS:
                problems.append(f"kind[{what!r}] is {k!r}; use one of {', '.join(KINDS)}.")
        for i, row in enumerate(self.rows):
            if row.get("kind") not in KINDS:
                problems.append(f"rows[{i}] has kind {row.get('kind')!r}; every row says one of {', '.join(KINDS)}.")
        if problems:
            raise ConfigError(f"Invalid result of experiment {self.name!r}:", problems)

    def to_dict(self, *, figure: str | None = None) -> dict[str, Any]:
        """JSON-ready (non-finite numbers become null); ``figure`` names the written PNG file."""
        fig = figure if figure is not None else (self.figure if isinstance(self.figure, str) else None)
        return _clean({"name": self.name, "claim": self.claim, "kind": self.kind, "measured": self.measured,
                       "rows": self.rows, "details": self.details, "figure": fig, "seconds": self.seconds,
                       "config": self.config})


def _clean(obj: Any) -> Any:
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {str(k): _clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_clean(v) for v in obj]
    if hasattr(obj, "item") and callable(obj.item):  # numpy scalars
        return _clean(obj.item())
    return obj


@dataclass(frozen=True)
class Experiment:
    """A registered experiment: its config class, its run function and its tiny size."""

    name: str
    title: str
    #: which mismatch it makes concrete, in a few words
    mismatch: str
    Config: type
    run: Callable[[Any], ExperimentResult]
    #: config overrides that make it run in seconds (tests, ``--quick``)
    quick: dict[str, Any] = field(default_factory=dict)

    def config(self, overrides: dict[str, Any] | None = None, *, quick: bool = False) -> Any:
        """The validated config: defaults, then the quick size if asked, then ``overrides``."""
        values = {**(self.quick if quick else {}), **(overrides or {})}
        config = validate_config(self.Config, values, owner=f"experiment {self.name!r}")
        check_config(config, self.name)
        return config

    def __call__(self, overrides: dict[str, Any] | None = None, *, quick: bool = False) -> ExperimentResult:
        return self.run(self.config(overrides, quick=quick))


EXPERIMENTS: Registry[Experiment] = Registry("experiment")


def register(experiment: Experiment) -> Experiment:
    """Add ``experiment`` under its name (call once, at the bottom of its module)."""
    EXPERIMENTS.register(experiment.name, experiment)
    return experiment


def config_dict(config: Any) -> dict[str, Any]:
    return dataclasses.asdict(config)


def check_config(config: Any, name: str) -> None:
    """Raise one :class:`ConfigError` listing every problem of ``config.problems()`` (each run calls this first).

    Configs list their problems instead of raising in ``__post_init__`` so that the user sees
    them once, not wrapped in pydantic's validation error.
    """
    problems = config.problems() if hasattr(config, "problems") else []
    if problems:
        raise ConfigError(f"Invalid configuration for experiment {name!r}:", problems)


def to_png(fig: Any) -> bytes:
    """A matplotlib figure (on an Agg canvas) as PNG bytes."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    return buf.getvalue()


def new_figure(ncols: int, *, width: float = 4.6, height: float = 3.8) -> tuple[Any, list[Any]]:
    """A figure with ``ncols`` axes on its own Agg canvas (no pyplot state, safe in threads)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width * ncols, height))
    FigureCanvasAgg(fig)
    axes = [fig.add_subplot(1, ncols, i + 1) for i in range(ncols)]
    return fig, axes
