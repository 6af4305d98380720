"""How the learned layer's candidates join the rules' conclusions, and the review signal.

Contract: ``learned_candidates`` adds a flag the rules did not find when the learned model is
confident (probability >= the label's ``flag_at``) AND the words that made it fire are in
scope: not negated or resolved ("no X", "X is gone"), not hypothetical or a question about
the future, not about someone else.  A topic the rules mentioned is the rules' to decide (they
read negation, chronic and numbers more precisely), so the learned layer never overrides them.
A candidate between ``review_at`` and ``flag_at`` (or out of scope only by a hedge) is not a
flag but a reason for a person to read the reply, returned as a short code
(``learned_unsure:<flag>,...``; ``question``; ``unreadable``).  A reply of fewer than
``MIN_WORDS`` words never gets a learned flag, only review: one word is a handful of
character grams ("templates" shares "temp" with fever).
``review_reason`` covers the other "neither benign nor flagged" replies: questions to staff
and text with nothing readable in it.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from .features import Words, words_of
from .learned import LearnedModel, load_packaged
from .mentions import item_at
from .model import FLAG_SEVERITY, Evidence, Flag, Severity
from .negation import HARD, SOFT, Item
from .normalize import Tokens

MAX_CHARS = 1600  # the stored body is cut here; triage never reads more
LEARNED: LearnedModel | None = load_packaged()

_EMERGENCY = frozenset(f.value for f, s in FLAG_SEVERITY.items() if s is Severity.EMERGENCY)
# cue labels (see lexicon "cues") that put a learned candidate out of scope
_NEG_BEFORE = frozenset({"c:neg", "c:negl", "c:resb"})
_RES_AFTER = frozenset({"c:resa", "c:norm"})
_HYPO = "c:hypo"
_LOOK = 4  # items between a negation cue and the words it governs (as the rules' "tight")


def learned_candidates(
    model: LearnedModel,
    folded: str,
    text: str,
    toks: Tokens,
    items: Sequence[Item],
    clause: Sequence[int],
    mods: Sequence[int],
    rules_topics: set[str],
    flags: dict[str, list[Evidence]],
) -> str:
    """Add in-scope confident candidates to ``flags``; return a review reason ("" if none)."""
    words = words_of(folded)
    if not any(w.isalpha() for w in words.words):
        return ""  # numbers and bare symbols are the rules' to read
    probs = model.scores(words)
    # A reply of one word gives the model a handful of character grams: "templates" shares
    # "temp" with fever.  What it says there goes to a person, never to a flag.
    short = sum(1 for w in words.words if w.isalpha()) < MIN_WORDS
    review: list[str] = []
    for j, p in enumerate(probs):
        name = model.labels[j]
        if p < model.review_at[j] or name in flags or name in rules_topics or name not in _FLAG_CODES:
            continue
        found = _driving_words(model, words, j, toks, items, clause)
        if found is None:
            continue
        (a, b), labels = found
        if p >= model.flag_at[j] and not short and _may_flag(name, labels, folded, a):
            flags.setdefault(name, []).append(Evidence(name, text[a:b], (a, b), "flag", "learned"))
        else:
            review.append(name)
    # unsure of something no worse than what is already flagged: the flag brings a person anyway
    top = max((_RANK[f] for f in flags), default=0)
    review = [r for r in review if _RANK[r] > top]
    return f"learned_unsure:{','.join(review)}" if review else ""


def _driving_words(
    model: LearnedModel, words: Words, j: int, toks: Tokens, items: Sequence[Item], clause: Sequence[int]
) -> tuple[tuple[int, int], frozenset[str] | None] | None:
    """The span of the word that drove label ``j`` and the rules' labels on it, or None when
    that word is out of the layer's reach: a number (readings are the rules': units, ranges,
    context), a phrase the rules concluded on, or out of the rules' scopes."""
    i = model.strongest_word(words, j)
    if i < 0 or words.words[i] == "#":
        return None
    a, b = words.spans[i]
    k = item_at(a, toks.starts, items)
    if k < 0:
        return (a, b), None
    labels = items[k][2]
    if _read_by_rules(labels) or _out_of_scope(k, items, clause, model.labels[j] in _EMERGENCY):
        return None
    return (a, b), labels


def _may_flag(name: str, labels: frozenset[str] | None, folded: str, pos: int) -> bool:
    """A confident candidate becomes a flag, unless it is urgent and hangs on a bare topic
    word ("incision") or sits in a question ("how do I prevent a clot"): those go to a person."""
    if name in _EMERGENCY:
        return True
    return not _topic_word(labels) and not _in_question(folded, pos)


_RANK = {f.value: s.rank for f, s in FLAG_SEVERITY.items()}
MIN_WORDS = 2


