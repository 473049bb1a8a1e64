"""Exact multi-pattern matching of protected strings (Aho-Corasick, ``pyahocorasick``).

Every protected name and answer is one pattern of one automaton, matched as whole
words (not inside a longer word) in each view of the text (canonical form and decoded segments), so
the cost is linear in the text whatever the number of patterns. Long patterns
are also matched with every separator removed ("Lyon France" in "lyonfrance"),
which catches spacing and punctuation put between words. An answer shared with
retained data is protected only when a forgotten subject is named in the prompt
or the output (see :mod:`obliviate.suppression.protect`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from obliviate.suppression.base import GUARDS, Decision, Guard, GuardContext
from obliviate.suppression.matching import names_mentioned, patterns_of, views


@dataclass(frozen=True)
class ExactConfig:
    """normalize: match canonical forms (NFKC, confusables, zero-width, leetspeak, case, spacing).
    decode: also scan decoded segments (base64, hex, reversed).
    names: protect the forgotten subjects' names themselves (on inputs this refuses every
    prompt that names them). facts: protect the answers.
    compact_min: patterns at least this long (canonical, no separators) are also matched
    with separators removed.
    """

    normalize: bool = True
    decode: bool = True
    names: bool = True
    facts: bool = True
    compact_min: int = 8


class ExactGuard(Guard):
    name = "exact"
    summary = "Protected names and answers, matched exactly (Aho-Corasick) in normalised and decoded text."
    library = "pyahocorasick"
    Config = ExactConfig

    def _fit(self, protected: Any) -> None:
        import ahocorasick

        cfg = self.config
        self.patterns_ = patterns_of(protected, normalize=cfg.normalize, names=cfg.names, facts=cfg.facts)
        self.spaced_ = ahocorasick.Automaton()
        self.compact_ = ahocorasick.Automaton()
        for i, p in enumerate(self.patterns_):
            self.spaced_.add_word(p.text, i)
            c = p.text.replace(" ", "")
            if cfg.normalize and len(c) >= cfg.compact_min:
                self.compact_.add_word(c, i)
        self.spaced_.make_automaton()
        if len(self.compact_):
            self.compact_.make_automaton()

    def check(self, text: str, ctx: GuardContext) -> Decision:
        protected = self._require_fitted()
        cfg = self.config
        mentioned: set[str] | None = None
        for view in views(text, cfg.normalize, cfg.decode):
            s = view.canon.text
            # whole words only: a match must not continue into letters or digits on either side
            hits = [(end - len(self.patterns_[i].text) + 1, end + 1, i) for end, i in self.spaced_.iter(s)
                    if _bounded(s, end - len(self.patterns_[i].text) + 1, end + 1)]
            if len(self.compact_):
                squeezed, where = _squeeze(s)
                hits += [(where[end - len(self.patterns_[i].text.replace(" ", "")) + 1], where[end] + 1, i)
                         for end, i in self.compact_.iter(squeezed)]
            for start, end, i in sorted(hits):
                p = self.patterns_[i]
                if not p.always:
                    if mentioned is None:
                        mentioned = names_mentioned((ctx.prompt, text), protected)
                    if p.subject not in mentioned:
                        continue
                what = "name" if p.fact is None else f"answer of {p.fact}"
                return self.block(f"protected {what} found ({view.name} view)",
                                  span=view.source_span(start, end), matched=p.original)
        return self.allow()


def _bounded(s: str, start: int, end: int) -> bool:
    return (start == 0 or not s[start - 1].isalnum()) and (end == len(s) or not s[end].isalnum())


def _squeeze(s: str) -> tuple[str, list[int]]:
    where = [i for i, c in enumerate(s) if c != " "]
    return s.replace(" ", ""), where


GUARDS.register("exact", ExactGuard)
