"""Temperatures and pain scores: the number reader's readings applied to the reply.

Contract: ``read_numbers`` keeps the readings that are the patient's and current (not
hypothetical, not someone else's; a past temperature is only watched), adds the fever /
severe_pain flags and watch items their values call for, and returns (highest temperature
°F, highest pain score, current temperature °F) for the Assessment.
"""

from __future__ import annotations

import math
import re

from .decide import add_evidence
from .mentions import item_at
from .model import Evidence
from .negation import _CLAUSE_CUES, HARD, M_HYPO, M_PAST, M_THIRD, SOFT, Item
from .numbers import Reading

FEVER_F = 101.0  # the contract: >= 101.0 °F / 38.3 °C is fever (urgent)
LOW_GRADE_F = 100.4  # 100.4-100.9 °F is watch
SEVERE_PAIN = 8.0  # >= 8/10 severe_pain (urgent)
MODERATE_PAIN = 5.0  # 5-7 watch

_NUMBER_WORDS = frozenset(
    {
        "#",
        "hundred",
        "treinta",
        "cuarenta",
        "zero",
        "one",
        "two",
        "three",
        "four",
        "five",
        "six",
        "seven",
        "eight",
        "nine",
        "ten",
        "cero",
        "uno",
        "una",
        "dos",
        "tres",
        "cuatro",
        "cinco",
        "seis",
        "siete",
        "ocho",
        "nueve",
        "diez",
    }
)


# A pain score said of an earlier time ("it was a 9 last night, now a 4"; "9 yesterday, 3 today").
_EARLIER = re.compile(r"\b(?:yesterday|yday|last night|overnight|earlier|was|were|used to|ayer|anoche)\b")
_CLAUSE_EDGE = re.compile(r"[.,;!?]|\bbut\b|\bpero\b")


def _current_pains(text: str, pains: list[Reading]) -> list[Reading]:
    """When a reply gives pain scores for earlier and for now, the current ones decide; with
    no current score, every score stands (a 9 last night with nothing since is still a 9)."""
    low = text.lower()
    now = [r for r in pains if not _EARLIER.search(_clause_around(low, r.span))]
    return now if now else pains


def _clause_around(low: str, span: tuple[int, int]) -> str:
    """The text of the clause holding ``span`` (between clause edges)."""
    a = max((m.end() for m in _CLAUSE_EDGE.finditer(low, 0, span[0])), default=0)
    m = _CLAUSE_EDGE.search(low, span[1])
    return low[a : m.start() if m else len(low)]


def has_number(words: list[str], text: str) -> bool:
    """Cheap pre-check so replies without any number skip the number reader."""
    return not _NUMBER_WORDS.isdisjoint(words)


def read_numbers(
    text: str,
    readings: list[Reading],
    starts: list[int],
    items: list[Item],
    clause: list[int],
    mods: list[int],
    flags: dict[str, list[Evidence]],
    watch: dict[str, list[Evidence]],
    ambiguous: dict[str, list[Evidence]],
) -> tuple[float | None, int | None, float | None]:
    """Apply temperature and pain readings; returns (temperature_f, pain_score, current °F)."""
    current: list[tuple[float, Reading]] = []
    past: list[tuple[float, Reading]] = []
    pains: list[Reading] = []
    for r in readings:
        k = item_at(r.span[0], starts, items)
        m = _clause_bits(k, items, clause, mods) if k >= 0 else 0
        if m & (M_HYPO | M_THIRD):
            continue
        if r.kind == "temp":
            (past if m & M_PAST else current).append((r.value, r))
        else:
            pains.append(r)
    if len(pains) > 1:
        pains = _current_pains(text, pains)
    temperature_f: float | None = None
    current_temp: float | None = None
    if current:
        v, r = max(current, key=lambda x: x[0])
        temperature_f = current_temp = v
        if v >= FEVER_F:
            add_evidence(flags, "fever", text, r.span, "flag")
        elif v >= LOW_GRADE_F:
            add_evidence(watch, "low_grade_temp", text, r.span, "watch")
    if past:
        v, r = max(past, key=lambda x: x[0])
        if temperature_f is None:
            temperature_f = v
        if v >= LOW_GRADE_F and not (current_temp is not None and current_temp >= FEVER_F):
            add_evidence(watch, "fever_past", text, r.span, "watch")
    pain_score: int | None = None
    if pains:
        r = max(pains, key=lambda x: (x.value, x.high))
        pain_score = math.floor(r.value)
        if r.value >= SEVERE_PAIN:
            add_evidence(flags, "severe_pain", text, r.span, "flag")
        elif r.value >= MODERATE_PAIN:
            add_evidence(watch, "mild_pain", text, r.span, "watch")
        if r.low < SEVERE_PAIN <= r.high and r.value < SEVERE_PAIN:
            add_evidence(ambiguous, "pain", text, r.span, "ambiguous")
    return temperature_f, pain_score, current_temp


def _clause_bits(k: int, items: list[Item], clause: list[int], mods: list[int]) -> int:
    """Modifiers of any symptom mention in the clause of item ``k`` (numbers are not terms)."""
    if mods[k]:
        return mods[k]
    ci = clause[k]
    if ci < 0:
        return 0
    bits = 0
    for j, (_a, _b, labels) in enumerate(items):
        if clause[j] == ci:
            bits |= mods[j]
            if labels is not None and labels is not HARD and labels is not SOFT:
                for lab, bit in _CLAUSE_CUES.items():
                    if lab in labels:
                        bits |= bit
                if "c:third" in labels:
                    bits |= M_THIRD
    return bits
