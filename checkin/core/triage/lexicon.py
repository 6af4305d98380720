"""Load, validate and compile the triage vocabulary (``lexicon/en.yaml``, ``lexicon/es.yaml``).

Contract: ``load()`` reads every ``lexicon/*.yaml`` package data file once with
``yaml.safe_load``, checks its shape and raises ``LexiconError`` naming the file and the key
that is wrong, then compiles everything ``assess`` needs per call into plain dicts, sets and
regexes (a word trie, the fuzzy vocabulary, combos, the tokenizer regex) so no YAML or regex
compilation happens at call time.  The format itself is documented at the top of en.yaml.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

import yaml

from .lexicon_schema import (
    CONTEXTS,
    CUE_NAMES,
    FLAG_CODES,
    TOPIC_CHECKS,
    LexiconError,
    Raw,
    validate,
)
from .normalize import fold, phrase_words, token_regex

__all__ = [
    "CONTEXTS",
    "CUE_CODE",
    "CUE_NAMES",
    "LEAF",
    "TOPIC_CHECKS",
    "Combo",
    "FlagOptions",
    "Lexicon",
    "LexiconError",
    "compile_lexicon",
    "load",
    "load_file",
    "validate",
]

LEAF = ""  # trie key holding the labels of a complete phrase (no word is the empty string)

CUE_CODE = {
    "negation": "neg",
    "negation_list": "negl",
    "negation_skip": "skip",
    "connector": "conn",
    "resolution_before": "resb",
    "resolution_after": "resa",
    "normal": "norm",
    "improving": "impr",
    "chronic": "chron",
    "persistent": "pers",
    "worsening": "worse",
    "hedge": "hedge",
    "hypothetical": "hypo",
    "third_party": "third",
    "first_person": "me",
    "not_patient": "notpt",
    "caregiver": "care",
    "patient_self": "self",
    "past": "past",
    "mild": "mild",
    "clause_break": "brk",
    "yes": "yes",
    "no": "no",
    "neutral": "neutral",
    "bilateral": "bilat",
}


@dataclass(frozen=True, slots=True)
class Combo:
    """All ``parts`` (set names) must be mentioned in one clause; part 0 is the symptom whose
    negation/resolution decides.  Under one of ``contexts`` the other parts are implied;
    with ``require_context`` the combo only fires under those contexts."""

    label: str  # "f:<flag>", "w:<topic>" or "a:<topic>"
    parts: tuple[str, ...]
    contexts: frozenset[str]
    require_context: bool
    absorbs: frozenset[str]  # flag codes whose hits on these same words are dropped


@dataclass(frozen=True, slots=True)
class FlagOptions:
    new_only: bool = False  # chronic/persistent cues apply (numbness, weakness, swallowing)
    transient: bool = False  # a past episode is only "watch" (fever)
    mild_watch: bool = False  # "a little ..." is only "watch" (redness/swelling)
    ambiguous_topic: str = ""
    mild_words: frozenset[str] = frozenset()  # if set, only mentions of these words soften
    unilateral: bool = False  # "both legs" is only "watch" (calf_clot)


@dataclass(slots=True)
class Lexicon:
    """Everything ``assess`` needs, compiled."""

    trie: dict[str, Any] = field(default_factory=dict)
    spelling: dict[str, tuple[str, ...]] = field(default_factory=dict)
    emoji: dict[str, tuple[str, ...]] = field(default_factory=dict)
    filler: frozenset[str] = frozenset()
    known: frozenset[str] = frozenset()
    fuzzy_targets: tuple[str, ...] = ()
    lang: dict[str, int] = field(default_factory=dict)
    combos: tuple[Combo, ...] = ()
    patterns: re.Pattern[str] | None = None
    pattern_labels: dict[str, str] = field(default_factory=dict)
    options: dict[str, FlagOptions] = field(default_factory=dict)
    token_re: re.Pattern[str] = field(default_factory=lambda: token_regex([]))
    sets: dict[str, tuple[str, ...]] = field(default_factory=dict)  # folded phrases per set
    primary_sets: frozenset[str] = frozenset()  # sets that are the symptom part of a combo
    mild_ignored: frozenset[str] = frozenset()  # watch topics that "mild ..." cancels
    combos_by_primary: dict[str, tuple[Combo, ...]] = field(default_factory=dict)
    files: tuple[str, ...] = ()


# ---------------------------------------------------------------- compilation


def _add(trie: dict[str, Any], words: tuple[str, ...], label: str) -> None:
    if not words:
        return
    node = trie
    for w in words:
        node = node.setdefault(w, {})
    leaf = node.get(LEAF)
    node[LEAF] = frozenset({label}) if leaf is None else leaf | {label}


def compile_lexicon(raws: list[Raw]) -> Lexicon:
    """Merge validated files (vocabulary is the union) and compile them."""
    b = _Builder(raws)
    for r in raws:
        b.add_file(r)
    b.check_set_refs()
    return b.finish()


class _Builder:
    """The state of one compilation: every file adds to it (``add_file``), then ``finish``
    turns it into the Lexicon.  Spellings and fillers of all files are read first, because
    every phrase is normalized with them."""

    def __init__(self, raws: list[Raw]) -> None:
        self.lex = Lexicon(files=tuple(r.file for r in raws))
        spelling: dict[str, tuple[str, ...]] = {}
        filler: set[str] = set()
        for r in raws:
            for k, v in (r.doc.get("spelling") or {}).items():
                spelling[fold(k).replace("'", "")] = tuple(fold(v).replace("'", "").split())
            filler.update(fold(w) for w in (r.doc.get("cues") or {}).get("filler", []))
        self.lex.spelling = spelling
        self.lex.filler = frozenset(filler)
        self.raws = raws
        self.trie: dict[str, Any] = {}
        self.vocab: dict[str, set[str]] = {"en": set(), "es": set()}
        self.fuzzy: set[str] = set()
        self.known: set[str] = set()
        self.combos: list[Combo] = []
        self.patterns: list[tuple[str, str]] = []
        self.options: dict[str, dict[str, Any]] = {}
        self.set_names: set[str] = set()
        self.set_refs: list[tuple[str, str, str]] = []
        self.set_phrases: dict[str, list[str]] = {}
        self.mild_ignored: set[str] = set()
        self.anon = 0

    def words(self, phrase: str) -> tuple[str, ...]:
        return phrase_words(phrase, self.lex.spelling, self.lex.filler)

    def add_phrases(self, phrases: list[str], label: str, lang: str) -> None:
        for p in phrases:
            ws = self.words(p)
            _add(self.trie, ws, label)
            self.vocab[lang].update(ws)

    def add_file(self, r: Raw) -> None:
        doc = r.doc
        for name, ws in (doc.get("sets") or {}).items():
            self.set_names.add(name)
            self.add_phrases(ws, f"s:{name}", r.language)
            self.set_phrases.setdefault(name, []).extend(" ".join(self.words(p)) for p in ws)
        for section, prefix in (("flags", "f"), ("watch", "w"), ("ambiguous", "a")):
            for name, entry in (doc.get(section) or {}).items():
                self.add_entry(r, section, f"{prefix}:{name}", name, entry)
        for cue, ws in (doc.get("cues") or {}).items():
            if cue != "filler":
                self.add_phrases(ws, f"c:{CUE_CODE[cue]}", r.language)
        self.known.update(fold(w).replace("'", "") for w in doc.get("known_words", []))
        self.vocab[r.language].update(fold(w).replace("'", "") for w in doc.get("language_words", []))

    def add_entry(self, r: Raw, section: str, label: str, name: str, entry: dict[str, Any]) -> None:
        """One flag/watch/ambiguous entry: phrases, fuzzy words, patterns, options, combos."""
        self.add_phrases(entry.get("phrases", []), label, r.language)
        self.add_phrases(entry.get("reading_governed", []), label, r.language)
        self.add_phrases(entry.get("reading_governed", []), "g:fever", r.language)
        for fw in entry.get("fuzzy", []):
            fw = fold(fw)
            self.fuzzy.add(fw)
            self.vocab[r.language].add(fw)
        self.patterns.extend((pat, label) for pat in entry.get("patterns", []))
        if entry.get("mild_ignored"):
            self.mild_ignored.add(name)
        if section == "flags":
            self.add_options(name, entry)
        for i, combo in enumerate(entry.get("combos", [])):
            self.add_combo(r, f"{section}.{name}.combos[{i}]", label, name, combo)

    def add_options(self, name: str, entry: dict[str, Any]) -> None:
        opt = self.options.setdefault(name, {})
        for k in ("new_only", "transient", "mild_watch", "unilateral"):
            opt[k] = opt.get(k, False) or bool(entry.get(k, False))
        if isinstance(entry.get("mild_watch"), list):
            opt.setdefault("mild_words", set()).update(" ".join(self.words(w)) for w in entry["mild_watch"])
        if entry.get("ambiguous_topic"):
            opt["ambiguous_topic"] = entry["ambiguous_topic"]

    def add_combo(self, r: Raw, key: str, label: str, name: str, combo: dict[str, Any]) -> None:
        """A combo's parts are "@set" references (checked once every file is read) or inline
        phrase lists, which become anonymous sets."""
        parts: list[str] = []
        for j, part in enumerate(combo["all"]):
            if isinstance(part, str):
                parts.append(part[1:])
                self.set_refs.append((r.file, f"{key}.all[{j}]", part[1:]))
            else:
                self.anon += 1
                sname = f"_{name}_{self.anon}"
                self.add_phrases(part, f"s:{sname}", r.language)
                parts.append(sname)
                self.set_names.add(sname)
        self.combos.append(
            Combo(
                label,
                tuple(parts),
                frozenset(combo.get("context") or ()),
                bool(combo.get("require_context", False)),
                frozenset(combo.get("absorbs") or ()),
            )
        )

    def check_set_refs(self) -> None:
        for file, key, sname in self.set_refs:
            if sname not in self.set_names:
                raise LexiconError(file, key, f"unknown set '@{sname}'")

    def finish(self) -> Lexicon:
        lex = self.lex
        emoji: dict[str, tuple[str, ...]] = {}
        for r in self.raws:
            for k, v in (r.doc.get("emoji") or {}).items():
                emoji[k.replace("\ufe0f", "")] = self.words(v)
        lex.emoji = emoji
        lex.token_re = token_regex(list(emoji))
        lex.trie = self.trie
        lex.combos = tuple(self.combos)
        lex.sets = {k: tuple(dict.fromkeys(v)) for k, v in self.set_phrases.items()}
        lex.primary_sets = frozenset(c.parts[0] for c in self.combos)
        by_primary: dict[str, list[Combo]] = {}
        for c in self.combos:
            by_primary.setdefault(c.parts[0], []).append(c)
        lex.combos_by_primary = {k: tuple(v) for k, v in by_primary.items()}
        lex.mild_ignored = frozenset(self.mild_ignored)
        en, es = self.vocab["en"], self.vocab["es"]
        lex.known = frozenset(self.known | en | es | set(lex.spelling) | lex.filler)
        lex.fuzzy_targets = tuple(sorted(self.fuzzy))
        lex.lang = dict.fromkeys(en - es, 1) | dict.fromkeys(es - en, -1)
        if self.patterns:
            groups = []
            for i, (pat, label) in enumerate(self.patterns):
                groups.append(f"(?P<p{i}>{pat})")
                lex.pattern_labels[f"p{i}"] = label
            lex.patterns = re.compile("|".join(groups))
        lex.options = {name: _flag_options(name, o) for name, o in self.options.items()}
        for f in FLAG_CODES - set(lex.options):
            lex.options[f] = FlagOptions(ambiguous_topic=f)
        return lex


def _flag_options(name: str, o: dict[str, Any]) -> FlagOptions:
    return FlagOptions(
        o.get("new_only", False),
        o.get("transient", False),
        o.get("mild_watch", False),
        o.get("ambiguous_topic", name),
        frozenset(o.get("mild_words", ())),
        o.get("unilateral", False),
    )


def load_file(name: str) -> Raw:
    """Read and validate one packaged lexicon file."""
    res = resources.files("checkin.core.triage").joinpath("lexicon", name)
    file = f"checkin/core/triage/lexicon/{name}"
    try:
        text = res.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise LexiconError(file, "(file)", "missing package data file") from None
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise LexiconError(file, "(yaml)", str(exc)) from None
    return validate(file, doc)


def load(names: tuple[str, ...] = ("en.yaml", "es.yaml")) -> Lexicon:
    """Load, validate and compile the packaged lexicons (called once, at import)."""
    raws = [load_file(n) for n in names]
    langs = [r.language for r in raws]
    if sorted(langs) != sorted(set(langs)):
        raise LexiconError(raws[-1].file, "language", "two files declare the same language")
    return compile_lexicon(raws)
