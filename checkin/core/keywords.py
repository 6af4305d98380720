"""Classify an inbound text as a carrier keyword (STOP / START / HELP), an opt-out candidate,
or ordinary content. Pure: no I/O, no clock.

Rules (as Twilio and US carriers apply them to long codes, plus the Spanish words patients use):

- Only the *whole* message is a keyword. It is normalized first: Unicode NFKC (so full-width
  ``ＳＴＯＰ`` is ``STOP``), accents dropped, case folded, invisible format characters (zero-width
  space, RTL override) removed, and surrounding spaces and punctuation stripped (``Stop.``,
  ``"stop!"``). ``STOP ALL`` counts as ``STOPALL``.
- STOP words always opt out. START words always opt back in. ``YES`` / ``SÍ`` opt back in only
  when the sender is opted out (otherwise YES is an answer to a check-in question).
- A message that is not a keyword but clearly asks us to stop texting ("stop texting me",
  "no more messages", "dejen de mandarme mensajes") is an **opt-out candidate**. The FCC's 2024
  rule lets patients revoke consent "in any reasonable manner", so exact keywords alone are not
  enough; but such phrases are ambiguous enough ("stop the texts until my surgery?") that a
  person should look. The caller pauses SMS at once (fails safe: nothing more is sent) and asks
  the care team to review. "I can't stop throwing up" is *not* a candidate: the phrase must be
  about messages.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from enum import StrEnum


class Keyword(StrEnum):
    STOP = "stop"
    START = "start"
    HELP = "help"

    def __str__(self) -> str:
        return self.value


# keyword word (normalized) -> (keyword, language of the word)
_STOP_WORDS = {
    "stop": "en",
    "stopall": "en",
    "unsubscribe": "en",
    "cancel": "en",
    "end": "en",
    "quit": "en",
    "revoke": "en",
    "optout": "en",
    "opt out": "en",
    "alto": "es",
    "parar": "es",
    "pare": "es",
    "detener": "es",
    "cancelar": "es",
    "baja": "es",
    # Canadian carriers' French opt-out word; honouring it is the safe side of the error.
    "arret": "en",
}
_START_WORDS = {
    "start": "en",
    "unstop": "en",
    "inicio": "es",
    "iniciar": "es",
    "comenzar": "es",
    "reanudar": "es",
}
# Opt-in only when the sender is opted out: otherwise "yes" answers a question.
_OPT_IN_ANSWERS = {"yes": "en", "si": "es"}
_HELP_WORDS = {"help": "en", "info": "en", "ayuda": "es", "informacion": "es"}

_TABLE: dict[str, tuple[Keyword, str]] = {
    **{w: (Keyword.STOP, lang) for w, lang in _STOP_WORDS.items()},
    **{w: (Keyword.START, lang) for w, lang in _START_WORDS.items()},
    **{w: (Keyword.HELP, lang) for w, lang in _HELP_WORDS.items()},
}

# Phrases that ask us to stop *messaging*; checked on the normalized text.
_CANDIDATE = re.compile(
    r"""
    \b(?:
        (?:stop|quit|cease|no\ more|don'?t|do\ not|never)\s+(?:\w+\s+){0,2}?
            (?:text(?:ing|s)?|messag(?:e|es|ing)|sms|sending|contact(?:ing)?|writing)\b
      | unsubscrib\w*
      | opt\ ?(?:me\ )?out
      | remove\ (?:me|my\ number)
      | take\ me\ off
      # Spanish
      | no\ (?:me\ )?(?:manden|envien|mande|envie|escriban|escriba|contacten)\b
      | (?:dej(?:e|en|ar)\ de|ya\ no\ (?:quiero|deseo)|no\ quiero|no\ mas)\s+(?:\w+\s+){0,2}?
            (?:mensajes?|textos?|mandar(?:me)?|enviar(?:me)?|escribir(?:me)?)\b
      | dar(?:me)?\ de\ baja
      | (?:quitar|quiten|borr(?:ar|en))(?:me)?\ (?:de\ la\ lista|mi\ numero)
    )
    """,
    re.VERBOSE,
)

# Characters with no glyph that change how text looks or compares (ZWSP, ZWJ, RTL override,
# BOM...): Unicode category Cf. Dropped before matching so "ST\u200bOP" is STOP.
_FORMAT = "Cf"


def normalize(text: str) -> str:
    """The comparison form of ``text``: NFKC, no format characters, no accents, case folded,
    inner whitespace collapsed, surrounding whitespace and punctuation/symbols stripped."""
    t = unicodedata.normalize("NFKC", text)
    t = "".join(c for c in t if unicodedata.category(c) != _FORMAT and c != "\x00")
    # Drop accents (combining marks after NFD), so "información" and "informacion" agree.
    t = "".join(c for c in unicodedata.normalize("NFD", t) if not unicodedata.combining(c))
    t = unicodedata.normalize("NFC", t).casefold()
    t = " ".join(t.split())
    start, end = 0, len(t)
    while start < end and _is_edge(t[start]):
        start += 1
    while end > start and _is_edge(t[end - 1]):
        end -= 1
    return t[start:end]


def _is_edge(c: str) -> bool:
    return c.isspace() or unicodedata.category(c)[0] in ("P", "S")


@dataclass(frozen=True)
class Classification:
    """``keyword`` is set for an exact keyword; ``optout_candidate`` for a free-text request to
    stop messages (never both). ``language`` is the keyword's language ("en"/"es"), None for
    content."""

    keyword: Keyword | None = None
    optout_candidate: bool = False
    language: str | None = None

    @property
    def is_content(self) -> bool:
        return self.keyword is None


def classify(text: str, *, opted_out: bool = False) -> Classification:
    """Classify one inbound message. ``opted_out`` is the sender's current SMS state: YES/SÍ
    means START only then."""
    norm = normalize(text)
    squeezed = norm.replace(" ", "")
    hit = _TABLE.get(norm) or _TABLE.get(squeezed)
    if hit is not None:
        return Classification(keyword=hit[0], language=hit[1])
    if opted_out:
        lang = _OPT_IN_ANSWERS.get(norm)
        if lang is not None:
            return Classification(keyword=Keyword.START, language=lang)
    if _CANDIDATE.search(norm):
        return Classification(optout_candidate=True)
    return Classification()
