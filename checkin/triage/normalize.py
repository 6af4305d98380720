"""Text normalization and tokenization shared by the lexicon compiler and ``assess``.

Contract: ``fold(text)`` has the same length as ``text`` for everything but a handful of exotic
code points (so token offsets are offsets into the original reply), lowercases, strips Latin
accents and unifies apostrophes.  ``tokenize`` turns a reply into parallel lists of words and
character spans; words are what the lexicon trie is matched against.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Mapping
from dataclasses import dataclass

# Accent folding by str.translate: one code point in, one out, so offsets are preserved.
# (unicodedata.normalize("NFD") would change lengths and cost more per call.)
_FOLD_SRC = "áàâäãåéèêëíìîïóòôöõúùûüñçÁÀÂÄÃÅÉÈÊËÍÌÎÏÓÒÔÖÕÚÙÛÜÑÇ’‘`´ʼ＇“”º"
_FOLD_DST = "aaaaaaeeeeiiiiooooouuuuncaaaaaaeeeeiiiiooooouuuunc''''''\"\"°"
assert len(_FOLD_SRC) == len(_FOLD_DST)
FOLD = str.maketrans(_FOLD_SRC, _FOLD_DST)

NUM = "#"        # every number becomes this word (numbers are read by numbers.py, not the trie)
COMMA = ","      # soft clause boundary
STOP = "."       # hard clause boundary

_TOKEN_PATTERN = (
    r"(?P<n>\d+(?:[.,]\d+)?)"
    r"|(?P<w>[a-z]+(?:'[a-z]+)*)"
    r"|(?P<c>,|(?<=\s)[-–—]+(?=\s))"        # "no fever - chills though": a spaced dash is a comma
    r"|(?P<b>[.;:!?¿¡()\[\]\n…]+|(?<=\s)/(?=\s))"   # "fever: no / redness: yes"
)


def fold(text: str) -> str:
    """Lowercase and strip accents; same length as ``text`` in practice."""
    return text.lower().translate(FOLD)


def token_regex(emoji: list[str]) -> re.Pattern[str]:
    """The tokenizer regex, with the lexicon's emoji as an extra alternative."""
    if not emoji:
        return re.compile(_TOKEN_PATTERN)
    alts = "|".join(re.escape(e) for e in sorted(emoji, key=len, reverse=True))
    return re.compile(_TOKEN_PATTERN + f"|(?P<e>{alts})")


_PLAIN_RE = re.compile(_TOKEN_PATTERN)


def phrase_words(phrase: str, spelling: Mapping[str, tuple[str, ...]],
                 filler: frozenset[str]) -> tuple[str, ...]:
    """Words of a lexicon phrase, normalized exactly like reply text (minus fuzzy matching)."""
    out: list[str] = []
    # a literal "#" in a phrase stands for any number ("# days ago")
    text = fold(unicodedata.normalize("NFC", phrase)).replace("#", " 0 ")
    for m in _PLAIN_RE.finditer(text):
        kind = m.lastgroup
        if kind == "n":
            out.append(NUM)
        elif kind == "w":
            w = m.group().replace("'", "")
            if w in filler:
                continue
            out.extend(spelling.get(w, (w,)))
        # punctuation inside a phrase is ignored: phrases never span a clause boundary
    return tuple(out)


@dataclass(slots=True)
class Tokens:
    """Parallel lists: ``words[i]`` spans ``text[starts[i]:ends[i]]`` of the original reply."""

    words: list[str]
    starts: list[int]
    ends: list[int]
    en: int            # language evidence: words only the English lexicon knows
    es: int            # ... only the Spanish one knows


def tokenize(text: str, regex: re.Pattern[str], spelling: Mapping[str, tuple[str, ...]],
             emoji: Mapping[str, tuple[str, ...]], filler: frozenset[str],
             known: frozenset[str], correct: Callable[[str], str],
             lang: Mapping[str, int], min_fuzzy_len: int) -> Tokens:
    """Split a reply into normalized words.

    Texting spellings are replaced from ``spelling``; words that are neither known nor short
    are passed to ``correct`` (the cached fuzzy matcher); emoji become their lexicon words;
    filler words are dropped so phrases match across "really", "so", "muy"...
    """
    s = fold(text)
    words: list[str] = []
    starts: list[int] = []
    ends: list[int] = []
    en = es = 0
    for m in regex.finditer(s):
        kind = m.lastgroup
        a, b = m.span()
        if kind == "w":
            w = m.group()
            if "'" in w:
                w = w.replace("'", "")
            if w in filler:
                continue
            rep = spelling.get(w)
            if rep is None:
                if w not in known and len(w) >= min_fuzzy_len:
                    w = correct(w)
                score = lang.get(w, 0)
                if score > 0:
                    en += 1
                elif score < 0:
                    es += 1
                words.append(w)
                starts.append(a)
                ends.append(b)
                continue
            for r in rep:
                words.append(r)
                starts.append(a)
                ends.append(b)
            continue
        if kind == "n":
            words.append(NUM)
        elif kind == "c":
            words.append(COMMA)
        elif kind == "b":
            words.append(STOP)
        else:  # emoji
            for r in emoji[m.group()]:
                words.append(r)
                starts.append(a)
                ends.append(b)
            continue
        starts.append(a)
        ends.append(b)
    return Tokens(words, starts, ends, en, es)
