"""Decoders for encoded outputs, applied before the matchers.

A model (or a user steering it) can hide a protected answer by encoding it:
base64, hexadecimal, reversed text. :func:`decoded_views` finds the segments of a
text that decode to readable text and returns each decoded segment with the
source span it came from, so a match inside a decoded view is reported (and can
be redacted) at the encoded segment. Spelled-out text ("L, Y, O, N") and one
character per line are closed up by :func:`obliviate.suppression.normalize.canonical`
itself, so they need no decoder here.
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass

__all__ = ["DecodedView", "decoded_views", "DECODERS"]

_B64 = re.compile(r"(?<![A-Za-z0-9+/=])[A-Za-z0-9+/]{4,}={0,2}(?![A-Za-z0-9+/=])")
_HEX = re.compile(r"(?<![0-9A-Fa-f])(?:0x)?(?:[0-9A-Fa-f]{2}[\s:-]?){3,}(?![0-9A-Fa-f])")


@dataclass(frozen=True)
class DecodedView:
    """Decoded text and the ``(start, end)`` source span of the encoded segment."""

    decoder: str
    text: str
    span: tuple[int, int]


def _printable(data: bytes) -> str | None:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return None
    if not text or sum(c.isprintable() or c.isspace() for c in text) < 0.9 * len(text):
        return None
    return text


def _base64(text: str) -> list[DecodedView]:
    out = []
    for m in _B64.finditer(text):
        seg = m.group(0)
        if (seg.isalpha() and (seg.islower() or seg.isupper() or seg[1:].islower())) or len(seg.rstrip("=")) % 4 == 1:
            continue  # an ordinary word, or a length base64 cannot have
        padded = seg + "=" * (-len(seg) % 4)
        try:
            decoded = _printable(base64.b64decode(padded, validate=True))
        except (binascii.Error, ValueError):
            continue
        if decoded:
            out.append(DecodedView("base64", decoded, m.span()))
    return out


def _hex(text: str) -> list[DecodedView]:
    out = []
    for m in _HEX.finditer(text):
        digits = re.sub(r"[^0-9A-Fa-f]", "", m.group(0).removeprefix("0x"))
        if len(digits) % 2:
            continue
        try:
            decoded = _printable(bytes.fromhex(digits))
        except ValueError:
            continue
        # all-digit runs are usually numbers (phones, dates): keep them only if they decode to words
        if decoded and (not digits.isdigit() or sum(c.isalpha() for c in decoded) >= 0.6 * len(decoded)):
            out.append(DecodedView("hex", decoded, m.span()))
    return out


def _reversed(text: str) -> list[DecodedView]:
    return [DecodedView("reversed", text[::-1], (0, len(text)))] if text.strip() else []


#: name -> decoder; each returns the decoded views it finds.
DECODERS = {"base64": _base64, "hex": _hex, "reversed": _reversed}


def decoded_views(text: str, *, decoders: tuple[str, ...] = tuple(DECODERS)) -> list[DecodedView]:
    """Every decoded view of ``text`` by the named decoders (the text itself not included)."""
    out: list[DecodedView] = []
    for name in decoders:
        out.extend(DECODERS[name](text))
    return out
