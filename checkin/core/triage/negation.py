"""Scope of modifier cues: which symptom mentions are negated, resolved, hedged, chronic...

Contract: ``modifiers(items, caregiver)`` takes the matched items of one reply (see
``Item``) and returns one bitmask of ``M_*`` modifiers per item, plus each item's clause.

Scopes, and why:
* negation ("no", "denies", "not", "sin", "no tengo") runs FORWARD over symptom words,
  skip words ("any", "the", "have") and list connectors ("or", and "and" only when a symptom
  follows at once); it stops at any other word, at punctuation and at clause breaks ("but",
  "pero"), so "no fever but my incision is leaking" keeps the drainage.  Only list negators
  ("denies") carry across commas.  A negation is *tight* when the symptom starts within 4
  words of the cue (or the cue is a list negator and no comma was crossed): emergency flags
  are only suppressed by tight negation.
* "no more X", "ya no X" (resolution_before) scope like negation and mark RESOLVED;
  "X is gone" (resolution_after) looks up to 4 items ahead in the clause; "X ok/fine/bien"
  (normal) only 2, so "is the swelling in my feet normal?" is not a resolution.
* hedge, hypothetical, past, chronic, persistent, worsening, improving and mild cues apply
  to the whole clause (comma/period/"but" separated).  A clause with no symptom of its own
  ("..., had it before surgery, but it's spreading now") lends its cues to the nearest
  earlier clause that has one; a clause made only of "no"/"nope" negates that clause.
* third-party cues ("my friend") run forward until a first-person word ("I", "my", "yo");
  "I'm the one with..." works the same way, but only in a caregiver's message.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

# An item is (first_token, end_token, labels); labels is None for an unmatched word and one of
# the BREAK sentinels for punctuation.
Item = tuple[int, int, "frozenset[str] | None"]
HARD = frozenset({"b:."})
SOFT = frozenset({"b:,"})

M_NEG = 1
M_NEG_TIGHT = 2
M_RES = 4
M_RES_TIGHT = 8
M_HEDGE = 16
M_HYPO = 32
M_THIRD = 64
M_PAST = 128
M_CHRONIC = 256
M_PERSIST = 512
M_WORSE = 1024
M_IMPROVE = 2048
M_MILD = 4096
M_BILATERAL = 8192
M_NORMAL = 16384  # "ok/fine" after it: resolves urgent mentions, never an emergency

_CLAUSE_CUES = {
    "c:hedge": M_HEDGE,
    "c:hypo": M_HYPO,
    "c:past": M_PAST,
    "c:chron": M_CHRONIC,
    "c:pers": M_PERSIST,
    "c:worse": M_WORSE,
    "c:impr": M_IMPROVE,
    "c:mild": M_MILD,
    "c:bilat": M_BILATERAL,
}
# cues an orphan clause lends to the previous clause with a symptom
_LENDABLE = M_HEDGE | M_PAST | M_CHRONIC | M_PERSIST | M_WORSE | M_IMPROVE
_TIGHT_WORDS = 4
_AFTER_RES = 7
_AFTER_NORMAL = 2


_TERM_CACHE: dict[frozenset[str], bool] = {}


def is_term(labels: frozenset[str], primary: frozenset[str]) -> bool:
    """A symptom mention: a flag, watch or ambiguous phrase, or a combo's symptom part.
    (Memoized: label sets are the lexicon trie's leaves, a fixed, small population.)"""
    t = _TERM_CACHE.get(labels)
    if t is None:
        t = _TERM_CACHE[labels] = _is_term(labels, primary)
    return t


def _is_term(labels: frozenset[str], primary: frozenset[str]) -> bool:
    for lab in labels:
        k = lab[0]
        if k in "fwag" and lab[1] == ":":
            return True
        if k == "s" and lab[2:] in primary:
            return True
    return False


def _continues(labels: frozenset[str]) -> bool:
    return (
        "c:skip" in labels
        or "c:worse" in labels
        or "c:mild" in labels
        or "c:neg" in labels
        or "c:resb" in labels
    )


# Per-leaf properties, computed once per trie leaf (``leaf_props``) so the scope passes test
# bits instead of label sets.  Unmatched words and the two break sentinels get their own bits.
P_NONE = 1 << 0  # unmatched word
P_HARD = 1 << 1  # "." break
P_SOFT = 1 << 2  # "," break
P_BRK = 1 << 3  # "but"/"pero" clause break (a cue leaf that is no term)
P_TERM = 1 << 4  # a symptom mention (is_term)
P_NEGNO = 1 << 5  # c:neg or c:no (a clause of only these negates the previous clause)
P_NEGSTART = 1 << 6  # c:neg, c:negl or c:resb: opens a forward scope
P_RESKIND = 1 << 7  # ... of resolution (c:resb without c:neg)
P_NEGL = 1 << 8  # list negator
P_CONN = 1 << 9
P_CONT = 1 << 10  # _continues
P_THIRD = 1 << 11
P_NOTPT = 1 << 12
P_ME = 1 << 13
P_ONLYCUES = 1 << 14
P_RESA = 1 << 15
P_NORM = 1 << 16
P_SKIP = 1 << 17
P_CARE = 1 << 18
P_YES = 1 << 19
P_ANYBREAK = P_HARD | P_SOFT | P_BRK
CUE_SHIFT = 24  # clause-level cue bits (cue_bits) live above this


def leaf_props(labels: frozenset[str] | None, primary: frozenset[str]) -> int:
    """The ``P_*`` bits (and cue bits << CUE_SHIFT) of one item's labels."""
    if labels is None:
        return P_NONE
    if labels is HARD:
        return P_HARD
    if labels is SOFT:
        return P_SOFT
    t = _is_term(labels, primary)
    p = P_TERM if t else 0
    if "c:brk" in labels and not t:
        p |= P_BRK
    if "c:neg" in labels or "c:no" in labels:
        p |= P_NEGNO
    if "c:neg" in labels or "c:negl" in labels or "c:resb" in labels:
        p |= P_NEGSTART
        if "c:resb" in labels and "c:neg" not in labels:
            p |= P_RESKIND
    for lab, bit in (
        ("c:negl", P_NEGL),
        ("c:conn", P_CONN),
        ("c:third", P_THIRD),
        ("c:notpt", P_NOTPT),
        ("c:me", P_ME),
        ("c:resa", P_RESA),
        ("c:norm", P_NORM),
        ("c:skip", P_SKIP),
        ("c:care", P_CARE),
        ("c:yes", P_YES),
    ):
        if lab in labels:
            p |= bit
    if _continues(labels):
        p |= P_CONT
    if _only_cues(labels):
        p |= P_ONLYCUES
    return p | (cue_bits(labels) << CUE_SHIFT)


def modifiers(
    items: Sequence[Item], primary: frozenset[str], caregiver: bool, inability: Sequence[bool] = ()
) -> tuple[list[int], list[int], list[bool]]:
    """Per item: modifier bitmask, clause number (-1 for breaks), and whether it is a term.
    ``inability[k]`` marks mentions worded as "can't X" / "no puedo X": a following "well"
    or "bien" qualifies the inability ("no puedo respirar bien") instead of resolving it."""
    props = [leaf_props(lab, primary) for _a, _b, lab in items]
    inab = (lambda k: bool(inability[k])) if inability else None
    mods, clause, terms = scopes(items, props, caregiver, inab)
    term = [False] * len(items)
    for k in terms:
        term[k] = True
    return mods, clause, term


def scopes(
    items: Sequence[Item], props: Sequence[int], caregiver: bool, inability: Callable[[int], bool] | None
) -> tuple[list[int], list[int], list[int]]:
    """``modifiers`` over precomputed ``leaf_props``: (mods, clause per item, term indices).
    Clauses, clause cues, orphan-clause lending and the forward scopes are found in one pass;
    a second pass over the terms only adds clause bits and the cues that follow a term."""
    n = len(items)
    mods = [0] * n
    clause = [-1] * n
    terms: list[int] = []
    # Per clause, the bits every term in it gets: its own cue bits, plus whatever later
    # orphan clauses lend it (lendable cues; negation by a bare "no"; "it's gone now").
    cbits: list[int] = []
    last_with_term = -1
    # the open clause
    c = 0
    bits = 0
    has_term = content = orphan_res = nonempty = False
    only_no = True
    # forward scopes
    neg_on = False
    neg_kind = 0  # M_NEG or M_RES
    neg_list = False
    neg_end = 0
    crossed = False
    third_on = False
    for k in range(n + 1):
        p = props[k] if k < n else P_HARD  # a final break closes the last clause
        if p & P_ANYBREAK:
            # close clause c
            cbits.append(bits)
            if has_term:
                last_with_term = c
            elif last_with_term >= 0:
                lend = bits & _LENDABLE
                if only_no and nonempty:
                    lend |= M_NEG | M_NEG_TIGHT
                if orphan_res and not content:
                    lend |= M_RES | M_RES_TIGHT
                cbits[last_with_term] |= lend
            c += 1
            bits = 0
            has_term = content = orphan_res = nonempty = False
            only_no = True
            if p & P_SOFT and neg_on and neg_list:
                crossed = True
            else:
                neg_on = False
            third_on = False
            continue
        clause[k] = c
        nonempty = True
        if p & P_NONE:
            only_no = False
            content = True
            neg_on = False
            continue
        t = p & P_TERM
        if t:
            terms.append(k)
            has_term = True
        if not p & P_NEGNO:
            only_no = False
        bits |= p >> CUE_SHIFT
        if not p & P_ONLYCUES:
            content = True
        elif p & P_RESA:
            orphan_res = True
        # forward scopes (negation, resolution-before, third party)
        if neg_on:
            if t:
                tight = (items[k][0] - neg_end < _TIGHT_WORDS) or (neg_list and not crossed)
                mods[k] |= neg_kind | ((M_NEG_TIGHT if neg_kind == M_NEG else M_RES_TIGHT) if tight else 0)
            elif p & P_CONN:
                if k + 1 >= n or not props[k + 1] & P_TERM:
                    neg_on = False
            elif not p & P_CONT:
                neg_on = False
        if p & P_NEGSTART:
            neg_on = True
            neg_kind = M_RES if p & P_RESKIND else M_NEG
            neg_list = bool(p & P_NEGL)
            neg_end = items[k][1]
            crossed = False
        if p & P_THIRD or (caregiver and p & P_NOTPT):
            third_on = True
        elif p & P_ME:
            third_on = False
        elif third_on and t:
            mods[k] |= M_THIRD
    # ---- resolution/normal after the symptom; clause bits
    for k in terms:
        m = mods[k] | cbits[clause[k]]
        listed = True  # "numbness and tingling are gone": a listed symptom shares it
        for j in range(k + 1, min(n, k + 1 + _AFTER_RES)):
            p = props[j]
            if p & P_NONE:
                listed = False
                continue
            if p & P_ANYBREAK:
                break
            if p & P_TERM:
                if not listed:
                    break  # "numb toes and the back pain is gone": the cue is the pain's
                continue
            listed = bool(p & P_CONN) or (bool(p & P_SKIP) and listed)
            if p & P_RESA:
                m |= M_RES | M_RES_TIGHT
                break
            if p & P_NORM and j - k <= _AFTER_NORMAL:
                if not (inability is not None and inability(k)):
                    m |= M_NORMAL
                break
        mods[k] = m
    return mods, clause, terms


def _clause_nonempty(clause: list[int], ci: int) -> bool:
    return ci in clause


def _orphan_resolution(items: Sequence[Item], clause: list[int], nclauses: int) -> list[bool]:
    """Clauses made only of cue words that say "it's gone now" / "went away" resolve the
    previous symptom.  Plain "fine"/"normal" do not ("incision leaking, otherwise fine" keeps
    the leak), nor does a clause about something else ("pus coming out, the pain is gone")."""
    out = [False] * nclauses
    content = [False] * nclauses
    for k, (_i0, _i1, labels) in enumerate(items):
        ci = clause[k]
        if ci < 0:
            continue
        if labels is None or not _only_cues(labels):
            content[ci] = True  # "the pain is gone" talks about something else
        elif "c:resa" in labels:
            out[ci] = True
    return [o and not c for o, c in zip(out, content, strict=False)]


_CUE_ONLY: dict[frozenset[str], bool] = {}


def _only_cues(labels: frozenset[str]) -> bool:
    r = _CUE_ONLY.get(labels)
    if r is None:
        r = _CUE_ONLY[labels] = all(lab[0] == "c" for lab in labels)
    return r


_CUE_BITS: dict[frozenset[str], int] = {}


def cue_bits(labels: frozenset[str]) -> int:
    """Clause-level modifier bits carried by one trie leaf (memoized)."""
    r = _CUE_BITS.get(labels)
    if r is None:
        r = 0
        for lab, bit in _CLAUSE_CUES.items():
            if lab in labels:
                r |= bit
        _CUE_BITS[labels] = r
    return r
