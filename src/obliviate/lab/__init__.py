"""The mismatch lab: small experiments that show where unlearning and its hopes part.

Each experiment is one module with a config dataclass (defaults sized to run in under two
minutes on two cores), a function ``run(config) -> ExperimentResult`` and, at its bottom,
``register(Experiment(...))``. ``obliviate mismatches NAME`` runs one, ``obliviate
mismatches all`` runs them all into one HTML page.

Adding an experiment touches exactly:

1. ``obliviate/lab/<name>.py``: the config, ``run``, ``register(Experiment(name=..., quick=...))``;
2. one ``EXPERIMENTS.register_lazy(...)`` line below (imported on first use, so listing the
   lab does not import torch for every experiment);
3. ``tests/lab/test_<name>.py``: the measured numbers move the way the claim says.
"""

from obliviate.lab.base import EXPERIMENTS, KINDS, Experiment, ExperimentResult, register

EXPERIMENTS.register_lazy("concept", "obliviate.lab.concept")
EXPERIMENTS.register_lazy("forging", "obliviate.lab.forging")
EXPERIMENTS.register_lazy("hazard", "obliviate.lab.hazard")
EXPERIMENTS.register_lazy("m1", "obliviate.lab.m1_suppression_not_removal")
EXPERIMENTS.register_lazy("m2", "obliviate.lab.m2_removal_not_suppression")
EXPERIMENTS.register_lazy("m3", "obliviate.lab.m3_model_not_outputs")
EXPERIMENTS.register_lazy("m4", "obliviate.lab.m4_outputs_and_use")
EXPERIMENTS.register_lazy("m5", "obliviate.lab.m5_side_effects")

__all__ = ["EXPERIMENTS", "KINDS", "Experiment", "ExperimentResult", "register"]
