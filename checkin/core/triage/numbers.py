"""Temperatures and pain scores in a reply.

Contract: ``NumberReader(lexicon).read(folded_text, context)`` returns every number that reads
as a temperature (always converted to °F) or a pain score (0-10), with its span in the text.
It does not judge negation or time; ``assess`` does that per clause.

A number is a temperature when it carries a unit (101 F, 38.6C, 101°, 38 grados), follows a
temperature word (temp, fever, fiebre, temperatura...), or - under ``fever_check`` - is bare
and plausible (°F 90-110, °C 34-43).  A decimal in 99-107 counts anywhere (nobody writes
"101.5" about anything else in these replies).  A number is a pain score when written as
x/10, "x out of 10", "x de 10", follows a pain word ("pain is a 9"), or - under
``pain_scale`` only, and only if no explicit score is present - is a bare 0-10.  Numbers
followed by a unit of weight, time, dose or count (8 lbs, 6pm, 4 días, 10x) are neither.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from .lexicon import Lexicon

_NUM = r"\d{1,3}(?:[.,]\d{1,2})?"
NUM_RE = re.compile(rf"(?<![\d.,])({_NUM})(?!\d)(?:\s*(?:-|–|to|or)\s*({_NUM})(?!\d))?")

_FRAC_AFTER = re.compile(r"\s*(?:/|out of|of|de|sobre|en)\s*(?:10|ten|diez)\b")
_EXCLUDE_AFTER = re.compile(
    r"\s*(?:a\.?m\b|p\.?m\b|:\d|lbs?\b|pounds?\b|kgs?\b|kilos?\b|mg\b|mcg\b|ml\b|cc\b|x\b|"
    r"times\b|veces\b|days?\b|dias?\b|hours?\b|hrs?\b|horas?\b|h\b|mins?\b|minutes?\b|"
    r"minutos?\b|weeks?\b|wks?\b|semanas?\b|months?\b|meses\b|mes\b|years?\b|yrs?\b|anos?\b|"
    r"steps\b|pasos\b|pills?\b|pastillas?\b|tabs?\b|tablets?\b|%|mm\b|cm\b|inch|in\b|"
    r"feet\b|ft\b|miles?\b|oz\b|th\b|st\b|nd\b|rd\b|o'?clock|level|levels|flights?|stairs|"
    r"laps|reps|sets|blocks|cups?|glasses|vasos?|litros?|liters?|lb)"
)
# A reading of the weather or a room, not of the patient ("it's 101 degrees outside").
_WEATHER_AFTER = re.compile(
    r"\s*(?:°|degrees?|deg|grados)?\s*(?:f\b|fahrenheit\b)?\s*(?:out(?:side|doors| there| today)\b|"
    r"in (?:here|the house|my house|the room)\b|afuera\b|de calor\b|and humid\b|heat\b)"
)
_WEATHER_BEFORE = re.compile(
    r"\b(?:weather|outside|outdoors|heat index|forecast|thermostat|oven|afuera|clima|hot out)\b"
    r"[^.!?\d]{0,25}$"
)
# "10/10 would recommend", "ten out of ten for the doctor": a rating of the care, not pain.
_RATING_AFTER = re.compile(
    r"\W*(?:(?:would|wud|id|i'?d|will|def|definitely|totally)?\s*recommend|"
    r"(?:for|to|para) (?:the |my |el |la |los |las )?(?:doctor|dr|doc|nurses?|staff|care|team|"
    r"service|hospital|surgeon|enfermeras?|doctora?|equipo))"
)
PAIN_WORDS_BETWEEN = 6  # "pain is a 9": at most this many words between the pain word and the score
_F_AFTER = re.compile(r"\s*(?:°|degrees?|deg|grados)?\s*(?:f|fahrenheit|farenheit)\b")
_C_AFTER = re.compile(r"\s*(?:°|degrees?|deg|grados)?\s*(?:c|celsius|centigrados?)\b")
_DEG_AFTER = re.compile(r"\s*(?:°|degrees?\b|deg\b|grados\b)")
_EXCLUDE_BEFORE = re.compile(
    r"(?:\bday|\bdia|\bx|#|\broom|\bstep|\bweek|\bsemana|\bat|"
    r"\bsince|\bfor|\bpor|\bdesde|\blast|\bnumber|\bno\.)\s*$"
)
# _EXCLUDE_BEFORE.search(before) without the regex (which tries every position of the
# window): ``before`` minus trailing whitespace ends with one of these, at a word boundary.
_EXCLUDE_BEFORE_WORDS = (
    "day",
    "dia",
    "x",
    "room",
    "step",
    "week",
    "semana",
    "at",
    "since",
    "for",
    "por",
    "desde",
    "last",
    "number",
    "no.",
)


def _excluded_before(before: str) -> bool:
    """Same answer as ``_EXCLUDE_BEFORE.search(before) is not None``."""
    t = before.rstrip()
    if t.endswith("#"):
        return True
    for w in _EXCLUDE_BEFORE_WORDS:
        if t.endswith(w):
            i = len(t) - len(w)
            if i == 0 or not (t[i - 1].isalnum() or t[i - 1] == "_"):
                return True
    return False


def _no_match(_s: str) -> None:
    return None


_WORD_NUM = {
    "zero": 0,
    "one": 1,
    "two": 2,
    "three": 3,
    "four": 4,
    "five": 5,
    "six": 6,
    "seven": 7,
    "eight": 8,
    "nine": 9,
    "ten": 10,
    "cero": 0,
    "uno": 1,
    "una": 1,
    "dos": 2,
    "tres": 3,
    "cuatro": 4,
    "cinco": 5,
    "seis": 6,
    "siete": 7,
    "ocho": 8,
    "nueve": 9,
    "diez": 10,
}
_WN = "|".join(_WORD_NUM)
WORD_NUM_RE = re.compile(rf"\b({_WN})\b")
_BARE_WORD_RE = re.compile(
    rf"\W*(?:about |around |like |maybe |probably |a |an |un |una |como |es |esta |tipo )*({_WN})\W*$"
)
# Under pain_scale, a spelled score that opens the reply: "ten, I haven't slept", "eight period"
# (dictated punctuation), "Ten plus.", "Oh about a nine nine and a half".
_LEADING_WORD_RE = re.compile(
    rf"\W*(?:oh |um |well |about |around |like |maybe |probably |a |an |un |una |como |es )*({_WN})"
    rf"(?=\W*$|\s*(?:[.,!;]|plus\b|period\b|and a half\b|or\b|to\b|{_WN}\b))"
)
_EN_UNITS = "one|two|three|four|five|six"
_DIGIT_WORDS = "zero|one|two|three|four|five|six|seven|eight|nine|\\d"
SPELLED_F_RE = re.compile(
    rf"\b(?:a |one )?hundred (?:and )?({_EN_UNITS})(?: point ({_DIGIT_WORDS}))?\b"
    rf"|\bone (?:oh|o|zero) ({_EN_UNITS})(?: point ({_DIGIT_WORDS}))?\b"
)
SPELLED_C_RE = re.compile(
    r"\b(treinta y (seis|siete|ocho|nueve)|cuarenta)"
    r"(?: (?:punto|coma|y) (medio|cinco|uno|dos|tres|cuatro|seis|siete|ocho|nueve))?\b"
)
_ES_UNITS = {"seis": 36, "siete": 37, "ocho": 38, "nueve": 39}
_TENTHS = {
    "medio": 5,
    "cinco": 5,
    "uno": 1,
    "dos": 2,
    "tres": 3,
    "cuatro": 4,
    "seis": 6,
    "siete": 7,
    "ocho": 8,
    "nueve": 9,
    "zero": 0,
    "one": 1,
    "two": 2,
    "three": 3,
    "four": 4,
    "five": 5,
    "six": 6,
    "seven": 7,
    "eight": 8,
    "nine": 9,
}

Kind = Literal["temp", "pain"]


@dataclass(frozen=True, slots=True)
class Reading:
    """One number: ``value`` is °F for temperatures, 0-10 for pain (a range gives its mean,
    ``low``/``high`` its ends); ``explicit`` is False for a bare number read from context."""

    kind: Kind
    value: float
    span: tuple[int, int]
    explicit: bool
    low: float
    high: float


def _f_from(value: float, unit: str | None) -> float | None:
    """°F from a value in ``unit`` (None: guess from the range); None if not plausible."""
    if unit == "c" or (unit is None and 34.0 <= value <= 43.0):
        return round(value * 9 / 5 + 32, 1) if 30.0 <= value <= 45.0 else None
    if 90.0 <= value <= 110.0:
        return value
    return None


def _num(s: str) -> float:
    return float(s.replace(",", "."))


class NumberReader:
    """Compiled once per lexicon: the anchor-word regexes come from the lexicon sets
    ``temp_words`` and ``pain_words`` so clinicians can extend them."""

    def __init__(self, lex: Lexicon) -> None:
        def alternation(name: str) -> str:
            words = sorted(lex.sets.get(name, ()), key=len, reverse=True)
            return "|".join(re.escape(w) for w in words) or "(?!)"

        # anchor word, then at most 3 words ("pain is a 9", "fever of 101", "temp was like 38,5")
        self.temp_before = re.compile(rf"(?:\b(?:{alternation('temp_words')})\b|🌡)\W*(?:[a-z]+\W+){{0,3}}$")
        self.pain_before = re.compile(
            rf"\b(?:{alternation('pain_words')})\b\W*(?:[a-z]+\W+){{0,{PAIN_WORDS_BETWEEN}}}$"
        )
        # Any anchor word anywhere in the reply at all?  If not, the (costly, every-position)
        # anchor searches of its number windows cannot match and are skipped.
        self.temp_hint = re.compile(rf"{alternation('temp_words')}|🌡")
        self.pain_hint = re.compile(alternation("pain_words"))

    def read(self, s: str, context: str) -> list[Reading]:
        """All temperature and pain readings in folded text ``s`` (see module docstring)."""
        out: list[Reading] = []
        bare_pain: list[Reading] = []
        temp_before = self.temp_before.search if self.temp_hint.search(s) else _no_match
        pain_before = self.pain_before.search if self.pain_hint.search(s) else _no_match
        done = 0  # the end of the last "x out of 10": its 10 is no reading of its own
        for m in NUM_RE.finditer(s):
            if m.start() >= done:
                done = self._classify(s, m, context, out, bare_pain, temp_before, pain_before)
        _spelled(s, context, out, temp_before, pain_before)
        if context == "pain_scale" and not bare_pain:
            bare = _BARE_WORD_RE.match(s) or _LEADING_WORD_RE.match(s)  # "ten", "a nine", "ten, ..."
            if bare:
                v = float(_WORD_NUM[bare.group(1)])
                bare_pain.append(Reading("pain", v, bare.span(1), False, v, v))
        if bare_pain and not any(r.kind == "pain" for r in out):
            out.extend(bare_pain)
        return out

    def _classify(
        self,
        s: str,
        m: re.Match[str],
        context: str,
        out: list[Reading],
        bare_pain: list[Reading],
        temp_before: Callable[[str], object],
        pain_before: Callable[[str], object],
    ) -> int:
        """Classify one number; returns where the next reading may start."""
        lo = _num(m.group(1))
        hi = _num(m.group(2)) if m.group(2) else lo
        v = (lo + hi) / 2
        a, b = m.span()
        after = s[b : b + 16]
        before = s[max(0, a - 40) : a]
        frac = _FRAC_AFTER.match(after)
        if frac:
            if hi <= 10 and not _RATING_AFTER.match(s, b + frac.end()):
                out.append(Reading("pain", v, (a, b), True, lo, hi))
            return b + frac.end()
        if _EXCLUDE_AFTER.match(after) or _weather(s, a, b):
            return b
        r = _anchored(v, lo, hi, (a, b), after, before, temp_before, pain_before)
        if r is not None:
            out.append(r)
            return b
        if _excluded_before(before):
            return b
        decimal = "." in m.group(1) or "," in m.group(1)
        r = _bare(v, lo, hi, (a, b), context, decimal)
        if r is not None:
            (bare_pain if r.kind == "pain" and context == "pain_scale" else out).append(r)
        return b


def _anchored(
    v: float,
    lo: float,
    hi: float,
    span: tuple[int, int],
    after: str,
    before: str,
    temp_before: Callable[[str], object],
    pain_before: Callable[[str], object],
) -> Reading | None:
    """A number with a unit after it, or a temperature/pain word before it."""
    unit: str | None = None
    if _F_AFTER.match(after):
        unit = "f"
    elif _C_AFTER.match(after):
        unit = "c"
    if unit or _DEG_AFTER.match(after) or temp_before(before):
        f = _f_from(v, unit)
        if f is not None:
            return Reading("temp", f, span, True, lo, hi)
    if pain_before(before) and hi <= 10:
        return Reading("pain", v, span, True, lo, hi)
    return None


def _bare(
    v: float, lo: float, hi: float, span: tuple[int, int], context: str, decimal: bool
) -> Reading | None:
    """A number with nothing around it: the question decides (fever check: a temperature;
    pain scale: a score); elsewhere only a decimal in 99-107 reads as °F."""
    if context == "fever_check":
        f = _f_from(v, None)
        if f is not None:
            return Reading("temp", f, span, False, lo, hi)
    if context == "pain_scale" and hi <= 10:
        return Reading("pain", v, span, False, lo, hi)
    if decimal and 99.0 <= v <= 107.0:
        return Reading("temp", v, span, False, lo, hi)
    if decimal and 35.0 <= v <= 42.5:  # "tengo 38,9": a decimal in this range is °C
        f = round(v * 9 / 5 + 32, 1)
        return Reading("temp", f, span, False, f, f)
    return None


def _weather(s: str, a: int, b: int) -> bool:
    """The number at ``s[a:b]`` is the weather's or a room's temperature."""
    return bool(_WEATHER_AFTER.match(s, b, b + 30) or _WEATHER_BEFORE.search(s, max(0, a - 40), a))


def _spelled(
    s: str,
    context: str,
    out: list[Reading],
    temp_before: Callable[[str], object],
    pain_before: Callable[[str], object],
) -> None:
    """Spelled-out readings: "a hundred and one", "treinta y ocho", "pain is a nine"."""
    if "hundred" in s or " oh " in s or " o " in s:
        for m in SPELLED_F_RE.finditer(s):
            units = m.group(1) or m.group(3)
            tenth = m.group(2) or m.group(4)
            v = 100 + _WORD_NUM[units] + (_tenth(tenth) / 10 if tenth else 0.0)
            out.append(Reading("temp", v, m.span(), True, v, v))
    if "treinta" in s or "cuarenta" in s:
        for m in SPELLED_C_RE.finditer(s):
            c = 40.0 if m.group(1) == "cuarenta" else float(_ES_UNITS[m.group(2)])
            if m.group(3):
                c += _TENTHS[m.group(3)] / 10
            before = s[max(0, m.start() - 40) : m.start()]
            if context == "fever_check" or temp_before(before):
                f = round(c * 9 / 5 + 32, 1)
                out.append(Reading("temp", f, m.span(), True, f, f))
    _spelled_pain(s, out, pain_before)


def _spelled_pain(s: str, out: list[Reading], pain_before: Callable[[str], object]) -> None:
    """Pain scores in words: "eight out of ten", "pain is a nine" (not "ten out of ten for
    the nurses", a rating)."""
    done = 0
    for m in WORD_NUM_RE.finditer(s):
        if m.start() < done:
            continue  # the "ten" of "x out of ten"
        after = s[m.end() : m.end() + 16]
        before = s[max(0, m.start() - 40) : m.start()]
        v = float(_WORD_NUM[m.group(1)])
        frac = _FRAC_AFTER.match(after)
        if frac:
            done = m.end() + frac.end()
            if _RATING_AFTER.match(s, done):
                continue
        if frac or (pain_before(before) and not _EXCLUDE_AFTER.match(after)):
            out.append(Reading("pain", v, m.span(), True, v, v))


def _tenth(word: str) -> int:
    return int(word) if word.isdigit() else _TENTHS[word]
