"""Near-verbatim matching by edit distance (``rapidfuzz``).

For each protected string, the best-aligned substring of each view of the text
is found with ``fuzz.partial_ratio_alignment``; the score is the best similarity
(0..1). Typos, swapped letters and small insertions that defeat exact matching
still score high. Short strings are left to the exact guard (a 4-letter word is
within one edit of too many others).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from obliviate.suppression.base import GUARDS, Decision, Guard, GuardContext
from obliviate.suppression.matching import names_mentioned, patterns_of, views


@dataclass(frozen=True)
class FuzzyConfig:
    """threshold: similarity (0..1, rapidfuzz partial ratio / 100) at which a text is blocked.
    min_chars: shortest protected string (canonical) matched fuzzily.
    normalize, decode, facts: as for the exact guard. names: off by default: names of retained
    look-alikes (same surname) are within a few edits of the forgotten ones; the exact guard matches names.
    """

    threshold: float = 0.85
    min_chars: int = 6
    normalize: bool = True
    decode: bool = True
    names: bool = False
    facts: bool = True

    def __post_init__(self) -> None:
        from obliviate.errors import ConfigError

        if not 0 < self.threshold <= 1:
            raise ConfigError(f"The 'threshold' parameter of FuzzyConfig must be in (0, 1]; got {self.threshold!r} instead.")


class FuzzyGuard(Guard):
    name = "fuzzy"
    summary = "Near-verbatim protected strings by edit distance (rapidfuzz partial ratio) in normalised text."
    library = "rapidfuzz"
    scored = True
    Config = FuzzyConfig

    def _fit(self, protected: Any) -> None:
        cfg = self.config
        self.patterns_ = [p for p in patterns_of(protected, normalize=cfg.normalize, names=cfg.names, facts=cfg.facts)
                          if len(p.text.replace(" ", "")) >= cfg.min_chars]

    def _best(self, text: str, ctx: GuardContext) -> tuple[float, tuple[int, int] | None, str | None]:
        from rapidfuzz import fuzz

        protected = self._require_fitted()
        cfg = self.config
        best: tuple[float, tuple[int, int] | None, str | None] = (0.0, None, None)
        mentioned: set[str] | None = None
        for view in views(text, cfg.normalize, cfg.decode):
            s = view.canon.text
            for p in self.patterns_:
                if len(s) < 0.5 * len(p.text):
                    continue
                cutoff = max(best[0], 0.5) * 100
                al = fuzz.partial_ratio_alignment(p.text, s, score_cutoff=cutoff)
                if al is None or al.score / 100 <= best[0]:
                    continue
                if not p.always:
                    if mentioned is None:
                        mentioned = names_mentioned((ctx.prompt, text), protected)
                    if p.subject not in mentioned:
                        continue
                best = (al.score / 100, view.source_span(al.dest_start, al.dest_end), p.original)
        return best

    def score(self, text: str, ctx: GuardContext) -> float:
        return self._best(text, ctx)[0]

    def check(self, text: str, ctx: GuardContext) -> Decision:
        score, span, matched = self._best(text, ctx)
        if score >= self.config.threshold:
            return self.block(f"near-verbatim protected string (similarity {score:.2f})", span=span,
                              score=score, matched=matched)
        return self.allow(score=score)


GUARDS.register("fuzzy", FuzzyGuard)
