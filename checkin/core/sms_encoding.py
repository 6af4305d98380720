"""How an SMS body will be encoded and how many segments (billed messages) it costs. Pure.

The rules (3GPP TS 23.038, and what Twilio bills):

- If every character is in the GSM 03.38 basic set or its extension table, the message is
  GSM-7. Basic characters cost 1 septet, extension characters (``^ { } [ ] ~ \\ | €`` and form
  feed) cost 2 (an escape plus the character). One segment holds 160 septets; a longer message
  is split into segments of 153 septets (7 go to the concatenation header), and an escape pair is
  never split across two segments.
- Otherwise the whole message is UCS-2: it is counted in UTF-16 code units (an emoji outside the
  Basic Multilingual Plane is a surrogate pair: 2 units). One segment holds 70 units; longer
  messages are split into segments of 67, and a surrogate pair is never split.

A single accidental character (a curly quote pasted from a word processor, a non-breaking
space) turns a 150-character text from 1 GSM-7 segment into 3 UCS-2 segments, which is why
``normalize_sms`` replaces the common ones with their GSM-7 equivalents.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

Encoding = Literal["GSM-7", "UCS-2"]

# GSM 03.38 basic character set, in table order (0x1B, the escape, is left out: it is not a
# character a text can contain).
GSM7_BASIC: frozenset[str] = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞ\x1bÆæßÉ"
    " !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§"
    "¿abcdefghijklmnopqrstuvwxyzäöñüà"
) - {"\x1b"}

# GSM 03.38 extension table: each costs two septets.
GSM7_EXTENSION: frozenset[str] = frozenset("\f^{}\\[~]|€")

GSM7_SINGLE, GSM7_MULTI = 160, 153
UCS2_SINGLE, UCS2_MULTI = 70, 67


@dataclass(frozen=True)
class SmsInfo:
    encoding: Encoding
    segments: int  # 0 for an empty text
    length: int  # septets for GSM-7, UTF-16 code units for UCS-2
    non_gsm_chars: tuple[str, ...]  # distinct characters that forced UCS-2, in order of appearance


def is_gsm7(char: str) -> bool:
    return char in GSM7_BASIC or char in GSM7_EXTENSION


def non_gsm_positions(text: str) -> list[tuple[int, str]]:
    """``(index, character)`` for every character of ``text`` that GSM-7 cannot carry."""
    return [(i, c) for i, c in enumerate(text) if not is_gsm7(c)]


def _uniform(units: int, single: int, multi: int) -> int:
    """Segments needed for ``units`` units of cost 1 each: no unit can straddle two segments."""
    return 0 if units == 0 else 1 if units <= single else -(-units // multi)


def _pack(costs: list[int], single: int, multi: int) -> int:
    """Segments needed for units of the given costs, never splitting one unit's cost."""
    total = sum(costs)
    if total <= single or total == len(costs):
        return _uniform(total, single, multi)
    segments, used = 1, 0
    for cost in costs:
        if used + cost > multi:
            segments += 1
            used = 0
        used += cost
    return segments


def segments(text: str) -> SmsInfo:
    """Encoding, segment count and length of ``text`` exactly as it would be sent."""
    if GSM7_BASIC.issuperset(text):
        # Nearly every text: one septet a character, so the count needs no per-character walk
        # (`python -m timeit -s "from checkin.core.sms_encoding import segments"
        # "segments('x' * 100)"` against the walk below).
        return SmsInfo("GSM-7", _uniform(len(text), GSM7_SINGLE, GSM7_MULTI), len(text), ())
    bad = tuple(dict.fromkeys(c for c in text if not is_gsm7(c)))
    if not bad:
        costs = [2 if c in GSM7_EXTENSION else 1 for c in text]
        return SmsInfo("GSM-7", _pack(costs, GSM7_SINGLE, GSM7_MULTI), sum(costs), ())
    costs = [2 if ord(c) > 0xFFFF else 1 for c in text]
    return SmsInfo("UCS-2", _pack(costs, UCS2_SINGLE, UCS2_MULTI), sum(costs), bad)


# Characters with a GSM-7 equivalent that editors and word processors insert on their own.
# Any one of them makes the whole text UCS-2, which costs about twice as many segments.
_REPLACEMENTS = {
    "\u00a0": " ",  # no-break space
    "\u2007": " ",  # figure space
    "\u2009": " ",  # thin space
    "\u202f": " ",  # narrow no-break space
    "\u2018": "'",
    "\u2019": "'",
    "\u201a": "'",
    "\u201b": "'",
    "\u2032": "'",  # prime, often typed for an apostrophe
    "\u201c": '"',
    "\u201d": '"',
    "\u201e": '"',
    "\u2010": "-",  # hyphen
    "\u2011": "-",  # non-breaking hyphen
    "\u2012": "-",  # figure dash
    "\u2013": "-",  # en dash
    "\u2014": "-",  # em dash
    "\u2015": "-",  # horizontal bar
    "\u2212": "-",  # minus sign
    "\u2026": "...",
    "\u200b": "",  # zero-width space: invisible, but still forces UCS-2
    "\ufeff": "",  # byte-order mark / zero-width no-break space
}
_TRANSLATION = str.maketrans(_REPLACEMENTS)
_TRAILING_SPACE = re.compile(r"[ \t]+\n")
_BLANK_LINES = re.compile(r"\n{3,}")


def normalize_sms(text: str) -> str:
    """Text as it should be sent: lookalike characters replaced by their GSM-7 equivalents,
    CRLF made LF, trailing spaces on lines and runs of blank lines removed, ends stripped.

    Why: one curly quote or non-breaking space turns the message into UCS-2, which holds 70
    instead of 160 characters per segment and so costs about twice as much.
    """
    text = text.translate(_TRANSLATION).replace("\r\n", "\n")
    text = _TRAILING_SPACE.sub("\n", text)
    text = _BLANK_LINES.sub("\n\n", text)
    return text.strip()
