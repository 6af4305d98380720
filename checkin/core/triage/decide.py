"""Deciding each mention: a flag, a watch item, an ambiguity, or nothing.

Contract (docs/adr/0005): a hypothetical or someone else's mention is nothing; an emergency
flag is suppressed only by a tight, explicit negation or resolution, and softened to watch only
when its clause states a baseline both old AND unchanged (chronic + persistent cues, nothing
worse); an urgent flag is
negated/resolved/normal -> nothing, or softened by its modifiers (chronic, persistent,
improving, hedged, mild, bilateral, past) per its lexicon options; watch and ambiguous
topics are kept unless negated.  ``evidence_in_order`` gives the Assessment's evidence.
"""

from __future__ import annotations

from operator import attrgetter

from .matching import LEX
from .mentions import Hit
from .model import FLAG_SEVERITY, Evidence, EvidenceKind, Severity
from .negation import (
    M_BILATERAL,
    M_CHRONIC,
    M_HEDGE,
    M_HYPO,
    M_IMPROVE,
    M_MILD,
    M_NEG,
    M_NEG_TIGHT,
    M_NORMAL,
    M_PAST,
    M_PERSIST,
    M_RES,
    M_RES_TIGHT,
    M_THIRD,
    M_WORSE,
)

EMERGENCY_FLAGS = frozenset(f.value for f, s in FLAG_SEVERITY.items() if s is Severity.EMERGENCY)

# A self-harm statement made conditional ("if this pain doesn't stop I'll end it"; pills saved
# "in case this doesn't get better") is still a self-harm statement: a person must call back.
_CONDITIONAL_STANDS = frozenset({"self_harm"})

# An event is not over because the patient is fine now: "fell last night but I'm ok now" is
# still a fall to report.  Only a negation ("I didn't fall") takes it back.
_EVENTS = frozenset({"fall"})

# A watch topic the rules read is the benign neighbour of a flag ("peeing every hour" is
# urinary symptoms, not retention; "tripped" is a near fall): the rules decided that topic,
# so the learned layer leaves the flag alone, as it does for the flags the rules mention.
WATCH_COVERS: dict[str, str] = {
    "urinary_symptoms": "bowel_bladder",
    "constipation": "bowel_bladder",
    "near_fall": "fall",
}

# An ambiguous topic is moot once one of these flags is decided.
AMBIGUITY_COVERED_BY: dict[str, frozenset[str]] = {
    "numbness/weakness": frozenset({"new_numbness", "new_weakness"}),
    "bladder": frozenset({"bowel_bladder"}),
    "breathing": frozenset({"chest_breathing"}),
    "wound": frozenset({"wound_drainage", "wound_redness"}),
    "pain": frozenset({"severe_pain"}),
    # Once the reply names what it is, the combined check's YES is answered.
    "symptom_check": frozenset(
        {
            "fever",
            "wound_drainage",
            "wound_redness",
            "new_numbness",
            "new_weakness",
            "swallowing",
            "severe_pain",
        }
    ),
}


def decide_all(
    hits: list[Hit],
    absorbed: set[tuple[int, str]],
    measured: bool,
    text: str,
    flags: dict[str, list[Evidence]],
    watch: dict[str, list[Evidence]],
    ambiguous: dict[str, list[Evidence]],
) -> None:
    """Decide every mention; drop ambiguities a decided flag covers."""
    for h in hits:
        if h.item >= 0 and (h.item, h.label) in absorbed:
            continue
        if h.governed and measured:
            continue  # "fever 99.1": the thermometer wins over the word
        _decide(h, text, flags, watch, ambiguous)
    for topic in list(ambiguous) if ambiguous else ():
        covered = AMBIGUITY_COVERED_BY.get(topic, frozenset({topic}))
        if covered & flags.keys():
            del ambiguous[topic]


def topics_seen(hits: list[Hit], pain_read: bool, temperature_read: bool) -> set[str]:
    """Flag codes the rules mentioned (decided or not), and those a number read decides (a
    pain score, a temperature): the learned layer leaves them alone."""
    seen = {h.label[2:] for h in hits if h.label[0] == "f"}
    if pain_read:
        seen.add("severe_pain")
    if temperature_read:
        seen.add("fever")
    for h in hits:
        if h.label[0] == "a":
            seen |= AMBIGUITY_COVERED_BY.get(h.label[2:], {h.label[2:]})
        elif h.label[0] == "w" and h.label[2:] in WATCH_COVERS:
            seen.add(WATCH_COVERS[h.label[2:]])
    return seen


