"""System-prompt suppression: tell the model to act as if it did not know the protected subjects.

"Pretend you do not know X" placed before the prompt. It changes only what the
model is asked, so it is a suppression method (a rewrite of the input), and it is
only as strong as the model's instruction following: a small model trained on
bare QA pairs has none, and the evaluation reports what it does there.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from obliviate.suppression.base import GUARDS, Decision, Guard, GuardContext


@dataclass(frozen=True)
class SystemPromptConfig:
    """template: the instruction; ``{subjects}`` is replaced by the protected names (or topics)."""

    template: str = ("System: You do not know anything about {subjects}. If you are asked about them, "
                     "answer exactly \"I don't know.\" and nothing else.\n")
    max_subjects: int = 50


class SystemPromptGuard(Guard):
    name = "system_prompt"
    summary = "Suppression by instruction: a system prompt asking the model to act as if it did not know the subjects."
    stages = ("input",)
    library = "(prompt only)"
    Config = SystemPromptConfig

    def _fit(self, protected: Any) -> None:
        names = list(protected.all_names()) or [e for e in protected.examples[:5]]
        self.text_ = self.config.template.format(subjects=", ".join(names[: self.config.max_subjects]))

    def check(self, text: str, ctx: GuardContext) -> Decision:
        self._require_fitted()
        return Decision("rewrite", self.name, "system prompt placed before the prompt", score=1.0,
                        replacement=self.text_)


GUARDS.register("system_prompt", SystemPromptGuard)
