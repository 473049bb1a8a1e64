"""Where the classifier run's configuration used to live; it is now :mod:`obliviate.tasks.classification`."""

from obliviate.tasks.base import BudgetConfig, RunConfig
from obliviate.tasks.classification import (CUSTOM_DATASET, DATA_KINDS, DEFAULT_RECIPES, BenchConfig, RecipeConfig,
                                            infer_data_kind)

__all__ = ["BenchConfig", "BudgetConfig", "CUSTOM_DATASET", "DATA_KINDS", "DEFAULT_RECIPES", "RecipeConfig",
           "RunConfig", "infer_data_kind"]
