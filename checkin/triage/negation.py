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

from collections.abc import Sequence

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
M_NORMAL = 16384        # "ok/fine" after it: resolves urgent mentions, never an emergency

_CLAUSE_CUES = {
    "c:hedge": M_HEDGE, "c:hypo": M_HYPO, "c:past": M_PAST, "c:chron": M_CHRONIC,
    "c:pers": M_PERSIST, "c:worse": M_WORSE, "c:impr": M_IMPROVE, "c:mild": M_MILD,
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
    return ("c:skip" in labels or "c:worse" in labels or "c:mild" in labels
            or "c:neg" in labels or "c:resb" in labels)


def modifiers(items: Sequence[Item], primary: frozenset[str], caregiver: bool,
              inability: Sequence[bool] = ()) -> tuple[list[int], list[int], list[bool]]:
    """Per item: modifier bitmask, clause number (-1 for breaks), and whether it is a term.
    ``inability[k]`` marks mentions worded as "can't X" / "no puedo X": a following "well"
    or "bien" qualifies the inability ("no puedo respirar bien") instead of resolving it."""
    n = len(items)
    mods = [0] * n
    clause = [-1] * n
    term = [False] * n
    clause_bits: list[int] = [0]
    clause_has_term: list[bool] = [False]
    clause_only_no: list[bool] = [True]
    c = 0
    # ---- pass 1: clauses, terms, clause-level cues
    for k, (_i0, _i1, labels) in enumerate(items):
        if labels is HARD or labels is SOFT or (labels is not None and "c:brk" in labels
                                                 and not is_term(labels, primary)):
            c += 1
            clause_bits.append(0)
            clause_has_term.append(False)
            clause_only_no.append(True)
            continue
        clause[k] = c
        if labels is None:
            clause_only_no[c] = False
            continue
        t = is_term(labels, primary)
        term[k] = t
        if t:
            clause_has_term[c] = True
        if not ("c:neg" in labels or "c:no" in labels):
            clause_only_no[c] = False
        clause_bits[c] |= cue_bits(labels)
    # ---- orphan clauses lend their cues backwards
    lent = [0] * len(clause_bits)
    neg_lent = [False] * len(clause_bits)
    res_lent = [False] * len(clause_bits)
    orphan_res = _orphan_resolution(items, clause, len(clause_bits))
    last_with_term = -1
    for ci in range(len(clause_bits)):
        if clause_has_term[ci]:
            last_with_term = ci
            continue
        if last_with_term < 0:
            continue
        lent[last_with_term] |= clause_bits[ci] & _LENDABLE
        if clause_only_no[ci] and _clause_nonempty(clause, ci):
            neg_lent[last_with_term] = True
        if orphan_res[ci]:
            res_lent[last_with_term] = True
    # ---- pass 2: forward scopes (negation, resolution-before, third party)
    neg_on = False
    neg_kind = 0          # M_NEG or M_RES
    neg_list = False
    neg_end = 0
    crossed = False
    third_on = False
    for k, (i0, i1, labels) in enumerate(items):
        if labels is HARD or labels is SOFT or clause[k] < 0:
            if labels is SOFT and neg_on and neg_list:
                crossed = True
            else:
                neg_on = False
            third_on = False
            continue
        if labels is None:
            neg_on = False
            continue
        t = term[k]
        if neg_on:
            if t:
                tight = (i0 - neg_end < _TIGHT_WORDS) or (neg_list and not crossed)
                mods[k] |= neg_kind | ((M_NEG_TIGHT if neg_kind == M_NEG else M_RES_TIGHT)
                                       if tight else 0)
            elif "c:conn" in labels:
                nxt = items[k + 1][2] if k + 1 < n else None
                if nxt is None or nxt is HARD or nxt is SOFT or not is_term(nxt, primary):
                    neg_on = False
            elif not _continues(labels):
                neg_on = False
        if "c:neg" in labels or "c:negl" in labels or "c:resb" in labels:
            neg_on = True
            neg_kind = M_RES if "c:resb" in labels and "c:neg" not in labels else M_NEG
            neg_list = "c:negl" in labels
            neg_end = i1
            crossed = False
        if "c:third" in labels or (caregiver and "c:notpt" in labels):
            third_on = True
        elif "c:me" in labels:
            third_on = False
        elif third_on and t:
            mods[k] |= M_THIRD
    # ---- pass 3: resolution/normal after the symptom; clause bits
    for k in range(n):
        if not term[k]:
            continue
        ci = clause[k]
        mods[k] |= clause_bits[ci] | lent[ci]
        if neg_lent[ci]:
            mods[k] |= M_NEG | M_NEG_TIGHT
        if res_lent[ci]:
            mods[k] |= M_RES | M_RES_TIGHT
        listed = True       # "numbness and tingling are gone": a listed symptom shares it
        for j in range(k + 1, min(n, k + 1 + _AFTER_RES)):
            labels = items[j][2]
            if labels is None:
                listed = False
                continue
            if labels is HARD or labels is SOFT or clause[j] != ci:
                break
            if term[j]:
                if not listed:
                    break   # "numb toes and the back pain is gone": the cue is the pain's
                continue
            listed = "c:conn" in labels or ("c:skip" in labels and listed)
            if "c:resa" in labels:
                mods[k] |= M_RES | M_RES_TIGHT
                break
            if "c:norm" in labels and j - k <= _AFTER_NORMAL:
                if not (inability and inability[k]):
                    mods[k] |= M_NORMAL
                break
    return mods, clause, term


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
            content[ci] = True      # "the pain is gone" talks about something else
        elif "c:resa" in labels:
            out[ci] = True
    return [o and not c for o, c in zip(out, content)]


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
