"""Approximate removal methods; importing registers each one."""

from obliviate.removal.approximate import (  # noqa: F401  (each module registers its method)
    finetune,
    graddiff,
    gradient_ascent,
    kl,
    random_label,
)
