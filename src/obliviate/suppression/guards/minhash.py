"""Near-verbatim matching by character-shingle containment, with MinHash/LSH (``datasketch``).

Each protected string (canonical form) becomes its set of character n-grams
(shingles) and a MinHash, indexed in a ``MinHashLSH``. The text is cut into
half-overlapping windows as long as the protected strings (bucketed by length);
the LSH returns the protected strings similar to each window, and their exact
shingle containment in the window is the score. Reworded or
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
    """threshold: shingle containment (0..1) of a protected string in a window at which a text is
    blocked. lsh_threshold: Jaccard similarity at which the LSH returns a candidate (the
    containment of each candidate is then computed exactly). n: shingle length in characters.
    num_perm: MinHash permutations. min_chars: shortest protected string (canonical) indexed:
    MinHash is for long strings (answers, passages); short ones are the exact and fuzzy guards'. normalize, decode, facts: as for the exact guard. names: off by default: names of retained
    look-alikes (same surname) are within a few edits of the forgotten ones; the exact guard matches names.
    """

    threshold: float = 0.8
    lsh_threshold: float = 0.4
    n: int = 3
    num_perm: int = 64
    min_chars: int = 16
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


class _Cached:
    """sha1_hash32 with a per-text memo: overlapping windows share most shingles."""

    def __init__(self, memo: dict[bytes, int]) -> None:
        self.memo = memo

    def __call__(self, b: bytes) -> int:
        h = self.memo.get(b)
        if h is None:
            from datasketch import sha1_hash32

            h = self.memo[b] = sha1_hash32(b)
        return h


def shingles(text: str, n: int) -> list[str]:
    return [text[i:i + n] for i in range(max(1, len(text) - n + 1))]


class MinHashGuard(Guard):
    name = "minhash"
    summary = "Near-verbatim protected strings by character-shingle containment (MinHash LSH over windows)."
    library = "datasketch"
    scored = True
    Config = MinHashConfig

    def _fit(self, protected: Any) -> None:
        from datasketch import MinHash, MinHashLSH

        cfg = self.config
        self.patterns_ = [p for p in patterns_of(protected, normalize=cfg.normalize, names=cfg.names, facts=cfg.facts)
                          if len(p.text.replace(" ", "")) >= cfg.min_chars]
        self.sets_ = [set(shingles(p.text, cfg.n)) for p in self.patterns_]
        # window lengths: the protected lengths, bucketed by factors of 1.5
        lengths = sorted(len(p.text) for p in self.patterns_)
        buckets: list[int] = []
        for n in lengths:
            if not buckets or n > buckets[-1] * 1.5:
                buckets.append(n)
        self.lengths_ = [int(b * 1.2) for b in buckets]
        self.lsh_ = None
        first = MinHash(num_perm=cfg.num_perm, seed=1)
        self.perms_, self.scheme_ = first.permutations, first.scheme  # made once, shared by every MinHash
        if self.patterns_:
            self.lsh_ = MinHashLSH(threshold=cfg.lsh_threshold, num_perm=cfg.num_perm)
            for i, s in enumerate(self.sets_):
                m = MinHash(num_perm=cfg.num_perm, permutations=self.perms_, scheme=self.scheme_)
                m.update_batch([x.encode() for x in s])
                self.lsh_.insert(i, m)

    def _windows(self, s: str) -> list[tuple[int, int]]:
        """Windows about as long as each protected length bucket, half overlapping: a window aligned
        with a protected string has a high Jaccard similarity to it, which the LSH retrieves."""
        out = []
        for length in self.lengths_:
            step = max(1, length // 2)
            for start in range(0, max(1, len(s) - length + step), step):
                out.append((start, min(len(s), start + length)))
        return out

    def _best(self, text: str, ctx: GuardContext) -> tuple[float, tuple[int, int] | None, str | None]:
        from datasketch import MinHash

        protected = self._require_fitted()
        cfg = self.config
        best: tuple[float, tuple[int, int] | None, str | None] = (0.0, None, None)
        if self.lsh_ is None:
            return best
        mentioned: set[str] | None = None
        for view in views(text, cfg.normalize, cfg.decode):
            s = view.canon.text
            hashed: dict[bytes, int] = {}
            for start, end in self._windows(s):
                window = set(shingles(s[start:end], cfg.n))
                m = MinHash(num_perm=cfg.num_perm, permutations=self.perms_, scheme=self.scheme_,
                            hashfunc=_Cached(hashed))
                m.update_batch([x.encode() for x in window])
                for i in self.lsh_.query(m):
                    score = len(self.sets_[i] & window) / len(self.sets_[i])
                    if score <= best[0]:
                        continue
                    p = self.patterns_[i]
                    if not p.always:
                        if mentioned is None:
                            mentioned = names_mentioned((ctx.prompt, text), protected)
                        if p.subject not in mentioned:
                            continue
                    best = (score, view.source_span(start, end), p.original)
                    if score >= 1.0:
                        return best
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
