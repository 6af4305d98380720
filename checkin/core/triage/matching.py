"""Matching a reply's words against the lexicon: the tokenizer and the phrase trie.

Contract: ``TOKENIZE(folded)`` returns the reply's tokens (spellings folded, misspellings
fuzzy-corrected to the lexicon's vocabulary); ``match_phrases(words)`` finds, greedily, the
longest lexicon phrase at each position and returns the items the scope passes read.  The
lexicon is loaded (and validated) once, at import: nothing here reads a file per call.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from rapidfuzz import fuzz, process

from . import lexicon as _lexicon
from .negation import HARD, P_HARD, P_NONE, P_SOFT, SOFT, Item, leaf_props
from .normalize import COMMA, STOP, Tokenizer
from .numbers import NumberReader

LEX = _lexicon.load()
NUMBERS = NumberReader(LEX)
_LEAF = _lexicon.LEAF

FUZZY_CUTOFF = 85  # rapidfuzz ratio; 85 keeps "feaver"->fever but not "smelling"->swelling
MIN_FUZZY_LEN = 5  # shorter words collide too easily ("red"/"bed", "numb"/"dumb")


@lru_cache(maxsize=16384)
def _correct(word: str) -> str:
    """Nearest fuzzy vocabulary word, or the word itself (cached: pure function of word)."""
    hit = process.extractOne(word, LEX.fuzzy_targets, scorer=fuzz.ratio, score_cutoff=FUZZY_CUTOFF)
    return hit[0] if hit is not None else word


TOKENIZE = Tokenizer(
    LEX.token_re, LEX.spelling, LEX.emoji, LEX.filler, LEX.known, _correct, LEX.lang, MIN_FUZZY_LEN
)


# The lexicon trie with each leaf replaced by everything assess needs about it, computed once:
# (labels, negation.leaf_props bits, the phrase's words joined, flag/watch/ambiguous labels,
# set names, fever-word-governed).  A trie node is one word sequence, so the phrase is fixed.
Leaf = tuple[frozenset[str], int, str, tuple[str, ...], tuple[str, ...], bool]


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


def match_phrases(words: list[str]) -> tuple[list[Item], list[int], list[tuple[int, Leaf]], int]:
    """Greedy longest-phrase matching over the word list: (items, leaf_props per item,
    (index, leaf) of the matched phrases, OR of their props)."""
    trie = _TRIE
    items: list[Item] = []
    props: list[int] = []
    labeled: list[tuple[int, Leaf]] = []
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
        best: Leaf | None = None
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


# first words of "can't X"-style mentions (see negation.modifiers)
INABILITY = frozenset({"cant", "unable", "no", "dont", "isnt", "havent", "wont", "not"})

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


assert STOP not in LEX.trie and COMMA not in LEX.trie
_TRIE = _compile_trie(LEX.trie, ())
