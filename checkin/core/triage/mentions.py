"""What the matched phrases mention: one ``Hit`` per symptom label, combos and patterns.

Contract: ``mentions`` turns every matched flag/watch/ambiguous phrase into a ``Hit`` carrying
the scope modifiers of its item; ``combos`` adds the hits that need several parts in one
clause ("red" + "incision" -> wound_redness), absorbing the single-part hits they refine;
``patterns`` adds the lexicon's regex hits.  Nothing is decided here (see decide.py).
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from . import lexicon as _lexicon
from .matching import LEX, Leaf
from .negation import HARD, M_NEG, M_RES, SOFT, Item


@dataclass(slots=True)
class Hit:
    label: str  # "f:<flag>", "w:<topic>", "a:<topic>"
    item: int  # index into items (-1: synthetic / number)
    mods: int
    span: tuple[int, int]
    governed: bool = False  # a fever word that a measured temperature overrides
    words: str = ""  # the normalized words of the mention


def mentions(
    labeled: list[tuple[int, Leaf]], clause: list[int], mods: list[int], span_of: Any
) -> tuple[list[Hit], dict[int, dict[str, list[int]]], dict[int, str]]:
    """(one hit per flag/watch/ambiguous label of each matched phrase, per clause the items of
    each combo set, the phrase of each set item)."""
    hits: list[Hit] = []
    sets_in_clause: dict[int, dict[str, list[int]]] = {}
    phrases: dict[int, str] = {}
    for k, leaf in labeled:
        ck = clause[k]
        if ck < 0:
            continue
        _labels, _p, phrase, mentions, set_names, governed = leaf
        if mentions:
            sp = span_of(k)
            mk = mods[k]
            for lab in mentions:
                hits.append(Hit(lab, k, mk, sp, governed, phrase))
        if set_names:
            phrases[k] = phrase
            per = sets_in_clause.setdefault(ck, {})
            for name in set_names:
                per.setdefault(name, []).append(k)
    return hits, sets_in_clause, phrases


def combos(
    ctx: str,
    sets_in_clause: dict[int, dict[str, list[int]]],
    mods: list[int],
    span_of: Any,
    hits: list[Hit],
    absorbed: set[tuple[int, str]],
    words: dict[int, str],
    items: list[Item],
) -> None:
    by_primary = _COMBOS_BY_PRIMARY
    for sets in sets_in_clause.values():
        names = sorted(sets) if len(sets) > 1 else sets
        for name in names:
            combos = by_primary.get(name)
            if combos is None:
                continue
            for combo in combos:
                _combo(combo, ctx, sets, mods, span_of, hits, absorbed, words, items)


_NEG_LOOKBACK = 3


def _negated_part(k: int, items: list[Item]) -> bool:
    """A combo's secondary part negated right before it ("cough, no blood in it": the
    conjunction fails).  Only skip words may stand between the negation and the part."""
    for j in range(k - 1, max(-1, k - 1 - _NEG_LOOKBACK), -1):
        labels = items[j][2]
        if labels is None or labels is HARD or labels is SOFT:
            return False
        if "c:neg" in labels or "c:negl" in labels:
            return True
        if "c:skip" not in labels:
            return False
    return False


# A combo as _combo reads it: (combo, primary part, other parts, flag labels it absorbs).
_CompiledCombo = tuple[_lexicon.Combo, str, tuple[str, ...], tuple[str, ...]]


def _combo(
    cc: _CompiledCombo,
    ctx: str,
    sets: dict[str, list[int]],
    mods: list[int],
    span_of: Any,
    hits: list[Hit],
    absorbed: set[tuple[int, str]],
    words: dict[int, str],
    items: list[Item],
) -> None:
    """Fire one combo in one clause if all its parts are there (or implied by context)."""
    combo, first, rest, absorbs = cc
    in_ctx = ctx in combo.contexts
    if combo.require_context and not in_ctx:
        return
    if not in_ctx:
        for p in rest:
            if p not in sets:
                return
    for p in rest:
        ks = sets.get(p)
        if ks is not None:
            for i in ks:
                if not _negated_part(i, items):
                    break
            else:
                return
    primary = sets[first]
    # the least-suppressed mention of the symptom decides
    if len(primary) == 1:
        k = primary[0]
    else:
        k = min(primary, key=lambda i: (bool(mods[i] & (M_NEG | M_RES)), i))
    a, b = span_of(k)
    for p in rest:
        ks = sets.get(p)
        if ks is not None:
            a2, b2 = span_of(ks[0])
            a, b = min(a, a2), max(b, b2)
    hits.append(Hit(combo.label, k, mods[k], (a, b), False, words[k]))
    for fl in absorbs:
        for i in primary:
            absorbed.add((i, fl))


_COMBOS_BY_PRIMARY: dict[str, tuple[_CompiledCombo, ...]] = {
    name: tuple((c, c.parts[0], c.parts[1:], tuple(f"f:{fl}" for fl in c.absorbs)) for c in combos)
    for name, combos in LEX.combos_by_primary.items()
}


def patterns(
    s: str, starts: list[int], items: list[Item], clause: list[int], mods: list[int], hits: list[Hit]
) -> None:
    """Regex patterns of the lexicon over the folded reply ``s``."""
    assert LEX.patterns is not None
    for m in LEX.patterns.finditer(s):
        label = LEX.pattern_labels[m.lastgroup or ""]
        k = item_at(m.start(), starts, items)
        hits.append(Hit(label, -1, mods[k] if k >= 0 else 0, m.span()))


def item_at(pos: int, starts: Sequence[int], items: Sequence[Item]) -> int:
    """Index of the item holding the token that starts at or before ``pos``."""
    t = bisect_right(starts, pos) - 1
    if t < 0:
        return -1
    for k, (i0, i1, _labels) in enumerate(items):
        if i0 <= t < i1:
            return k
    return -1
