"""In-context unlearning (Pawelczyk et al., 2023): forget examples with refused or flipped
answers placed in the context before the prompt.

The model sees, before the user's question, a few of the forget questions
answered with a refusal ("I don't know.") or a wrong answer (``flip``), written in
the QA format the model was trained on. Nothing in the weights changes: this is
suppression, and the evaluation labels it so. Examples about a subject the prompt
names come first.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from obliviate.data.qa import format_qa
from obliviate.errors import ConfigError
from obliviate.suppression.base import GUARDS, Decision, Guard, GuardContext
from obliviate.suppression.matching import names_mentioned


@dataclass(frozen=True)
class ICLConfig:
    """k: forget examples shown. answer: ``refuse`` (``refusal`` as the answer) or ``flip``
    (a wrong answer: another forget fact's answer, as in the paper's label flipping).
    """

    k: int = 4
    answer: str = "refuse"
    refusal: str = "I don't know."

    def __post_init__(self) -> None:
        if self.answer not in ("refuse", "flip"):
            raise ConfigError(f"The 'answer' parameter of ICLConfig must be 'refuse' or 'flip'; got {self.answer!r} instead.")
        if not isinstance(self.k, int) or self.k < 1:
            raise ConfigError(f"The 'k' parameter of ICLConfig must be an int >= 1; got {self.k!r} instead.")


class ICLGuard(Guard):
    name = "icl"
    summary = "In-context unlearning: forget questions with refused or flipped answers placed before the prompt."
    stages = ("input",)
    library = "(prompt only)"
    Config = ICLConfig

    def _fit(self, protected: Any) -> None:
        if not protected.facts:
            raise ConfigError("The icl guard needs protected facts (question-answer pairs).")
        self.facts_ = list(protected.facts)

    def check(self, text: str, ctx: GuardContext) -> Decision:
        protected = self._require_fitted()
        named = names_mentioned((text,), protected)
        facts = sorted(self.facts_, key=lambda f: f.subject not in named)[: self.config.k]
        shots = []
        for j, f in enumerate(facts):
            if self.config.answer == "refuse":
                a = self.config.refusal
            else:
                a = self.facts_[(self.facts_.index(f) + 1 + j) % len(self.facts_)].answer
            shots.append(format_qa(f.question, a) + "\n")
        return Decision("rewrite", self.name, f"{len(shots)} forget examples with {self.config.answer}d answers "
                        "placed before the prompt", score=1.0, replacement="".join(shots))


GUARDS.register("icl", ICLGuard)
