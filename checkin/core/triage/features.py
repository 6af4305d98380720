"""Sparse text features of the learned triage layer, shared by training and run time.

Contract: ``words_of(folded)`` tokenizes; a reply's features are, for every word, the
character 2-5 grams of the word padded with spaces and the word itself (``word_features``),
plus every pair of adjacent words (``bigram``), counted with repeats (``counts``).  Word
features are prefixed so they never collide with character grams.  Every digit run is one
``#`` (numbers are read by the rules, never learned).  The features depend on the folded text alone, never on
the lexicon, so clinicians can extend the vocabulary without invalidating the trained model.

Cost is linear in the text length: at most 4 character grams per character and 2 word grams
per word; at run time a word's grams are looked up once and memoized.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# Letters and digits make words; any other non-ASCII symbol (an emoji) is a word of its own.
_WORD_RE = re.compile(r"[a-z]+|\d+|[^\x00-\x7f\s]")
CHAR_MIN, CHAR_MAX = 2, 5
WORD_PREFIX = "\x01"  # word grams never collide with character grams (no \x01 in text)


@dataclass(frozen=True, slots=True)
class Words:
    """Word tokens of a reply: ``words[i]`` came from ``folded[spans[i][0]:spans[i][1]]``."""

    words: tuple[str, ...]
    spans: tuple[tuple[int, int], ...]


def words_of(folded: str) -> Words:
    """Tokenize folded text into words (digit runs become ``#``)."""
    words: list[str] = []
    spans: list[tuple[int, int]] = []
    for m in _WORD_RE.finditer(folded):
        w = m.group()
        words.append("#" if w[0].isdigit() else w)
        spans.append(m.span())
    return Words(tuple(words), tuple(spans))


def word_features(word: str) -> list[str]:
    """The features one word brings wherever it stands: the character 2-5 grams of the word
    padded with a space on each side (so word edges are grams), and the word itself.  A pure
    function of the word, so run time memoizes its weights per word."""
    s = f" {word} "
    n = len(s)
    out = [s[i : i + k] for k in range(CHAR_MIN, CHAR_MAX + 1) for i in range(n - k + 1)]
    out.append(WORD_PREFIX + word)
    return out


def bigram(prev: str, word: str) -> str:
    """The feature of two adjacent words."""
    return f"{WORD_PREFIX}{prev} {word}"


def counts(w: Words) -> dict[str, int]:
    """Every feature of a tokenized reply with how often it occurs (training's view)."""
    out: dict[str, int] = {}
    prev = ""
    for word in w.words:
        for g in word_features(word):
            out[g] = out.get(g, 0) + 1
        if prev:
            b = bigram(prev, word)
            out[b] = out.get(b, 0) + 1
        prev = word
    return out
