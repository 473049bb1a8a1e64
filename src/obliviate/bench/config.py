"""The configuration of a classifier unlearning benchmark run (``obliviate bench``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from obliviate.config import StrictModel, validate
from obliviate.data.images import ImageFolderConfig
from obliviate.data.tabular import TabularConfig
from obliviate.errors import UnknownNameError
from obliviate.registry import Registry
from obliviate.training.recipe import Recipe

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


class RecipeConfig(StrictModel):
    epochs: int | None = None
    batch_size: int | None = None
    lr: float | None = None
    optimizer: Literal["adam", "sgd"] | None = None
    momentum: float | None = None
    weight_decay: float | None = None
    schedule: Literal["cosine", "constant"] | None = None

    def resolve(self, dataset: str) -> Recipe:
        base = dict(DEFAULT_RECIPES.get(dataset, {}))
        base.update({k: v for k, v in self.model_dump().items() if v is not None})
        return Recipe(**base)


class BudgetConfig(StrictModel):
    max_steps: int | None = None
    max_seconds: float | None = None


class BenchConfig(StrictModel):
    """Everything that determines a bench run; saved as ``config.json`` next to its results."""

    task: Literal["classification"] = "classification"
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
    forget: str = "random:0.1"
    #: Break forget-set results down by memorisation tercile (low / mid / high; see
    #: :mod:`obliviate.audit.memorization`): adds ``ua_<stratum>`` and ``gap_closed_<stratum>``.
    strata: bool = False
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
    threads: int | None = None

    @field_validator("seeds", mode="before")
    @classmethod
    def _seeds(cls, v: Any) -> Any:
        # ``seeds: 3`` means three seeds 0, 1, 2; a list names them.
        if isinstance(v, int):
            if v < 1:
                raise ValueError("seeds must be a positive count or a list of seeds")
            return list(range(v))
        return v

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

    @field_validator("methods", mode="before")
    @classmethod
    def _methods(cls, v: Any) -> Any:
        if isinstance(v, str):
            return [m.strip() for m in v.split(",") if m.strip()]
        return v
