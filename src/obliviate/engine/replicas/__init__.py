"""Replica models for strong audits: batched training and cached groups.

* :mod:`.training` - train many small models at once with ``torch.func`` (and the plain-loop reference);
* :mod:`.groups` - groups of replicas (trained, retrained, unlearned by a method) trained in chunks on an
  executor and cached in the shared :class:`obliviate.training.cache.ModelCache`;
The signals attacks read from a group (model I/O, so the attack math in :mod:`obliviate.audit.attacks`
stays pure numpy) are in :mod:`obliviate.bench.audit_signals`, above the audit layer they feed.
"""

from obliviate.engine.replicas.training import (
    ReplicaRecipe,
    StackedReplicas,
    predict_logits,
    train_one_at_a_time,
    train_replicas,
)

__all__ = [
    "ReplicaRecipe",
    "StackedReplicas",
    "predict_logits",
    "train_one_at_a_time",
    "train_replicas",
]
