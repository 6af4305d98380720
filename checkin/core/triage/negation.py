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
* a relative ("my wife", "mi hijo") is the patient in a caregiver's message, but someone else
  when the writer also speaks as the patient ("not me", "myself", "yo estoy bien": cue
  ``patient_self``): then the relative opens a third-party scope that runs across commas
  ("my wife has the flu, fever of 102") until a first-person word or a period/"but".
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
P_SELF = 1 << 20  # the writer speaks as the patient ("not me", "myself")
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
        ("c:self", P_SELF),
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
    items: Sequence[Item],
    props: Sequence[int],
    caregiver: bool,
    inability: Callable[[int], bool] | None,
    relatives: bool = False,
) -> tuple[list[int], list[int], list[int]]:
    """``modifiers`` over precomputed ``leaf_props``: (mods, clause per item, term indices).
    Clauses, clause cues, orphan-clause lending and the forward scopes are found in one pass
    (``_Scan``); a second pass over the terms only adds clause bits and the cues that follow
    a term (``_after``).  ``relatives``: a relative is someone else (see the module docstring;
    ``writer_role`` decides it with ``caregiver``)."""
    n = len(items)
    scan = _Scan(items, caregiver, n)
    scan.relatives = relatives
    for k in range(n):
        p = props[k]
        if p & P_ANYBREAK:
            scan.close_clause(p)
        else:
            scan.item(k, p, props)
    scan.close_clause(P_HARD)  # a final break closes the last clause
    mods, cbits = scan.mods, scan.cbits
    for k in scan.terms:
        mods[k] |= cbits[scan.clause[k]] | _after(k, props, n, inability)
    return mods, scan.clause, scan.terms


class _Scan:
    """The one forward pass of ``scopes``: the open clause (its cue bits, whether it has a
    term, content, an orphan resolution, only "no" words), and the forward scopes (negation
    or resolution-before, third party) that are open at the current item."""

    __slots__ = (
        "bits",
        "c",
        "caregiver",
        "cbits",
        "clause",
        "content",
        "crossed",
        "has_term",
        "items",
        "last_with_term",
        "mods",
        "neg_end",
        "neg_kind",
        "neg_list",
        "neg_on",
        "nonempty",
        "only_no",
        "orphan_res",
        "rel_on",
        "relatives",
        "terms",
        "third_on",
    )

    def __init__(self, items: Sequence[Item], caregiver: bool, n: int) -> None:
        self.items = items
        self.caregiver = caregiver
        self.mods = [0] * n
        self.clause = [-1] * n
        self.terms: list[int] = []
        # Per clause, the bits every term in it gets: its own cue bits, plus whatever later
        # orphan clauses lend it (lendable cues; negation by a bare "no"; "it's gone now").
        self.cbits: list[int] = []
        self.last_with_term = -1
        self.c = 0
        self._open_clause()
        self.neg_on = False
        self.neg_kind = 0  # M_NEG or M_RES
        self.neg_list = False
        self.neg_end = 0
        self.crossed = False
        self.third_on = False
        self.relatives = False
        self.rel_on = False  # the third-party scope a relative opened (crosses commas)

    def _open_clause(self) -> None:
        self.bits = 0
        self.has_term = self.content = self.orphan_res = self.nonempty = False
        self.only_no = True

    def close_clause(self, p: int) -> None:
        """A break: close clause ``c`` (an orphan clause lends to the last clause with a
        term), open the next; only a list negator's scope crosses a comma."""
        bits = self.bits
        self.cbits.append(bits)
        if self.has_term:
            self.last_with_term = self.c
        elif self.last_with_term >= 0:
            lend = bits & _LENDABLE
            if self.only_no and self.nonempty:
                lend |= M_NEG | M_NEG_TIGHT
            if self.orphan_res:
                lend |= M_RES | M_RES_TIGHT
            self.cbits[self.last_with_term] |= lend
        self.c += 1
        self._open_clause()
        if p & P_SOFT and self.neg_on and self.neg_list:
            self.crossed = True
        else:
            self.neg_on = False
        self.rel_on = self.rel_on and bool(p & P_SOFT)
        self.third_on = self.rel_on

    def item(self, k: int, p: int, props: Sequence[int]) -> None:
        """One item inside a clause: the clause's state, then the forward scopes."""
        self.clause[k] = self.c
        self.nonempty = True
        if p & P_NONE:
            self.only_no = False
            self.content = True
            self.neg_on = False
            return
        t = p & P_TERM
        if t:
            self.terms.append(k)
            self.has_term = True
        if not p & P_NEGNO:
            self.only_no = False
        self.bits |= p >> CUE_SHIFT
        if p & P_RESA and not self.content:
            self.orphan_res = True  # "..., went away after I sat down": the clause opens with it
        if not p & P_ONLYCUES:
            self.content = True
        if self.neg_on:
            self._negation(k, p, t, props)
        if p & P_NEGSTART:
            self.neg_on = True
            self.neg_kind = M_RES if p & P_RESKIND else M_NEG
            self.neg_list = bool(p & P_NEGL)
            self.neg_end = self.items[k][1]
            self.crossed = False
        if self.relatives and p & P_CARE:
            self.third_on = self.rel_on = True
            self.mods[k] |= M_THIRD  # numbers read in its clause see it (readings)
        elif p & P_THIRD or (self.caregiver and p & P_NOTPT):
            self.third_on = True
        elif p & P_ME:
            self.third_on = self.rel_on = False
        elif self.third_on and t:
            self.mods[k] |= M_THIRD

    def _negation(self, k: int, p: int, t: int, props: Sequence[int]) -> None:
        """An open negation (or resolution-before) scope meets item ``k``: a term takes it
        (tight if near the cue), a connector keeps it only before a term, a continuing word
        keeps it, anything else closes it."""
        if t:
            tight = (self.items[k][0] - self.neg_end < _TIGHT_WORDS) or (self.neg_list and not self.crossed)
            kind = self.neg_kind
            self.mods[k] |= kind | ((M_NEG_TIGHT if kind == M_NEG else M_RES_TIGHT) if tight else 0)
        elif p & P_CONN:
            if k + 1 >= len(props) or not props[k + 1] & P_TERM:
                self.neg_on = False
        elif not p & P_CONT:
            self.neg_on = False


def writer_role(allp: int) -> tuple[bool, bool]:
    """(caregiver, relatives) from the OR of a reply's ``leaf_props``: a relative named in a
    reply whose writer also speaks as the patient is someone else, not the patient."""
    care = bool(allp & P_CARE)
    own = bool(allp & P_SELF)
    return care and not own, care and own


def _after(k: int, props: Sequence[int], n: int, inability: Callable[[int], bool] | None) -> int:
    """Resolution ("is gone") or normal ("ok") cues that follow term ``k`` in its clause."""
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
            return M_RES | M_RES_TIGHT
        if p & P_NORM and j - k <= _AFTER_NORMAL:
            return 0 if inability is not None and inability(k) else M_NORMAL
    return 0


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
