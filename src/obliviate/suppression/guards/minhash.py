"""Near-verbatim matching by character-shingle containment, with MinHash/LSH (``datasketch``).

Each protected string (canonical form) becomes its set of character n-grams
(shingles) and a MinHash, indexed in a ``MinHashLSHEnsemble`` (LSH for
*containment*: how much of the protected string a window of the text holds). The
text is cut into overlapping windows; the LSH returns the protected strings each
window may contain, and their exact shingle containment is the score. Reworded or
partly changed answers keep most of their shingles; short strings are left to
the exact guard.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from obliviate.errors import ConfigError
from obliviate.suppression.base import GUARDS, Decision, Guard, GuardContext
from obliviate.suppression.matching import names_mentioned, patterns_of, views


@dataclass(frozen=True)
class MinHashConfig:
    """threshold: shingle containment (0..1) at which a text is blocked; also the LSH's threshold.
    n: shingle length in characters. num_perm: MinHash permutations. min_chars: shortest
    protected string (canonical) indexed. normalize, decode, facts: as for the exact guard. names: off by default: names of retained
    look-alikes (same surname) are within a few edits of the forgotten ones; the exact guard matches names.
    """

    threshold: float = 0.8
    n: int = 3
    num_perm: int = 64
    min_chars: int = 8
    normalize: bool = True
    decode: bool = True
    names: bool = False
    facts: bool = True

    def __post_init__(self) -> None:
        problems = []
        if not 0 < self.threshold <= 1:
            problems.append(f"The 'threshold' parameter of MinHashConfig must be in (0, 1]; got {self.threshold!r} instead.")
        if not isinstance(self.n, int) or self.n < 1:
            problems.append(f"The 'n' parameter of MinHashConfig must be an int >= 1; got {self.n!r} instead.")
        if problems:
            raise ConfigError("Invalid MinHash guard configuration:", problems)


def shingles(text: str, n: int) -> list[str]:
    return [text[i:i + n] for i in range(max(1, len(text) - n + 1))]


class MinHashGuard(Guard):
    name = "minhash"
    summary = "Near-verbatim protected strings by character-shingle containment (MinHash LSH ensemble)."
    library = "datasketch"
    scored = True
    Config = MinHashConfig

    def _fit(self, protected: Any) -> None:
        from datasketch import MinHash, MinHashLSHEnsemble

        cfg = self.config
        self.patterns_ = [p for p in patterns_of(protected, normalize=cfg.normalize, names=cfg.names, facts=cfg.facts)
                          if len(p.text.replace(" ", "")) >= cfg.min_chars]
        self.sets_ = [set(shingles(p.text, cfg.n)) for p in self.patterns_]
        self.window_ = max([len(p.text) for p in self.patterns_] + [16])
        self.lsh_ = None
        if self.patterns_:
            entries = []
            for i, s in enumerate(self.sets_):
                m = MinHash(num_perm=cfg.num_perm, seed=1)
                m.update_batch([x.encode() for x in s])
                entries.append((i, m, len(s)))
            self.lsh_ = MinHashLSHEnsemble(threshold=cfg.threshold, num_perm=cfg.num_perm, num_part=8)
            self.lsh_.index(entries)

    def _best(self, text: str, ctx: GuardContext) -> tuple[float, tuple[int, int] | None, str | None]:
        from datasketch import MinHash

        protected = self._require_fitted()
        cfg = self.config
        best: tuple[float, tuple[int, int] | None, str | None] = (0.0, None, None)
        if self.lsh_ is None:
            return best
        mentioned: set[str] | None = None
        w = 2 * self.window_
        step = max(1, self.window_)
        for view in views(text, cfg.normalize, cfg.decode):
            s = view.canon.text
            for start in range(0, max(1, len(s) - self.window_ + 1), step):
                chunk = s[start:start + w]
                window = set(shingles(chunk, cfg.n))
                m = MinHash(num_perm=cfg.num_perm, seed=1)
                m.update_batch([x.encode() for x in window])
                for i in self.lsh_.query(m, len(window)):
                    score = len(self.sets_[i] & window) / len(self.sets_[i])
                    if score <= best[0]:
                        continue
                    p = self.patterns_[i]
                    if not p.always:
                        if mentioned is None:
                            mentioned = names_mentioned((ctx.prompt, text), protected)
                        if p.subject not in mentioned:
                            continue
                    best = (score, view.source_span(start, start + len(chunk)), p.original)
        return best

    def score(self, text: str, ctx: GuardContext) -> float:
        return self._best(text, ctx)[0]

    def check(self, text: str, ctx: GuardContext) -> Decision:
        score, span, matched = self._best(text, ctx)
        if score >= self.config.threshold:
            return self.block(f"near-verbatim protected string (shingle containment {score:.2f})", span=span,
                              score=score, matched=matched)
        return self.allow(score=score)


GUARDS.register("minhash", MinHashGuard)
