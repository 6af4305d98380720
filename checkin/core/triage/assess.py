"""``assess(text, context)``: one patient reply -> an Assessment.  Pure and deterministic.

Pipeline (each step is its own module):
 1. matching            - fold case/accents, spellings, fuzzy-correct misspellings, emoji
                          (normalize.Tokenizer), then the greedy longest phrase at each position
 2. negation.scopes     - negation/resolution/hedge/chronic/... scope per item
 3. mentions            - one hit per matched symptom; combos ("red" + "incision" in one
                          clause -> wound_redness) and regex patterns
 4. readings            - temperatures and pain scores (numbers.NumberReader)
 5. answers             - a bare YES answers the question that was asked
 6. decide              - each mention becomes a flag, a watch item, an ambiguity, or nothing
 7. layered, escalate   - the learned layer's in-scope candidates, then the escalations
Severity = the highest of the flags' severities, and watch if anything is watched/ambiguous.
"""

from __future__ import annotations

from .answers import YES_MEANS, normalize_context, yes_hits
from .decide import decide_all, evidence_in_order, topics_seen
from .escalate import escalations
from .layered import LEARNED, MAX_CHARS, in_scope, learned_candidates
from .layered import review_reason as _review_reason
from .learned import LearnedModel
from .matching import INABILITY, LEX, NUMBERS, TOKENIZE, match_phrases
from .mentions import combos, mentions, patterns
from .model import FLAG_SEVERITY, Assessment, Evidence, Flag, Severity
from .negation import scopes, writer_role
from .normalize import fold
from .readings import has_number, read_numbers

__all__ = ["assess", "assess_with", "normalize_context"]


_FLAG_BY_VALUE = {f.value: f for f in Flag}
_FLAG_RANK = {f.value: s.rank for f, s in FLAG_SEVERITY.items()}
_SEVERITY_BY_RANK = {s.rank: s for s in Severity}
_NO_FLAGS: frozenset[Flag] = frozenset()


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
    toks = TOKENIZE(folded)
    language = "es" if toks.es > toks.en else "en"
    items, props, labeled, allp = match_phrases(toks.words)
    starts, ends = toks.starts, toks.ends
    words = toks.words
    caregiver, relatives = writer_role(allp)
    mods, clause, _terms = scopes(
        items, props, caregiver, lambda k: words[items[k][0]] in INABILITY, relatives
    )

    def span_of(k: int) -> tuple[int, int]:
        i0, i1, _ = items[k]
        return starts[i0], ends[i1 - 1]

    hits, sets_in_clause, phrases = mentions(labeled, clause, mods, span_of)

    absorbed: set[tuple[int, str]] = set()
    if sets_in_clause:
        combos(ctx, sets_in_clause, mods, span_of, hits, absorbed, phrases, items)
    if LEX.patterns is not None:
        patterns(folded, toks.starts, items, clause, mods, hits)

    # ---- numbers, then a bare YES answers the question that was asked
    readings = NUMBERS.read(folded, ctx) if has_number(toks.words, text) else []
    flags: dict[str, list[Evidence]] = {}
    watch: dict[str, list[Evidence]] = {}
    ambiguous: dict[str, list[Evidence]] = {}
    if readings:
        temperature_f, pain_score, current_temp = read_numbers(
            text, readings, toks.starts, items, clause, mods, flags, watch, ambiguous
        )
    else:
        temperature_f = pain_score = current_temp = None
    if ctx in YES_MEANS:
        yes_hits(ctx, items, clause, mods, span_of, current_temp is not None, hits)
    decide_all(hits, absorbed, current_temp is not None, text, flags, watch, ambiguous)
    review = ""
    if model is not None:
        seen = topics_seen(hits, pain_score is not None, temperature_f is not None)
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
        evidence_in_order(flags, watch, ambiguous),
        temperature_f,
        pain_score,
        language,  # type: ignore[arg-type]
        frozenset(watch),
        frozenset(ambiguous),
        ctx,
        bool(review),
        review,
    )
