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

NUM = "#"  # every number becomes this word (numbers are read by numbers.py, not the trie)
COMMA = ","  # soft clause boundary
STOP = "."  # hard clause boundary

_TOKEN_PATTERN = (
    r"(?P<n>\d+(?:[.,]\d+)?)"  # noqa: S105 - a regex, not a password
    r"|(?P<w>[a-z]+(?:'[a-z]+)*)"
    r"|(?P<c>,|(?<=\s)[-–—]+(?=\s))"  # "no fever - chills though": a spaced dash is a comma
    r"|(?P<b>[.;:!?¿¡()\[\]\n…]+|(?<=\s)/(?=\s))"  # "fever: no / redness: yes"
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


def phrase_words(
    phrase: str, spelling: Mapping[str, tuple[str, ...]], filler: frozenset[str]
) -> tuple[str, ...]:
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
    en: int  # language evidence: words only the English lexicon knows
    es: int  # ... only the Spanish one knows


def tokenize(
    text: str,
    regex: re.Pattern[str],
    spelling: Mapping[str, tuple[str, ...]],
    emoji: Mapping[str, tuple[str, ...]],
    filler: frozenset[str],
    known: frozenset[str],
    correct: Callable[[str], str],
    lang: Mapping[str, int],
    min_fuzzy_len: int,
) -> Tokens:
    """Split a reply into normalized words.

    Texting spellings are replaced from ``spelling``; words that are neither known nor short
    are passed to ``correct`` (the cached fuzzy matcher); emoji become their lexicon words;
    filler words are dropped so phrases match across "really", "so", "muy"...
    """
    return Tokenizer(regex, spelling, emoji, filler, known, correct, lang, min_fuzzy_len)(fold(text))


# Group numbers of _TOKEN_PATTERN (m.lastindex is cheaper than m.lastgroup).
_G_NUM, _G_WORD, _G_COMMA, _G_BREAK = 1, 2, 3, 4


class Tokenizer:
    """``tokenize`` compiled for one lexicon: call it with already *folded* text.

    What a word becomes (dropped filler, texting spelling, fuzzy correction, language score)
    depends on the word alone, so it is memoized per word (a bounded table).
    """

    MEMO_MAX = 50_000

    __slots__ = (
        "_correct",
        "_emoji",
        "_filler",
        "_finditer",
        "_known",
        "_lang",
        "_memo",
        "_min_fuzzy_len",
        "_spelling",
    )

    def __init__(
        self,
        regex: re.Pattern[str],
        spelling: Mapping[str, tuple[str, ...]],
        emoji: Mapping[str, tuple[str, ...]],
        filler: frozenset[str],
        known: frozenset[str],
        correct: Callable[[str], str],
        lang: Mapping[str, int],
        min_fuzzy_len: int,
    ) -> None:
        self._finditer = regex.finditer
        self._spelling = spelling
        self._emoji = emoji
        self._filler = filler
        self._known = known
        self._correct = correct
        self._lang = lang
        self._min_fuzzy_len = min_fuzzy_len
        self._memo: dict[str, tuple[tuple[str, ...], int, int]] = {}

    def _word(self, raw: str) -> tuple[tuple[str, ...], int, int]:
        """(output words, +en, +es) for one matched word."""
        w = raw.replace("'", "") if "'" in raw else raw
        if w in self._filler:
            out: tuple[tuple[str, ...], int, int] = ((), 0, 0)
        else:
            rep = self._spelling.get(w)
            if rep is not None:
                out = (rep, 0, 0)
            else:
                if w not in self._known and len(w) >= self._min_fuzzy_len:
                    w = self._correct(w)
                score = self._lang.get(w, 0)
                out = ((w,), 1 if score > 0 else 0, 1 if score < 0 else 0)
        memo = self._memo
        if len(memo) >= self.MEMO_MAX:
            memo.clear()
        memo[raw] = out
        return out

    def __call__(self, s: str) -> Tokens:
        words: list[str] = []
        starts: list[int] = []
        ends: list[int] = []
        en = es = 0
        memo = self._memo
        add_w, add_s, add_e = words.append, starts.append, ends.append
        for m in self._finditer(s):
            g = m.lastindex
            a, b = m.span()
            if g == _G_WORD:
                e = memo.get(s[a:b])
                if e is None:
                    e = self._word(s[a:b])
                rep, de, ds = e
                if len(rep) == 1:
                    add_w(rep[0])
                    add_s(a)
                    add_e(b)
                    en += de
                    es += ds
                    continue
                for r in rep:
                    add_w(r)
                    add_s(a)
                    add_e(b)
                continue
            if g == _G_NUM:
                add_w(NUM)
            elif g == _G_COMMA:
                add_w(COMMA)
            elif g == _G_BREAK:
                add_w(STOP)
            else:  # emoji
                for r in self._emoji[s[a:b]]:
                    add_w(r)
                    add_s(a)
                    add_e(b)
                continue
            add_s(a)
            add_e(b)
        return Tokens(words, starts, ends, en, es)