_RULES_WORDS = frozenset({"c:yes", "c:no", "c:neutral"})


def _read_by_rules(labels: frozenset[str] | None) -> bool:
    """The words are part of a phrase the rules matched and concluded on: a symptom (flag,
    watch or ambiguous topic), an idiom the lexicon marks neutral ("dying to get back to golf"),
    or a bare yes/no, whose meaning is the question's (the learned layer has no context)."""
    if not labels or labels is HARD or labels is SOFT:
        return False
    return not _RULES_WORDS.isdisjoint(labels) or any(lab[1] == ":" and lab[0] in "fwa" for lab in labels)


def _topic_word(labels: frozenset[str] | None) -> str:
    """The lexicon set ("s:pain_meds") when the words are only a topic the rules know
    ("pills", "incision", "legs": set words that say no symptom), else "".  An urgent
    candidate driven by them goes to a person, not to a flag.  Emergencies keep them: the
    folds lose emergencies that hang on "chest", "bottom" or "oxy" when they do not (which
    leaves "took one of my pills" flagged as self-harm: a known false alarm)."""
    if not labels or labels is HARD or labels is SOFT:
        return ""
    if not all(lab[0] in "sc" for lab in labels):
        return ""
    return min((lab for lab in labels if lab[0] == "s"), default="")


_FLAG_CODES = frozenset(f.value for f in Flag)
_SENTENCE_END = re.compile(r"[.!?\n]")
_QUESTION_START = re.compile(
    r"\s*(?:how|what|when|why|should|shall|can|could|would|will|is|are|do|does|did|am|may|"
    r"como|que|cuando|debo|puedo|es|hay)\b"
)


def _in_question(folded: str, pos: int) -> bool:
    """The sentence holding ``pos`` asks something ("how do I prevent a clot"): an urgent
    candidate there goes to a person, not to a flag."""
    start = max(folded.rfind(c, 0, pos) for c in ".!?\n") + 1
    m = _SENTENCE_END.search(folded, pos)
    if m is not None and m.group() == "?":
        return True
    return bool(_QUESTION_START.match(folded, start))


def in_scope(pos: int, starts: Sequence[int], items: Sequence[Item], clause: Sequence[int]) -> bool:
    """The words at ``pos`` are the patient's and not negated (hypotheticals stay in scope:
    the caller uses it for emergencies)."""
    k = item_at(pos, starts, items)
    return k < 0 or not _out_of_scope(k, items, clause, True)


def _out_of_scope(k: int, items: Sequence[Item], clause: Sequence[int], emergency: bool) -> bool:
    """Negated/resolved right around item ``k``, about someone else, or (for all but the
    emergencies: "if this doesn't stop I'll hurt myself" is still self-harm) hypothetical."""
    ci = clause[k]
    if _someone_else(k, items):
        return True
    for j in range(max(0, k - _LOOK), k):
        labels = items[j][2]
        if clause[j] == ci and labels and labels is not HARD and not _NEG_BEFORE.isdisjoint(labels):
            return True
    for j in range(k + 1, min(len(items), k + 1 + _LOOK)):
        labels = items[j][2]
        if labels is HARD or labels is SOFT or clause[j] != ci:
            break
        if labels and not _RES_AFTER.isdisjoint(labels):
            return True
    if emergency:
        return False
    return any(clause[j] == ci and labels and _HYPO in labels for j, (_a, _b, labels) in enumerate(items))


def _someone_else(k: int, items: Sequence[Item]) -> bool:
    """The rules' third-party scope at item ``k``: opened by "my friend" (or, in a
    caregiver's message, by "she"/"mom"), closed by a first-person word or a clause break...
    except that a caregiver's "she" IS the patient, so it only opens on "not the patient"
    cues there; see negation.scopes."""
    care = any(labels and "c:care" in labels for _a, _b, labels in items)
    own = any(labels and "c:self" in labels for _a, _b, labels in items)
    caregiver, relatives = care and not own, care and own
    on = rel = False
    for j in range(k):
        labels = items[j][2]
        if labels is None:
            continue
        if labels is HARD or labels is SOFT:
            rel = rel and labels is SOFT  # a relative's scope crosses commas (negation.scopes)
            on = rel
        elif relatives and "c:care" in labels:
            on = rel = True
        elif "c:third" in labels or (caregiver and "c:notpt" in labels):
            on = True
        elif "c:me" in labels:
            on = rel = False
    return on


def review_reason(text: str, words: Sequence[str], items: Sequence[Item]) -> str:
    """Why a reply with no flag still needs a person ("" when it does not)."""
    if not any(w.isalpha() or w == "#" for w in words):
        return "unreadable" if text.strip() else ""
    if "?" in text:
        return "question"
    return ""
