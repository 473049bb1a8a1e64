"""Canonical forms of text for matching, against character-level evasion.

:func:`canonical` maps a text to a lower-case ASCII form in which zero-width and
control characters are gone, Unicode is NFKC-normalised, confusable letters
(Cyrillic and Greek look-alikes, fullwidth forms) are their Latin originals,
accents are stripped (``unidecode``), leetspeak digits and symbols stand for the
letters they imitate, and punctuation or spacing put *between the letters* of a
word ("L.y.o.n", "l y o n") is closed up. Mojibake is repaired first (``ftfy``).
Protected strings and checked texts go through the same function, so a match
in canonical form is a match up to these changes.

Every canonical character keeps the index of the source character it came from,
so a match can be mapped back to a span of the original text (for redaction).
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache

__all__ = ["Canonical", "canonical", "CONFUSABLES", "LEET", "compact_key", "spaced_key"]

# Visual look-alikes of Latin letters (a subset of Unicode's confusables.txt: the
# Cyrillic, Greek and Armenian letters that render like Latin ones). unidecode
# would transliterate by sound (Cyrillic 'р' -> 'r'), not by shape ('р' looks like 'p').
CONFUSABLES: dict[str, str] = {
    # Cyrillic
    "а": "a", "в": "b", "с": "c", "е": "e", "ё": "e", "һ": "h", "і": "i", "ї": "i", "ј": "j", "к": "k",
    "м": "m", "н": "h", "о": "o", "р": "p", "ԛ": "q", "ѕ": "s", "т": "t", "у": "y", "х": "x", "ԝ": "w",
    "ь": "b", "г": "r", "п": "n", "л": "n",
    "А": "a", "В": "b", "С": "c", "Е": "e", "Н": "h", "І": "i", "Ј": "j", "К": "k", "М": "m", "О": "o",
    "Р": "p", "Ѕ": "s", "Т": "t", "У": "y", "Х": "x", "Ԝ": "w", "Ү": "y", "Ԁ": "d",
    # Greek
    "α": "a", "β": "b", "ε": "e", "ι": "i", "κ": "k", "ν": "v", "ο": "o", "ρ": "p", "τ": "t", "υ": "u",
    "χ": "x", "ω": "w", "γ": "y", "η": "n",
    "Α": "a", "Β": "b", "Ε": "e", "Ζ": "z", "Η": "h", "Ι": "i", "Κ": "k", "Μ": "m", "Ν": "n", "Ο": "o",
    "Ρ": "p", "Τ": "t", "Υ": "y", "Χ": "x",
    # Armenian and others that fonts draw as Latin
    "օ": "o", "ս": "u", "ց": "g", "հ": "h", "ո": "n", "ı": "i", "ɡ": "g", "ℓ": "l",
}

# Leetspeak: each symbol maps to the letter it imitates. Applied to both sides of a
# match, so a digit in a protected phone number maps the same way in the output.
LEET: dict[str, str] = {
    "0": "o", "1": "i", "!": "i", "|": "i", "l": "i", "3": "e", "4": "a", "@": "a", "5": "s", "$": "s",
    "7": "t", "+": "t", "8": "b", "9": "g", "6": "g", "2": "z",
}

_ZERO_WIDTH = {"\u200b", "\u200c", "\u200d", "\u2060", "\ufeff", "\u00ad", "\u180e"}
_SINGLE_RUN = re.compile(r"(?:(?<= )|^)((?:[a-z0-9] ){2,}[a-z0-9])(?= |$)")


@dataclass(frozen=True)
class Canonical:
    """A canonical text and, for each of its characters, the index of its source character."""

    text: str
    index: tuple[int, ...]
    source_len: int

    def source_span(self, start: int, end: int) -> tuple[int, int]:
        """The source range that canonical characters ``[start, end)`` came from."""
        if not self.index or end <= start:
            return (0, 0)
        start = max(0, min(start, len(self.index) - 1))
        end = max(start + 1, min(end, len(self.index)))
        return (self.index[start], self.index[end - 1] + 1)


@lru_cache(maxsize=4096)
def _char_map(ch: str, leet: bool) -> str:
    """The canonical letters of one source character ('' for none, ' ' for a separator)."""
    if ch in _ZERO_WIDTH:
        return ""
    cat = unicodedata.category(ch)
    if cat in ("Cf", "Mn"):  # format characters and combining marks: invisible
        return ""
    if cat == "Cc":
        return " "
    out = []
    for c in unicodedata.normalize("NFKC", ch):
        c = CONFUSABLES.get(c, c)
        if not c.isascii():
            from unidecode import unidecode

            c = unidecode(c)
        for a in c.lower():
            if leet:
                a = LEET.get(a, a)
            out.append(a if a.isalnum() else " ")
    return "".join(out)


def _repair(text: str) -> str:
    import ftfy

    # only mojibake and HTML entities: the other steps handle the rest, and keep offsets
    return str(ftfy.fix_text(text, normalization=None, fix_character_width=False, uncurl_quotes=False,
                             fix_line_breaks=False, remove_control_chars=False))


def canonical(text: str, *, leet: bool = True, collapse: bool = True, repair: bool = True) -> Canonical:
    """The canonical form of ``text`` (see the module docstring), words separated by one space.

    leet: map leetspeak symbols to letters. collapse: close up runs of three or more
    single characters separated by spacing or punctuation ("l y o n" -> "lyon").
    repair: fix mojibake first with ``ftfy`` (spans are then approximate).
    """
    source = text
    if repair and not text.isascii():  # mojibake needs non-ASCII characters
        fixed = _repair(text)
        if fixed != text:
            source = fixed
    chars: list[str] = []
    index: list[int] = []
    prev_space = True
    for i, ch in enumerate(source):
        for c in _char_map(ch, leet):
            if c == " ":
                if prev_space:
                    continue
                prev_space = True
            else:
                prev_space = False
            chars.append(c)
            index.append(i)
    while chars and chars[-1] == " ":
        chars.pop()
        index.pop()
    out = "".join(chars)
    if collapse and " " in out:
        out, index = _collapse_runs(out, index)
    if source is not text and len(source) != len(text):  # ftfy changed the length: scale the map
        scale = len(text) / max(1, len(source))
        index = [min(len(text) - 1, int(i * scale)) for i in index]
    return Canonical(out, tuple(index), len(text))


def _collapse_runs(text: str, index: list[int]) -> tuple[str, list[int]]:
    keep = [True] * len(text)
    for m in _SINGLE_RUN.finditer(text):
        for j in range(m.start(1), m.end(1)):
            if text[j] == " ":
                keep[j] = False
    return "".join(c for c, k in zip(text, keep) if k), [i for i, k in zip(index, keep) if k]


def spaced_key(text: str, *, leet: bool = True) -> str:
    """The canonical form of a protected string, words separated by one space."""
    return canonical(text, leet=leet).text


def compact_key(text: str, *, leet: bool = True) -> str:
    """The canonical form without any separator ("Lyon, France" -> "iyonfrance" with leet)."""
    return canonical(text, leet=leet).text.replace(" ", "")
