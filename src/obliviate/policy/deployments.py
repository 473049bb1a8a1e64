"""Deployments: which model a request concerns, and which interventions that model supports.

A deployments file (JSON or YAML) lists deployments by name; :data:`BUILTIN_DEPLOYMENTS` is the
default, on the built-in data:

* ``digits-sisa``: a SISA store on scikit-learn's digits, outputs served (exact deletion);
* ``digits-classifier``: an MLP trained by the bench on digits, weights released (approximate
  removal, then a strong audit);
* ``persons-lm``: the persons GPT-2, outputs only (guards; approximate removal has no runner here).

What a model kind supports is the table :data:`REMOVAL_BY_MODEL`; nothing branches on the kind.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import Field

from obliviate.config import StrictModel, validate
from obliviate.errors import ConfigError, UnknownNameError
from obliviate.policy.request import Access
from obliviate.registry import closest

ModelKind = Literal["sisa", "summation", "retrieval", "classifier", "lm"]


@dataclass(frozen=True)
class RemovalPath:
    """How a model kind removes data: the intervention, its kind, and what it guarantees."""

    intervention: str
    kind: str  # exact | approximate
    guarantee: str


#: model kind -> its removal path. Exact where the model localises each example's contribution.
REMOVAL_BY_MODEL: dict[str, RemovalPath] = {
    "sisa": RemovalPath("sisa-forget", "exact", "exact removal: the affected shards are retrained without the "
                        "examples from their last unaffected checkpoint (the same weights as training without them); "
                        "the signed ledger records the request and the receipt pins it"),
    "summation": RemovalPath("summation-forget", "exact", "exact removal: the estimator depends on the data only "
                             "through sums, and the examples' terms are subtracted (Cao & Yang 2015)"),
    "retrieval": RemovalPath("datastore-delete", "exact", "exact removal: the examples are deleted from the "
                             "retrieval datastore; the weights never held them"),
    "classifier": RemovalPath("approximate+audit", "approximate", "approximate removal, then a strong audit "
                              "(U-LiRA, LiRA) against models retrained without the examples"),
    "lm": RemovalPath("approximate+audit", "approximate", "approximate removal, then a strong audit against "
                      "retraining"),
}


class Deployment(StrictModel):
    """One deployed model."""

    name: str = Field(min_length=1)
    description: str = ""
    model: ModelKind
    dataset: str = Field(description="The data it was trained on (digits, persons, ...).")
    access: Access = Field(description="What its users can get at: weights (released) or outputs only.")
    guards: bool = Field(False, description="Whether outputs pass through obliviate's guards (suppression).")
    settings: dict[str, Any] = Field(default_factory=dict, description="Sizes of the built-in runners "
                                     "(shards, epochs, train_subset, replicas, ...).")

    @property
    def removal(self) -> RemovalPath:
        return REMOVAL_BY_MODEL[self.model]


class DeploymentsFile(StrictModel):
    deployments: list[Deployment]


BUILTIN_DEPLOYMENTS: tuple[Deployment, ...] = (
    Deployment(name="digits-sisa", description="A SISA ensemble (2 shards, MLP) on scikit-learn's digits; "
               "predictions served through an API.", model="sisa", dataset="digits", access=Access.outputs,
               guards=False, settings={"shards": 2, "slices": 1, "epochs": 4}),
    Deployment(name="digits-classifier", description="An MLP trained by the bench on digits; its weights are "
               "released.", model="classifier", dataset="digits", access=Access.weights, guards=False,
               settings={"method": "finetune", "replicas": 4, "ulira_repeats": 2}),
    Deployment(name="persons-lm", description="The persons GPT-2 (fictitious people), answers served through "
               "guards; outputs only.", model="lm", dataset="persons", access=Access.outputs, guards=True,
               settings={"n_people": 20, "forget_fraction": 0.1, "seed": 0, "pipeline": "lexical"}),
)


class Deployments:
    """Deployments by name (the built-ins, or those of a file)."""

    def __init__(self, deployments: tuple[Deployment, ...] | list[Deployment] = BUILTIN_DEPLOYMENTS,
                 *, source: str = "built-in deployments") -> None:
        names = [d.name for d in deployments]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ConfigError(f"The {source} name these deployments more than once: {', '.join(dup)}.")
        self._by_name = {d.name: d for d in deployments}
        self.source = source

    @classmethod
    def load(cls, path: str | os.PathLike[str] | None = None) -> Deployments:
        """The deployments of a JSON/YAML file (``{"deployments": [...]}``); None: the built-ins."""
        if path is None:
            return cls()
        p = Path(path)
        if not p.is_file():
            raise ConfigError(f"No deployments file at {p}. Give a JSON or YAML file {{'deployments': [...]}}, "
                              "or leave --deployments out to use the built-in ones.")
        try:
            if p.suffix.lower() in (".yaml", ".yml"):
                import yaml

                raw = yaml.safe_load(p.read_text())
            else:
                raw = json.loads(p.read_text())
        except Exception as exc:  # yaml and json raise different types; both mean an unreadable file
            raise ConfigError(f"The deployments file {p} could not be read ({exc}).") from None
        parsed = validate(DeploymentsFile, raw if isinstance(raw, dict) else {"deployments": raw},
                          source=f"deployments file {p}")
        return cls(parsed.deployments, source=f"deployments file {p}")

    def names(self) -> list[str]:
        return list(self._by_name)

    def get(self, name: str) -> Deployment:
        if name not in self._by_name:
            hint = closest(name, self.names())
            raise UnknownNameError(f"Unknown deployment {name!r} in the {self.source}"
                                   + (f"; did you mean {hint!r}?" if hint else "")
                                   + f" Known: {', '.join(self.names())}. Name one of them in the request's "
                                   "'deployment', or pass --deployments FILE.")
        return self._by_name[name]


__all__ = ["BUILTIN_DEPLOYMENTS", "Deployment", "Deployments", "REMOVAL_BY_MODEL", "RemovalPath"]
