"""The configuration of a SISA ensemble (Bourtoule et al. 2021, "Machine Unlearning")."""

from __future__ import annotations

import numbers
from dataclasses import dataclass, field
from typing import Any

from obliviate.engine.sisa.aggregate import AGGREGATORS
from obliviate.engine.sisa.placement import PLACEMENTS
from obliviate.errors import ConfigError
from obliviate.models.zoo import ModelSpec
from obliviate.training.recipe import Recipe


@dataclass(frozen=True)
class SisaConfig:
    """Sharded, Isolated, Sliced, Aggregated training.

    Attributes:
        shards: S, the number of disjoint shards; one model per shard, nothing shared.
        slices: R, cumulative slices per shard; a checkpoint is kept after each.
        placement: how examples go to shards: ``uniform`` (seeded random, equal sizes) or
            ``subject`` (all examples of one subject in one shard, shards balanced).
        aggregation: how shard models vote: ``vote`` (majority), ``mean`` (mean of softmax),
            ``weighted`` (mean of softmax weighted by shard size).
        model: the architecture of every shard model.
        recipe: the training recipe; ``recipe.epochs`` is e, the epochs of a whole-shard
            model. Each slice is trained for ``2e/(R+1)`` epochs (the paper's schedule:
            the same total example-epochs as e epochs on the whole shard).
        seed: determines placement, every shard's initialisation and every slice's order.
        threads: torch CPU threads per shard job. Bit-exact retraining needs the same
            number every time; it is part of every checkpoint's key.
    """

    shards: int = 4
    slices: int = 1
    placement: str = "uniform"
    aggregation: str = "mean"
    model: ModelSpec = field(default_factory=lambda: ModelSpec("mlp"))
    recipe: Recipe = field(default_factory=Recipe)
    seed: int = 0
    threads: int = 1

    def __post_init__(self) -> None:
        p: list[str] = []

        def bad(name: str, want: str) -> None:
            p.append(f"The {name!r} parameter of SisaConfig must be {want}; got {getattr(self, name)!r} instead.")

        for name in ("shards", "slices", "threads"):
            value = getattr(self, name)
            if not (isinstance(value, numbers.Integral) and not isinstance(value, bool) and value >= 1):
                bad(name, "an int >= 1")
        if not (isinstance(self.seed, numbers.Integral) and not isinstance(self.seed, bool) and self.seed >= 0):
            bad("seed", "an int >= 0")
        if self.placement not in PLACEMENTS:
            bad("placement", f"one of {PLACEMENTS.names()}")
        if self.aggregation not in AGGREGATORS:
            bad("aggregation", f"one of {AGGREGATORS.names()}")
        if not isinstance(self.model, ModelSpec):
            bad("model", "a ModelSpec")
        if not isinstance(self.recipe, Recipe):
            bad("recipe", "a Recipe")
        if p:
            raise ConfigError("Invalid SISA configuration:", p)

    @property
    def epochs_per_slice(self) -> int:
        """``2R/(R+1) * e/R`` epochs on each cumulative slice (at least 1)."""
        return max(1, round(2 * self.recipe.epochs / (self.slices + 1)))

    def ideal_speedup(self) -> float:
        """Expected speed-up of one uniformly random deletion over full retraining:
        ``S / (2/3 + 1/(3R))`` (each slice gets ``2e/(R+1)`` epochs). It holds for one uniformly
        random deletion only; a batch's cost is :meth:`Sisa.expected_work_fraction` of its ids."""
        return self.shards / (2 / 3 + 1 / (3 * self.slices))

    def to_dict(self) -> dict[str, Any]:
        return {"shards": self.shards, "slices": self.slices, "placement": self.placement,
                "aggregation": self.aggregation, "model": self.model.to_dict(), "recipe": self.recipe.to_dict(),
                "seed": self.seed, "threads": self.threads}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SisaConfig:
        data = dict(data)
        valid = {"shards", "slices", "placement", "aggregation", "model", "recipe", "seed", "threads"}
        unknown = sorted(set(data) - valid)
        if unknown:
            raise ConfigError(f"Unknown SISA configuration key(s) {unknown}; valid keys: {sorted(valid)}.")
        if isinstance(data.get("model"), dict):
            data["model"] = ModelSpec(**data["model"])
        if isinstance(data.get("recipe"), dict):
            data["recipe"] = Recipe(**data["recipe"])
        return cls(**data)
