"""Value types of the triage result: flags, severities, evidence and the assessment itself.

Contract (docs/adr/0005-triage-rules-and-data-files.md): flag codes and severity names are the wire format;
both enums are ``str`` enums so ``Flag.FEVER == "fever"`` and JSON output needs no mapping.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Literal


class Flag(StrEnum):
    """The red-flag codes of the triage contract (docs/adr/0005); ``fusion_concern`` is watch."""

    FEVER = "fever"
    WOUND_DRAINAGE = "wound_drainage"
    WOUND_REDNESS = "wound_redness"
    NEW_NUMBNESS = "new_numbness"
    NEW_WEAKNESS = "new_weakness"
    BOWEL_BLADDER = "bowel_bladder"
    CHEST_BREATHING = "chest_breathing"
    CALF_CLOT = "calf_clot"
    SEVERE_PAIN = "severe_pain"
    CSF_LEAK = "csf_leak"
    SWALLOWING = "swallowing"
    FALL = "fall"
    SELF_HARM = "self_harm"
    FUSION_CONCERN = "fusion_concern"

    def __str__(self) -> str:
        return self.value


class Severity(StrEnum):
    """Action level, ordered none < watch < urgent < emergency (compare with ``rank``)."""

    NONE = "none"
    WATCH = "watch"
    URGENT = "urgent"
    EMERGENCY = "emergency"

    @property
    def rank(self) -> int:
        return _RANK[self]

    def __lt__(self, other: object) -> bool:
        if not isinstance(other, Severity):
            return NotImplemented
        return _RANK[self] < _RANK[other]

    def __le__(self, other: object) -> bool:
        if not isinstance(other, Severity):
            return NotImplemented
        return _RANK[self] <= _RANK[other]

    def __gt__(self, other: object) -> bool:
        if not isinstance(other, Severity):
            return NotImplemented
        return _RANK[self] > _RANK[other]

    def __ge__(self, other: object) -> bool:
        if not isinstance(other, Severity):
            return NotImplemented
        return _RANK[self] >= _RANK[other]

    def __str__(self) -> str:
        return self.value


_RANK = {Severity.NONE: 0, Severity.WATCH: 1, Severity.URGENT: 2, Severity.EMERGENCY: 3}

# Severity of each flag, straight from the contract table (docs/adr/0005): three emergencies,
# fusion signs are watch (the care team sees them at the next review), the rest urgent.
FLAG_SEVERITY: dict[Flag, Severity] = dict.fromkeys(Flag, Severity.URGENT) | {
    Flag.BOWEL_BLADDER: Severity.EMERGENCY,
    Flag.CHEST_BREATHING: Severity.EMERGENCY,
    Flag.SELF_HARM: Severity.EMERGENCY,
    Flag.FUSION_CONCERN: Severity.WATCH,
}

EvidenceKind = Literal["flag", "watch", "ambiguous"]
Layer = Literal["rules", "learned"]


@dataclass(frozen=True, slots=True)
class Evidence:
    """Why something was concluded: ``topic`` is a flag code (kind ``flag``), a watch topic
    (kind ``watch``) or an ambiguous topic (kind ``ambiguous``); ``words`` is the exact slice
    ``text[span[0]:span[1]]`` of the reply that triggered it; ``layer`` says whether the
    lexicon rules or the learned layer concluded it."""

    topic: str
    words: str
    span: tuple[int, int]
    kind: EvidenceKind = "flag"
    layer: Layer = "rules"

    def to_dict(self) -> dict[str, Any]:
        return {
            "topic": self.topic,
            "kind": self.kind,
            "layer": self.layer,
            "words": self.words,
            "span": [self.span[0], self.span[1]],
        }


@dataclass(frozen=True, slots=True)
class Assessment:
    """The triage of one reply.

        ``severity`` is the maximum over ``flags`` (per FLAG_SEVERITY) and ``watch`` items (watch);
        ``ambiguous`` holds red-flag topics that were mentioned but could not be decided (the caller
        asks one follow-up question). ``temperature_f`` is the highest reading found (°C converted),
        ``pain_score`` the highest pain score (0-10, fractions floored).

        ``needs_review`` is the "never silently none" signal: the reply is neither confidently
        benign nor flagged (a question to staff, unreadable text, or the learned layer in its
        uncertainty band), so a person should read it; ``review_reason`` says why as a short code
    (``learned_unsure:<flag>[,<flag>]``, ``question``, ``unreadable``; "" if not).
        It never lowers or raises ``severity``.
    """

    flags: frozenset[Flag] = frozenset()
    severity: Severity = Severity.NONE
    evidence: tuple[Evidence, ...] = ()
    temperature_f: float | None = None
    pain_score: int | None = None
    language: Literal["en", "es"] = "en"
    watch: frozenset[str] = frozenset()
    ambiguous: frozenset[str] = frozenset()
    context: str = field(default="general")
    needs_review: bool = False
    review_reason: str = ""

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict; sets are sorted so the output is deterministic."""
        return {
            "flags": sorted(f.value for f in self.flags),
            "severity": self.severity.value,
            "evidence": [e.to_dict() for e in self.evidence],
            "temperature_f": self.temperature_f,
            "pain_score": self.pain_score,
            "language": self.language,
            "watch": sorted(self.watch),
            "ambiguous": sorted(self.ambiguous),
            "context": self.context,
            "needs_review": self.needs_review,
            "review_reason": self.review_reason,
        }