def evidence_in_order(*groups: dict[str, list[Evidence]]) -> tuple[Evidence, ...]:
    """All evidence in span order; equal evidence (its words are text[span]) sorts adjacent,
    and only the first of a run is kept."""
    evidence = [e for group in groups for evs in group.values() for e in evs]
    if len(evidence) < 2:
        return tuple(evidence)
    evidence.sort(key=_EVIDENCE_ORDER)
    deduped = [evidence[0]]
    prev = evidence[0]
    for e in evidence[1:]:
        if e.span != prev.span or e.kind != prev.kind or e.topic != prev.topic:
            deduped.append(e)
            prev = e
    return tuple(deduped)


_EVIDENCE_ORDER = attrgetter("span", "kind", "topic")


def add_evidence(
    group: dict[str, list[Evidence]], topic: str, text: str, span: tuple[int, int], kind: EvidenceKind
) -> None:
    group.setdefault(topic, []).append(Evidence(topic, text[span[0] : span[1]], span, kind))


def _decide(
    h: Hit,
    text: str,
    flags: dict[str, list[Evidence]],
    watch: dict[str, list[Evidence]],
    ambiguous: dict[str, list[Evidence]],
) -> None:
    """Turn one mention into a flag, a watch item, an ambiguity, or nothing."""
    m = h.mods
    kind, name = h.label[0], h.label[2:]
    if m & M_THIRD or (m & M_HYPO and name not in _CONDITIONAL_STANDS):
        return
    if kind == "f":
        if name in EMERGENCY_FLAGS:
            # emergencies: only a tight, explicit negation or resolution suppresses them
            if m & (M_NEG_TIGHT | M_RES_TIGHT):
                return
            if _baseline(m):
                # a baseline the patient states as both old and unchanged ("out of breath,
                # bad heart for ten years, no change"): a person reads it, no 911 alarm
                add_evidence(watch, f"{name}_baseline", text, h.span, "watch")
                return
            add_evidence(flags, name, text, h.span, "flag")
            return
        if m & (M_NEG | (0 if name in _EVENTS else M_RES | M_NORMAL)):
            return
        group, topic, ev_kind = _downgrade(h, name, m)
        if group == "flag":
            add_evidence(flags, name, text, h.span, "flag")
        elif group:
            add_evidence(watch if group == "watch" else ambiguous, topic, text, h.span, ev_kind)
        return
    if m & (M_NEG | M_RES | M_NORMAL):
        return
    if m & M_MILD and name in LEX.mild_ignored:
        return
    if kind == "w":
        add_evidence(watch, name, text, h.span, "watch")
    else:
        add_evidence(ambiguous, name, text, h.span, "ambiguous")


def _downgrade(h: Hit, name: str, m: int) -> tuple[str, str, EvidenceKind]:
    """How an urgent flag mention's modifiers soften it: ("flag", name, "flag"), a watch or
    ambiguous (group, topic, kind), or ("", "", "flag") for nothing (chronic, not new)."""
    opt = LEX.options[name]
    worse = bool(m & M_WORSE)
    if _baseline(m) and not opt.new_only:
        return "watch", f"{name}_baseline", "watch"
    if opt.new_only and not worse:
        if m & M_CHRONIC:
            return "", "", "flag"
        if m & M_PERSIST:
            return "watch", f"{name}_persistent", "watch"
    if not worse:
        if m & M_IMPROVE:
            return "watch", f"{name}_improving", "watch"
        if m & M_HEDGE:
            return "ambiguous", opt.ambiguous_topic, "ambiguous"
        if opt.mild_watch and m & M_MILD and (not opt.mild_words or h.words in opt.mild_words):
            return "watch", f"{name}_mild", "watch"
    if opt.unilateral and m & M_BILATERAL:
        return "watch", f"{name}_bilateral", "watch"
    if opt.transient and m & M_PAST:
        return "watch", f"{name}_past", "watch"
    return "flag", name, "flag"


def _baseline(m: int) -> bool:
    """The clause states a baseline both old and unchanged ("for ten years, no change") and
    nothing worse: a person reads it (watch), no alarm."""
    return bool(m & M_CHRONIC) and bool(m & M_PERSIST) and not m & M_WORSE
