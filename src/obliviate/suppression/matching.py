"""What the lexical guards share: views of a text and the protected patterns in canonical form.

A *view* is a text the matchers scan: the canonical form of the checked text
(or its lower-cased raw form when normalisation is off) and of each decoded
segment (base64, hex, reversed). :class:`Patterns` holds the protected strings
(names and answers) in the same form, with which fact each one protects, and
:func:`names_mentioned` tells whether a forgotten subject is named in the prompt
or the output, for answers that are protected only in that context.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from obliviate.suppression.decoders import decoded_views
from obliviate.suppression.normalize import Canonical, canonical

__all__ = ["View", "views", "Pattern", "patterns_of", "names_mentioned", "key"]


@dataclass(frozen=True)
class View:
    """A scanned text: ``canon.text`` is matched; spans map back through ``canon`` or to ``span``."""

    name: str
    canon: Canonical
    span: tuple[int, int] | None = None  # decoded views: the encoded segment in the source

    def source_span(self, start: int, end: int) -> tuple[int, int]:
        if self.span is not None:
            return self.span
        return self.canon.source_span(start, end)


def _raw(text: str) -> Canonical:
    return Canonical(text.lower(), tuple(range(len(text))), len(text))


def key(text: str, normalize: bool) -> str:
    """A protected string as its matchers see it."""
    return canonical(text).text if normalize else text.lower()


@lru_cache(maxsize=2048)
def views(text: str, normalize: bool = True, decode: bool = True) -> tuple[View, ...]:
    """The views of ``text`` scanned by the lexical guards (cached: guards of one pipeline share them)."""
    form = canonical if normalize else _raw
    base = form(text)
    out = [View("text", base)]
    if decode:
        for d in decoded_views(text, decoders=("base64", "hex")):
            out.append(View(d.decoder, form(d.text), d.span))
        if base.text:  # reversed text: the canonical form read backwards (half the cost of a second pass)
            out.append(View("reversed", Canonical(base.text[::-1], base.index[::-1], base.source_len),
                            (0, len(text))))
    return tuple(out)


@dataclass(frozen=True)
class Pattern:
    """One protected string in matcher form; ``fact`` is None for a subject's name."""

    text: str
    original: str
    subject: str
    fact: str | None
    always: bool  # protected anywhere (a name or a distinctive answer), else only in context


def patterns_of(protected: object, *, normalize: bool, names: bool = True, facts: bool = True) -> list[Pattern]:
    out: dict[str, Pattern] = {}
    if names:
        for subject, subject_names in getattr(protected, "names", {}).items():
            for n in subject_names:
                k = key(n, normalize)
                if k:
                    out.setdefault(k, Pattern(k, n, subject, None, True))
    if facts:
        for f in getattr(protected, "facts", ()):
            k = key(f.answer, normalize)
            if not k:
                continue
            old = out.get(k)
            if old is None or (f.distinctive and not old.always):
                out[k] = Pattern(k, f.answer, f.subject, f.id, f.distinctive or not f.names)
    return list(out.values())


def names_mentioned(texts: tuple[str, ...], protected: object, *, fuzzy: float = 90.0) -> set[str]:
    """Subjects whose name appears in any of ``texts`` (canonical form; near-verbatim by ``fuzzy``)."""
    found: set[str] = set()
    name_map = getattr(protected, "names", {})
    if not name_map:
        return found
    from rapidfuzz import fuzz

    scanned = [v.canon.text for t in texts if t for v in views(t, True, True)]  # same cache key as the guards'
    for subject, subject_names in name_map.items():
        for n in subject_names:
            k = key(n, True)
            if any(k in s or (len(k) >= 6 and fuzz.partial_ratio(k, s) >= fuzzy) for s in scanned):
                found.add(subject)
                break
    return found
