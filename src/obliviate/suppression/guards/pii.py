"""Personal data: recognisers for e-mail addresses, phone numbers, dates (of birth), street
addresses and person names, kept apart from what is done about them.

The recognisers (:data:`RECOGNISERS`) are plain regular expressions with a
canonical value per hit (an e-mail lower-cased, a phone number as its digits, a
date as ``YYYY-MM-DD``, a name lower-cased). The guard blocks, in ``protected``
mode, only the hits whose canonical value is a protected one (a forgotten
person's e-mail written in another format, their phone number with other
spacing), and in ``any`` mode every hit of the enabled kinds (a blanket PII filter,
which over-refuses by design).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from obliviate.errors import ConfigError
from obliviate.suppression.base import GUARDS, Decision, Guard, GuardContext

__all__ = ["PIIHit", "RECOGNISERS", "recognise", "PIIGuard", "PIIConfig"]

_MONTHS = ("january", "february", "march", "april", "may", "june", "july", "august", "september", "october",
           "november", "december")
_MON = r"(?:jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?|sep(?:t(?:ember)?)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)\.?"


@dataclass(frozen=True)
class PIIHit:
    kind: str
    span: tuple[int, int]
    text: str
    value: str


def _month(name: str) -> int:
    name = name.lower().rstrip(".")
    return next(i + 1 for i, m in enumerate(_MONTHS) if m.startswith(name[:3]))


_EMAIL = re.compile(r"[A-Za-z0-9._%+\-]+@[A-Za-z0-9\-]+(?:\.[A-Za-z0-9\-]+)*\.[A-Za-z]{2,}")
_PHONE = re.compile(r"(?<![\w+])(?:\+|00)?\(?\d[\d\s().\-/]{6,}\d(?:\s*(?:x|ext\.?)\s*\d{1,5})?(?!\w)")
_DATE_DMY = re.compile(rf"(?i)\b(\d{{1,2}})(?:st|nd|rd|th)?\s+(?:of\s+)?({_MON})\s*,?\s+(\d{{4}})\b")
_DATE_MDY = re.compile(rf"(?i)\b({_MON})\s+(\d{{1,2}})(?:st|nd|rd|th)?\s*,?\s+(\d{{4}})\b")
_DATE_ISO = re.compile(r"\b(\d{4})[-/.](\d{1,2})[-/.](\d{1,2})\b")
_DATE_NUM = re.compile(r"\b(\d{1,2})[-/.](\d{1,2})[-/.](\d{4})\b")
_STREET = (r"(?:street|st|avenue|ave|road|rd|lane|ln|drive|dr|boulevard|blvd|court|ct|place|pl|way|square|sq|"
           r"terrace|parkway|pkwy|crescent|close|circle|cir|highway|hwy|trail|row|gardens|strasse|straße|weg|"
           r"gasse|platz|allee|rue|avenue|calle|via|viale|piazza|rua|avenida|ulica|gatan|vägen|straat|laan)")
_ADDRESS = re.compile(
    rf"(?i)\b\d{{1,5}}[A-Za-z]?\s+(?:[A-Z][\w'\-]*\.?\s+){{0,4}}{_STREET}\b\.?"
    rf"|\b(?:{_STREET})\s+(?:[A-Za-zÀ-ÿ'\-]+\s+){{0,4}}\d{{1,5}}[A-Za-z]?\b"
    rf"|\b[A-ZÀ-Ý][\wÀ-ÿ'\-]*(?:{_STREET})\s+\d{{1,5}}[A-Za-z]?\b"
    # the generic shape: a house number and two to four capitalised words (any street suffix)
    rf"|\b(?:(?:Flat|Apt|Unit|Suite)\.?\s*\d+[A-Za-z]?,?\s+)?\d{{1,5}}[A-Za-z]?\s+[A-ZÀ-Ý][a-zà-ÿ]+(?:\s+[A-ZÀ-Ý][a-zà-ÿ]+){{1,3}}\b"
    rf"(?:,?\s+(?:Apt|Suite|Unit|Flat)\.?\s*\d+)?", re.UNICODE)
_NAME_WORD = r"[A-ZÀ-ÖØ-Þ][a-zà-öø-ÿ'’]+(?:-[A-ZÀ-ÖØ-Þ][a-zà-öø-ÿ'’]+)?"
_NAME = re.compile(rf"\b{_NAME_WORD}(?:\s+(?:(?:van|von|de|der|den|da|dos|das|del|di|la|le|du|ter)\s+)*{_NAME_WORD}){{1,3}}\b")
_NOT_NAMES = {"The", "This", "That", "What", "Which", "Who", "When", "Where", "Why", "How", "Question", "Answer",
              "Dear", "Hello", "Sure", "Yes", "No", "Mr", "Mrs", "Ms", "Dr", "In", "On", "At", "It", "He", "She",
              "They", "We", "I", "My", "His", "Her", "Their", "A", "An", "And", "But", "Or", "If", "University",
              "Institute", "College", "Street", "Road", "Avenue", "United", "States", "Kingdom", "January",
              "February", "March", "April", "May", "June", "July", "August", "September", "October", "November",
              "December", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"}


def _emails(text: str) -> Iterator[PIIHit]:
    for m in _EMAIL.finditer(text):
        yield PIIHit("email", m.span(), m.group(0), m.group(0).lower())


def _phones(text: str) -> Iterator[PIIHit]:
    for m in _PHONE.finditer(text):
        digits = re.sub(r"\D", "", m.group(0).split("x")[0].split("ext")[0])
        if 9 <= len(digits) <= 15 and not re.fullmatch(r"\d{4}[-/.]\d{1,2}[-/.]\d{1,2}", m.group(0).strip()):
            yield PIIHit("phone", m.span(), m.group(0), digits[-9:])  # last 9 digits: country prefix optional


def _dates(text: str) -> Iterator[PIIHit]:
    def hit(m: re.Match[str], y: str, mo: int, d: str) -> Iterator[PIIHit]:
        if 1 <= mo <= 12 and 1 <= int(d) <= 31:
            yield PIIHit("date", m.span(), m.group(0), f"{int(y):04d}-{mo:02d}-{int(d):02d}")

    for m in _DATE_DMY.finditer(text):
        yield from hit(m, m.group(3), _month(m.group(2)), m.group(1))
    for m in _DATE_MDY.finditer(text):
        yield from hit(m, m.group(3), _month(m.group(1)), m.group(2))
    for m in _DATE_ISO.finditer(text):
        yield from hit(m, m.group(1), int(m.group(2)), m.group(3))
    for m in _DATE_NUM.finditer(text):  # day first unless that is impossible
        a, b = int(m.group(1)), int(m.group(2))
        yield from hit(m, m.group(3), b if b <= 12 else a, str(a if b <= 12 else b))


def _addresses(text: str) -> Iterator[PIIHit]:
    for m in _ADDRESS.finditer(text):
        yield PIIHit("address", m.span(), m.group(0), re.sub(r"\W+", " ", m.group(0).lower()).strip())


def _names(text: str) -> Iterator[PIIHit]:
    for m in _NAME.finditer(text):
        words = m.group(0).split()
        while words and words[0] in _NOT_NAMES:
            words = words[1:]
        if len(words) >= 2 and not any(w in _NOT_NAMES for w in words):
            start = m.start() + m.group(0).index(words[0])
            name = " ".join(words)
            yield PIIHit("name", (start, start + len(name)), name, name.lower())


#: kind -> recogniser (text -> hits).
RECOGNISERS: dict[str, Callable[[str], Iterator[PIIHit]]] = {
    "email": _emails, "phone": _phones, "date": _dates, "address": _addresses, "name": _names,
}


def recognise(text: str, kinds: tuple[str, ...] = tuple(RECOGNISERS)) -> list[PIIHit]:
    """Every personal-data hit of the given kinds in ``text``, in order of position."""
    unknown = [k for k in kinds if k not in RECOGNISERS]
    if unknown:
        raise ConfigError(f"Unknown PII kind(s) {unknown}; valid kinds: {', '.join(RECOGNISERS)}.")
    return sorted((h for k in kinds for h in RECOGNISERS[k](text)), key=lambda h: h.span)


@dataclass(frozen=True)
class PIIConfig:
    """mode: ``protected`` (block only personal data of the forgotten subjects) or ``any``
    (block every hit: a blanket filter). kinds: recognisers used.
    """

    mode: str = "protected"
    kinds: tuple[str, ...] = ("email", "phone", "date", "address", "name")

    def __post_init__(self) -> None:
        problems = []
        if self.mode not in ("protected", "any"):
            problems.append(f"The 'mode' parameter of PIIConfig must be 'protected' or 'any'; got {self.mode!r} instead.")
        bad = [k for k in self.kinds if k not in RECOGNISERS]
        if bad:
            problems.append(f"The 'kinds' parameter of PIIConfig has unknown kind(s) {bad}; valid: {', '.join(RECOGNISERS)}.")
        if problems:
            raise ConfigError("Invalid PII guard configuration:", problems)
        object.__setattr__(self, "kinds", tuple(self.kinds))


class PIIGuard(Guard):
    name = "pii"
    summary = "Personal data (e-mail, phone, dates, addresses, names) by pattern; the forgotten subjects' only, or any."
    library = "re (own recognisers)"
    Config = PIIConfig

    def _fit(self, protected: Any) -> None:
        values: set[tuple[str, str]] = set()
        for name in protected.all_names():
            values.add(("name", name.lower()))
        # only distinctive answers: a value a retained person shares (a birthplace that reads as a
        # name) does not identify the forgotten subject, and blocking it refuses the look-alike
        for f in protected.facts:
            if not f.distinctive:
                continue
            for h in recognise(f.answer, self.config.kinds):
                values.add((h.kind, h.value))
        self.values_ = values

    def check(self, text: str, ctx: GuardContext) -> Decision:
        self._require_fitted()
        for h in recognise(text, self.config.kinds):
            if self.config.mode == "any" or (h.kind, h.value) in self.values_:
                why = "personal data" if self.config.mode == "any" else "a forgotten subject's personal data"
                return self.block(f"{why}: {h.kind}", span=h.span, matched=h.text)
        return self.allow()


GUARDS.register("pii", PIIGuard)
