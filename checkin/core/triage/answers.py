"""Which question a reply answers: the context names and what a bare YES means under them.

Contract (docs/adr/0005): ``normalize_context`` maps any context to a known one (None,
unknown -> ``general``, ``*_reminder`` -> ``reminder``); ``yes_hits`` turns a leading bare
YES under a ``<topic>_check`` into a mention of what was asked, with the clause cues that
follow it ("yes, worse since yesterday").  Under any other context a bare YES means nothing.
"""

from __future__ import annotations

from typing import Any

from . import lexicon as _lexicon
from .mentions import Hit
from .negation import _CLAUSE_CUES, _LENDABLE, HARD, SOFT, Item

# What a bare YES means under each <topic>_check (the contract, docs/adr/0005).  wound_check asks about
# "redness, swelling, drainage or opening", so YES is reported as both wound flags.
YES_MEANS: dict[str, tuple[str, ...]] = {
    "fever_check": ("f:fever",),
    "wound_check": ("f:wound_drainage", "f:wound_redness"),
    "numbness_check": ("f:new_numbness",),
    "weakness_check": ("f:new_weakness",),
    "bladder_check": ("f:bowel_bladder",),
    "breathing_check": ("f:chest_breathing",),
    "swallow_check": ("f:swallowing",),
    "fall_check": ("f:fall",),
    "mood_check": ("w:low_mood",),
    # A combined check asks about several symptoms at once: a bare YES says "something" but
    # not what, so it is ambiguous (a watch item and a follow-up question), never nothing.
    "symptom_check": ("a:symptom_check",),
}


def normalize_context(context: str | None) -> str:
    """Known contexts pass through; None, unknown and ``*_reminder`` map as the contract says."""
    if not context:
        return "general"
    c = context.strip().lower()
    if c in _lexicon.CONTEXTS:
        return c
    if c.endswith("_reminder"):
        return "reminder"
    return "general"


def yes_hits(
    ctx: str,
    items: list[Item],
    clause: list[int],
    mods: list[int],
    span_of: Any,
    measured: bool,
    hits: list[Hit],
) -> None:
    """A leading bare YES under a ``<topic>_check`` is a mention of what was asked."""
    k = _bare_yes(items, clause)
    if k is None:
        return
    for lab in YES_MEANS[ctx]:
        if lab == "f:fever" and measured:
            continue  # the reading decides, not the YES
        hits.append(Hit(lab, k, mods[k] | _clause_mods_for_yes(k, mods, items, clause), span_of(k)))


def _bare_yes(items: list[Item], clause: list[int]) -> int | None:
    """Index of a leading YES item if the first clause is nothing but YES words."""
    first = None
    for k, (_i0, _i1, labels) in enumerate(items):
        if labels is HARD or labels is SOFT:
            if first is not None:
                break
            continue
        if labels is None or "c:yes" not in labels:
            return None
        if first is None:
            first = k
        if clause[k] != clause[first]:
            break
    return first


def _clause_mods_for_yes(k: int, mods: list[int], items: list[Item], clause: list[int]) -> int:
    """A synthetic YES mention takes the clause cues lent to its clause ("Yes, worse since
    yesterday"; "yes, same as before surgery"); those are on any later term in clause 0 or,
    for an all-YES clause, computed from the following clauses here."""
    bits = 0
    ci = clause[k]
    for j in range(k + 1, len(items)):
        labels = items[j][2]
        if labels is None or labels is HARD or labels is SOFT:
            continue
        if clause[j] != ci and any(lab[0] in "fwa" for lab in labels):
            break  # the next clause has its own symptom: stop lending
        for lab, bit in _CLAUSE_CUES.items():
            if lab in labels and (bit & _LENDABLE or clause[j] == ci):
                bits |= bit
    return bits
