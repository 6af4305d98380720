"""``assess(text, context)``: one patient reply -> an Assessment.  Pure and deterministic.

Pipeline (each step is its own module):
 1. normalize.tokenize  - fold case/accents, spellings, fuzzy-correct misspellings, emoji
 2. trie match          - greedy longest phrase at each position -> items with labels
 3. negation.modifiers  - negation/resolution/hedge/chronic/... scope per item
 4. combos              - "red" + "incision" in one clause -> wound_redness, ...
 5. numbers.read        - temperatures and pain scores
 6. context             - bare YES/NO and bare numbers answer the question that was asked
 7. decide              - each mention becomes a flag, a watch item, an ambiguity, or nothing
Severity = the highest of the flags' severities, and watch if anything is watched/ambiguous.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from dataclasses import dataclass
from functools import lru_cache
from operator import attrgetter
from typing import Any

from rapidfuzz import fuzz, process

from . import lexicon as _lexicon
from .escalate import escalations
from .layered import LEARNED, MAX_CHARS, in_scope, learned_candidates
from .layered import review_reason as _review_reason
from .learned import LearnedModel
from .model import FLAG_SEVERITY, Assessment, Evidence, EvidenceKind, Flag, Severity
from .negation import (
    _CLAUSE_CUES,
    _LENDABLE,
    HARD,
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
    P_CARE,
    P_HARD,
    P_NONE,
    P_SOFT,
    SOFT,
    Item,
    leaf_props,
    scopes,
)
from .normalize import COMMA, STOP, Tokenizer, fold
from .numbers import NumberReader, Reading

LEX = _lexicon.load()
NUMBERS = NumberReader(LEX)
_LEAF = _lexicon.LEAF

FUZZY_CUTOFF = 85  # rapidfuzz ratio; 85 keeps "feaver"->fever but not "smelling"->swelling
MIN_FUZZY_LEN = 5  # shorter words collide too easily ("red"/"bed", "numb"/"dumb")

FEVER_F = 101.0  # the contract: >= 101.0 °F / 38.3 °C is fever (urgent)
LOW_GRADE_F = 100.4  # 100.4-100.9 °F is watch
SEVERE_PAIN = 8.0  # >= 8/10 severe_pain (urgent)
MODERATE_PAIN = 5.0  # 5-7 watch

_FLAG_BY_VALUE = {f.value: f for f in Flag}
_FLAG_RANK = {f.value: s.rank for f, s in FLAG_SEVERITY.items()}
_SEVERITY_BY_RANK = {s.rank: s for s in Severity}

EMERGENCY_FLAGS = frozenset(f.value for f, s in FLAG_SEVERITY.items() if s is Severity.EMERGENCY)

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


@lru_cache(maxsize=16384)
def _correct(word: str) -> str:
    """Nearest fuzzy vocabulary word, or the word itself (cached: pure function of word)."""
    hit = process.extractOne(word, LEX.fuzzy_targets, scorer=fuzz.ratio, score_cutoff=FUZZY_CUTOFF)
    return hit[0] if hit is not None else word


_TOKENIZE = Tokenizer(
    LEX.token_re, LEX.spelling, LEX.emoji, LEX.filler, LEX.known, _correct, LEX.lang, MIN_FUZZY_LEN
)


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


# The lexicon trie with each leaf replaced by everything assess needs about it, computed once:
# (labels, negation.leaf_props bits, the phrase's words joined, flag/watch/ambiguous labels,
# set names, fever-word-governed).  A trie node is one word sequence, so the phrase is fixed.
_Leaf = tuple[frozenset[str], int, str, tuple[str, ...], tuple[str, ...], bool]


def _compile_trie(node: dict[str, Any], path: tuple[str, ...]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, child in node.items():
        if key == _LEAF:
            mentions, set_names, governed = _leaf_info(child)
            out[key] = (
                child,
                leaf_props(child, LEX.primary_sets),
                " ".join(path),
                mentions,
                set_names,
                governed,
            )
        else:
            out[key] = _compile_trie(child, (*path, key))
    return out


def _match(words: list[str]) -> tuple[list[Item], list[int], list[tuple[int, _Leaf]], int]:
    """Greedy longest-phrase matching over the word list: (items, leaf_props per item,
    (index, leaf) of the matched phrases, OR of their props)."""
    trie = _TRIE
    items: list[Item] = []
    props: list[int] = []
    labeled: list[tuple[int, _Leaf]] = []
    add_item, add_prop = items.append, props.append
    allp = 0
    n = len(words)
    i = 0
    while i < n:
        w = words[i]
        node = trie.get(w)
        if node is None:
            if w == STOP:
                add_item((i, i + 1, HARD))
                add_prop(P_HARD)
            elif w == COMMA:
                add_item((i, i + 1, SOFT))
                add_prop(P_SOFT)
            else:
                add_item((i, i + 1, None))
                add_prop(P_NONE)
            i += 1
            continue
        best_end = 0
        best: _Leaf | None = None
        j = i
        while node is not None:
            j += 1
            leaf = node.get(_LEAF)
            if leaf is not None:
                best_end, best = j, leaf
            if j >= n:
                break
            node = node.get(words[j])
        if best is None:
            add_item((i, i + 1, None))
            add_prop(P_NONE)
            i += 1
        else:
            labeled.append((len(items), best))
            add_item((i, best_end, best[0]))
            p = best[1]
            add_prop(p)
            allp |= p
            i = best_end
    return items, props, labeled, allp


@dataclass(slots=True)
class _Hit:
    label: str  # "f:<flag>", "w:<topic>", "a:<topic>"
    item: int  # index into items (-1: synthetic / number)
    mods: int
    span: tuple[int, int]
    governed: bool = False  # a fever word that a measured temperature overrides
    words: str = ""  # the normalized words of the mention


def assess(text: str, context: str | None = None) -> Assessment:
    """Triage one reply with the rules and the packaged learned layer.  See the module
    docstring and docs/adr/0005."""
    return assess_with(text, context, LEARNED)


def assess_with(text: str, context: str | None, model: LearnedModel | None) -> Assessment:
    """``assess`` with an explicit learned layer (None: rules only); the folds and the
    training command use it to score models that are not the packaged one.  Only the first
    ``MAX_CHARS`` characters are read, so the cost is bounded whatever arrives."""
    ctx = normalize_context(context)
    if not isinstance(text, str):
        raise TypeError("text must be a str")
    if len(text) > MAX_CHARS:
        text = text[:MAX_CHARS]
    folded = fold(text)
    toks = _TOKENIZE(folded)
    language = "es" if toks.es > toks.en else "en"
    items, props, labeled, allp = _match(toks.words)
    starts, ends = toks.starts, toks.ends
    words = toks.words
    mods, clause, _terms = scopes(
        items, props, bool(allp & P_CARE), lambda k: words[items[k][0]] in _INABILITY
    )

    def span_of(k: int) -> tuple[int, int]:
        i0, i1, _ = items[k]
        return starts[i0], ends[i1 - 1]

    hits, sets_in_clause, phrases = _mentions(labeled, clause, mods, span_of)

    absorbed: set[tuple[int, str]] = set()
    if sets_in_clause:
        _combos(ctx, sets_in_clause, mods, span_of, hits, absorbed, phrases, items)
    if LEX.patterns is not None:
        _patterns(folded, toks.starts, items, clause, mods, hits)

    # ---- numbers, then a bare YES answers the question that was asked
    readings = NUMBERS.read(folded, ctx) if _has_number(toks.words, text) else []
    flags: dict[str, list[Evidence]] = {}
    watch: dict[str, list[Evidence]] = {}
    ambiguous: dict[str, list[Evidence]] = {}
    if readings:
        temperature_f, pain_score, current_temp = _numbers(
            text, readings, toks.starts, items, clause, mods, flags, watch, ambiguous
        )
    else:
        temperature_f = pain_score = current_temp = None
    if ctx in YES_MEANS:
        _yes_hits(ctx, items, clause, mods, span_of, current_temp is not None, hits)
    _decide_all(hits, absorbed, current_temp is not None, text, flags, watch, ambiguous)
    review = ""
    if model is not None:
        seen = _topics_seen(hits, pain_score is not None, temperature_f is not None)
        review = learned_candidates(model, folded, text, toks, items, clause, mods, seen, flags)
    added, emergency = escalations(folded, ctx, flags, lambda pos: in_scope(pos, toks.starts, items, clause))
    for name, sp in added.items():
        flags.setdefault(name, []).append(Evidence(name, text[sp[0] : sp[1]], sp, "flag"))
    if not flags and not review:
        review = _review_reason(text, toks.words, items)
    rank = 3 if emergency else 1 if (watch or ambiguous) else 0
    for f in flags:
        rank = max(rank, _FLAG_RANK[f])
    return Assessment(
        frozenset([_FLAG_BY_VALUE[f] for f in flags]) if flags else _NO_FLAGS,
        _SEVERITY_BY_RANK[rank],
        _evidence(flags, watch, ambiguous),
        temperature_f,
        pain_score,
        language,  # type: ignore[arg-type]
        frozenset(watch),
        frozenset(ambiguous),
        ctx,
        bool(review),
        review,
    )


def _yes_hits(
    ctx: str,
    items: list[Item],
    clause: list[int],
    mods: list[int],
    span_of: Any,
    measured: bool,
    hits: list[_Hit],
) -> None:
    """A leading bare YES under a ``<topic>_check`` is a mention of what was asked."""
    k = _bare_yes(items, clause)
    if k is None:
        return
    for lab in YES_MEANS[ctx]:
        if lab == "f:fever" and measured:
            continue  # the reading decides, not the YES
        hits.append(_Hit(lab, k, mods[k] | _clause_mods_for_yes(k, mods, items, clause), span_of(k)))


def _mentions(
    labeled: list[tuple[int, _Leaf]], clause: list[int], mods: list[int], span_of: Any
) -> tuple[list[_Hit], dict[int, dict[str, list[int]]], dict[int, str]]:
    """(one hit per flag/watch/ambiguous label of each matched phrase, per clause the items of
    each combo set, the phrase of each set item)."""
    hits: list[_Hit] = []
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
                hits.append(_Hit(lab, k, mk, sp, governed, phrase))
        if set_names:
            phrases[k] = phrase
            per = sets_in_clause.setdefault(ck, {})
            for name in set_names:
                per.setdefault(name, []).append(k)
    return hits, sets_in_clause, phrases


def _decide_all(
    hits: list[_Hit],
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


def _topics_seen(hits: list[_Hit], pain_read: bool, temperature_read: bool) -> set[str]:
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
    return seen


def _evidence(*groups: dict[str, list[Evidence]]) -> tuple[Evidence, ...]:
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
_NO_FLAGS: frozenset[Flag] = frozenset()


# first words of "can't X"-style mentions (see negation.modifiers)
_INABILITY = frozenset({"cant", "unable", "no", "dont", "isnt", "havent", "wont", "not"})

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


def _has_number(words: list[str], text: str) -> bool:
    """Cheap pre-check so replies without any number skip the number reader."""
    return not _NUMBER_WORDS.isdisjoint(words)


_LEAF_INFO: dict[frozenset[str], tuple[tuple[str, ...], tuple[str, ...], bool]] = {}


def _leaf_info(labels: frozenset[str]) -> tuple[tuple[str, ...], tuple[str, ...], bool]:
    """(flag/watch/ambiguous labels, set names, fever-word-governed) of a trie leaf, memoized
    (leaves are a fixed population), sorted so evidence order never depends on hashing."""
    info = _LEAF_INFO.get(labels)
    if info is None:
        mentions = tuple(sorted(lab for lab in labels if lab[0] in "fwa" and lab[1] == ":"))
        set_names = tuple(sorted(lab[2:] for lab in labels if lab[0] == "s"))
        info = _LEAF_INFO[labels] = (mentions, set_names, "g:fever" in labels)
    return info


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


def _combos(
    ctx: str,
    sets_in_clause: dict[int, dict[str, list[int]]],
    mods: list[int],
    span_of: Any,
    hits: list[_Hit],
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
    hits: list[_Hit],
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
    hits.append(_Hit(combo.label, k, mods[k], (a, b), False, words[k]))
    for fl in absorbs:
        for i in primary:
            absorbed.add((i, fl))


_COMBOS_BY_PRIMARY: dict[str, tuple[_CompiledCombo, ...]] = {
    name: tuple((c, c.parts[0], c.parts[1:], tuple(f"f:{fl}" for fl in c.absorbs)) for c in combos)
    for name, combos in LEX.combos_by_primary.items()
}


def _patterns(
    s: str, starts: list[int], items: list[Item], clause: list[int], mods: list[int], hits: list[_Hit]
) -> None:
    """Regex patterns of the lexicon over the folded reply ``s``."""
    assert LEX.patterns is not None
    for m in LEX.patterns.finditer(s):
        label = LEX.pattern_labels[m.lastgroup or ""]
        k = _item_at(m.start(), starts, items)
        hits.append(_Hit(label, -1, mods[k] if k >= 0 else 0, m.span()))


def _item_at(pos: int, starts: list[int], items: list[Item]) -> int:
    """Index of the item holding the token that starts at or before ``pos``."""
    t = bisect_right(starts, pos) - 1
    if t < 0:
        return -1
    for k, (i0, i1, _labels) in enumerate(items):
        if i0 <= t < i1:
            return k
    return -1


def _numbers(
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
        k = _item_at(r.span[0], starts, items)
        m = _clause_bits(k, items, clause, mods) if k >= 0 else 0
        if m & (M_HYPO | M_THIRD):
            continue
        if r.kind == "temp":
            (past if m & M_PAST else current).append((r.value, r))
        else:
            pains.append(r)
    temperature_f: float | None = None
    current_temp: float | None = None
    if current:
        v, r = max(current, key=lambda x: x[0])
        temperature_f = current_temp = v
        if v >= FEVER_F:
            _add(flags, "fever", text, r.span, "flag")
        elif v >= LOW_GRADE_F:
            _add(watch, "low_grade_temp", text, r.span, "watch")
    if past:
        v, r = max(past, key=lambda x: x[0])
        if temperature_f is None:
            temperature_f = v
        if v >= LOW_GRADE_F and not (current_temp is not None and current_temp >= FEVER_F):
            _add(watch, "fever_past", text, r.span, "watch")
    pain_score: int | None = None
    if pains:
        r = max(pains, key=lambda x: (x.value, x.high))
        pain_score = math.floor(r.value)
        if r.value >= SEVERE_PAIN:
            _add(flags, "severe_pain", text, r.span, "flag")
        elif r.value >= MODERATE_PAIN:
            _add(watch, "mild_pain", text, r.span, "watch")
        if r.low < SEVERE_PAIN <= r.high and r.value < SEVERE_PAIN:
            _add(ambiguous, "pain", text, r.span, "ambiguous")
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


def _add(
    group: dict[str, list[Evidence]], topic: str, text: str, span: tuple[int, int], kind: EvidenceKind
) -> None:
    group.setdefault(topic, []).append(Evidence(topic, text[span[0] : span[1]], span, kind))


def _decide(
    h: _Hit,
    text: str,
    flags: dict[str, list[Evidence]],
    watch: dict[str, list[Evidence]],
    ambiguous: dict[str, list[Evidence]],
) -> None:
    """Turn one mention into a flag, a watch item, an ambiguity, or nothing."""
    m = h.mods
    kind, name = h.label[0], h.label[2:]
    if m & (M_HYPO | M_THIRD):
        return
    if kind == "f":
        if name in EMERGENCY_FLAGS:
            # emergencies: only a tight, explicit negation or resolution suppresses them
            if not m & (M_NEG_TIGHT | M_RES_TIGHT):
                _add(flags, name, text, h.span, "flag")
            return
        if m & (M_NEG | M_RES | M_NORMAL):
            return
        group, topic, ev_kind = _downgrade(h, name, m)
        if group == "flag":
            _add(flags, name, text, h.span, "flag")
        elif group:
            _add(watch if group == "watch" else ambiguous, topic, text, h.span, ev_kind)
        return
    if m & (M_NEG | M_RES | M_NORMAL):
        return
    if m & M_MILD and name in LEX.mild_ignored:
        return
    if kind == "w":
        _add(watch, name, text, h.span, "watch")
    else:
        _add(ambiguous, name, text, h.span, "ambiguous")


def _downgrade(h: _Hit, name: str, m: int) -> tuple[str, str, EvidenceKind]:
    """How an urgent flag mention's modifiers soften it: ("flag", name, "flag"), a watch or
    ambiguous (group, topic, kind), or ("", "", "flag") for nothing (chronic, not new)."""
    opt = LEX.options[name]
    worse = bool(m & M_WORSE)
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


assert STOP not in LEX.trie and COMMA not in LEX.trie
_TRIE = _compile_trie(LEX.trie, ())
