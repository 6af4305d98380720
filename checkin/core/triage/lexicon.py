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

from checkin.errors import CheckinError

from .model import Flag
from .normalize import fold, phrase_words, token_regex

LEAF = ""  # trie key holding the labels of a complete phrase (no word is the empty string)

# Contexts accepted by assess(); combos may name them.
TOPIC_CHECKS = ("fever", "wound", "numbness", "weakness", "bladder", "breathing", "swallow", "fall", "mood")
# symptom_check: one question about several topics (the daily and monthly combined checks).
CONTEXTS = frozenset(
    {"pain_scale", "reminder", "general", "symptom_check"} | {f"{t}_check" for t in TOPIC_CHECKS}
)

CUE_NAMES = frozenset(
    {
        "negation",
        "negation_list",
        "negation_skip",
        "connector",
        "resolution_before",
        "resolution_after",
        "normal",
        "improving",
        "chronic",
        "persistent",
        "worsening",
        "hedge",
        "hypothetical",
        "third_party",
        "first_person",
        "not_patient",
        "caregiver",
        "past",
        "mild",
        "clause_break",
        "yes",
        "no",
        "neutral",
        "filler",
        "bilateral",
    }
)
# Short label per cue, as stored on trie leaves ("c:" + code).
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
    "past": "past",
    "mild": "mild",
    "clause_break": "brk",
    "yes": "yes",
    "no": "no",
    "neutral": "neutral",
    "bilateral": "bilat",
}
ENTRY_KEYS = frozenset(
    {
        "phrases",
        "fuzzy",
        "patterns",
        "combos",
        "reading_governed",
        "new_only",
        "transient",
        "mild_watch",
        "mild_ignored",
        "unilateral",
        "ambiguous_topic",
    }
)
TOP_KEYS = frozenset(
    {
        "language",
        "flags",
        "watch",
        "ambiguous",
        "sets",
        "cues",
        "spelling",
        "emoji",
        "known_words",
        "language_words",
    }
)
COMBO_KEYS = frozenset({"all", "context", "require_context", "absorbs"})
FLAG_CODES = frozenset(f.value for f in Flag)
TOPIC_RE = re.compile(r"^[a-z][a-z0-9_/]*$")


class LexiconError(CheckinError):
    """A lexicon file is malformed: ``file: key: problem``."""

    def __init__(self, file: str, key: str, problem: str) -> None:
        self.file = file
        self.key = key
        self.problem = problem
        super().__init__(f"{file}: {key}: {problem}")


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


# ---------------------------------------------------------------- validation helpers


def _str_list(file: str, key: str, value: Any) -> list[str]:
    if not isinstance(value, list) or not value:
        raise LexiconError(file, key, "must be a non-empty list of strings")
    for i, v in enumerate(value):
        if not isinstance(v, str) or not v.strip():
            raise LexiconError(file, f"{key}[{i}]", f"must be a non-empty string, got {v!r}")
    return value


def _mapping(file: str, key: str, value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise LexiconError(file, key, f"must be a mapping, got {type(value).__name__}")
    return value


@dataclass(slots=True)
class _Raw:
    """One file's validated content, before the files are merged and compiled."""

    file: str
    language: str
    doc: dict[str, Any]


def _validate_entry(file: str, section: str, name: Any, entry: Any) -> None:
    """One flag/watch/ambiguous entry: its keys, lists, switches, patterns and combos."""
    key = f"{section}.{name}"
    if section == "flags" and name not in FLAG_CODES:
        raise LexiconError(file, key, f"unknown flag code (known: {sorted(FLAG_CODES)})")
    if not isinstance(name, str) or not TOPIC_RE.match(name):
        raise LexiconError(file, key, "topic names are lowercase words, _ and /")
    entry = _mapping(file, key, entry)
    bad = set(entry) - ENTRY_KEYS
    if bad:
        raise LexiconError(file, f"{key}.{min(bad)}", f"unknown key (allowed: {sorted(ENTRY_KEYS)})")
    _validate_options(file, key, name, entry)
    for i, pat in enumerate(entry.get("patterns", [])):
        try:
            re.compile(pat)
        except re.error as exc:
            raise LexiconError(file, f"{key}.patterns[{i}]", f"bad regex: {exc}") from None
    combos = entry.get("combos", [])
    if not isinstance(combos, list):
        raise LexiconError(file, f"{key}.combos", "must be a list")
    for i, combo in enumerate(combos):
        _validate_combo(file, f"{key}.combos[{i}]", combo)


def _validate_options(file: str, key: str, name: str, entry: dict[str, Any]) -> None:
    """An entry's phrase lists and switches."""
    for lk in ("phrases", "fuzzy", "patterns", "reading_governed"):
        if lk in entry:
            _str_list(file, f"{key}.{lk}", entry[lk])
    if "reading_governed" in entry and name != "fever":
        raise LexiconError(file, f"{key}.reading_governed", "only valid for fever")
    for bk in ("new_only", "transient", "mild_ignored", "unilateral"):
        if bk in entry and not isinstance(entry[bk], bool):
            raise LexiconError(file, f"{key}.{bk}", "must be true or false")
    if "mild_watch" in entry and not isinstance(entry["mild_watch"], bool):
        _str_list(file, f"{key}.mild_watch", entry["mild_watch"])
    if "ambiguous_topic" in entry and not (
        isinstance(entry["ambiguous_topic"], str) and TOPIC_RE.match(entry["ambiguous_topic"])
    ):
        raise LexiconError(file, f"{key}.ambiguous_topic", "must be a topic name")


def _validate_combo(file: str, ck: str, combo: Any) -> None:
    """One combo: known keys, parts (phrase lists or "@set"), contexts, absorbed flags."""
    combo = _mapping(file, ck, combo)
    if set(combo) - COMBO_KEYS:
        raise LexiconError(
            file,
            f"{ck}.{min(set(combo) - COMBO_KEYS)}",
            f"unknown key (allowed: {sorted(COMBO_KEYS)})",
        )
    parts = combo.get("all")
    if not isinstance(parts, list) or not parts:
        raise LexiconError(file, f"{ck}.all", "must be a non-empty list of parts")
    for j, part in enumerate(parts):
        if isinstance(part, str):
            if not part.startswith("@"):
                raise LexiconError(file, f"{ck}.all[{j}]", "a string part must name a set as '@name'")
        else:
            _str_list(file, f"{ck}.all[{j}]", part)
    for ctx in combo.get("context", []) or []:
        if ctx not in CONTEXTS:
            raise LexiconError(file, f"{ck}.context", f"unknown context {ctx!r}")
    if "context" in combo:
        _str_list(file, f"{ck}.context", combo["context"])
    if combo.get("require_context") and not combo.get("context"):
        raise LexiconError(file, f"{ck}.require_context", "needs a context list")
    for fl in combo.get("absorbs", []) or []:
        if fl not in FLAG_CODES:
            raise LexiconError(file, f"{ck}.absorbs", f"unknown flag code {fl!r}")


def validate(file: str, doc: Any) -> _Raw:
    """Check the shape of one parsed lexicon file; raise LexiconError on the first problem."""
    doc = _mapping(file, "(top level)", doc)
    unknown = set(doc) - TOP_KEYS
    if unknown:
        raise LexiconError(file, min(unknown), f"unknown key (allowed: {sorted(TOP_KEYS)})")
    lang = doc.get("language")
    if lang not in ("en", "es"):
        raise LexiconError(file, "language", f"must be 'en' or 'es', got {lang!r}")
    for section in ("flags", "watch", "ambiguous"):
        entries = _mapping(file, section, doc.get(section, {}))
        for name, entry in entries.items():
            _validate_entry(file, section, name, entry)
    for name, words in _mapping(file, "sets", doc.get("sets", {})).items():
        if not isinstance(name, str) or not TOPIC_RE.match(name):
            raise LexiconError(file, f"sets.{name}", "set names are lowercase words and _")
        _str_list(file, f"sets.{name}", words)
    cues = _mapping(file, "cues", doc.get("cues", {}))
    for name, words in cues.items():
        if name not in CUE_NAMES:
            raise LexiconError(file, f"cues.{name}", f"unknown cue (known: {sorted(CUE_NAMES)})")
        _str_list(file, f"cues.{name}", words)
    for name in ("spelling", "emoji"):
        for k, v in _mapping(file, name, doc.get(name, {})).items():
            if not isinstance(k, str) or not isinstance(v, str) or not k or not v.strip():
                raise LexiconError(file, f"{name}.{k}", "must map a string to a non-empty string")
    for name in ("known_words", "language_words"):
        if name in doc:
            _str_list(file, name, doc[name])
    return _Raw(file, lang, doc)


# ---------------------------------------------------------------- compilation


def _add(trie: dict[str, Any], words: tuple[str, ...], label: str) -> None:
    if not words:
        return
    node = trie
    for w in words:
        node = node.setdefault(w, {})
    leaf = node.get(LEAF)
    node[LEAF] = frozenset({label}) if leaf is None else leaf | {label}


def compile_lexicon(raws: list[_Raw]) -> Lexicon:
    """Merge validated files (vocabulary is the union) and compile them."""
    lex = Lexicon(files=tuple(r.file for r in raws))
    spelling: dict[str, tuple[str, ...]] = {}
    filler: set[str] = set()
    for r in raws:
        for k, v in (r.doc.get("spelling") or {}).items():
            spelling[fold(k).replace("'", "")] = tuple(fold(v).replace("'", "").split())
        filler.update(fold(w) for w in (r.doc.get("cues") or {}).get("filler", []))
    lex.spelling = spelling
    lex.filler = frozenset(filler)

    def words(phrase: str) -> tuple[str, ...]:
        return phrase_words(phrase, spelling, lex.filler)

    trie: dict[str, Any] = {}
    vocab: dict[str, set[str]] = {"en": set(), "es": set()}
    fuzzy: set[str] = set()
    known: set[str] = set()
    combos: list[Combo] = []
    patterns: list[tuple[str, str]] = []
    options: dict[str, dict[str, Any]] = {}
    set_names: set[str] = set()
    set_refs: list[tuple[str, str, str]] = []
    set_phrases: dict[str, list[str]] = {}
    mild_ignored: set[str] = set()
    anon = 0

    def add_phrases(phrases: list[str], label: str, lang: str) -> None:
        for p in phrases:
            ws = words(p)
            _add(trie, ws, label)
            vocab[lang].update(ws)

    for r in raws:
        doc = r.doc
        for name, ws in (doc.get("sets") or {}).items():
            set_names.add(name)
            add_phrases(ws, f"s:{name}", r.language)
            set_phrases.setdefault(name, []).extend(" ".join(words(p)) for p in ws)
        for section, prefix in (("flags", "f"), ("watch", "w"), ("ambiguous", "a")):
            for name, entry in (doc.get(section) or {}).items():
                label = f"{prefix}:{name}"
                add_phrases(entry.get("phrases", []), label, r.language)
                add_phrases(entry.get("reading_governed", []), label, r.language)
                add_phrases(entry.get("reading_governed", []), "g:fever", r.language)
                for fw in entry.get("fuzzy", []):
                    fw = fold(fw)
                    fuzzy.add(fw)
                    vocab[r.language].add(fw)
                for pat in entry.get("patterns", []):
                    patterns.append((pat, label))
                if entry.get("mild_ignored"):
                    mild_ignored.add(name)
                if section == "flags":
                    opt = options.setdefault(name, {})
                    for k in ("new_only", "transient", "mild_watch", "unilateral"):
                        opt[k] = opt.get(k, False) or bool(entry.get(k, False))
                    if isinstance(entry.get("mild_watch"), list):
                        opt.setdefault("mild_words", set()).update(
                            " ".join(words(w)) for w in entry["mild_watch"]
                        )
                    if entry.get("ambiguous_topic"):
                        opt["ambiguous_topic"] = entry["ambiguous_topic"]
                for i, combo in enumerate(entry.get("combos", [])):
                    parts: list[str] = []
                    for j, part in enumerate(combo["all"]):
                        if isinstance(part, str):
                            parts.append(part[1:])
                            set_refs.append((r.file, f"{section}.{name}.combos[{i}].all[{j}]", part[1:]))
                        else:
                            anon += 1
                            sname = f"_{name}_{anon}"
                            add_phrases(part, f"s:{sname}", r.language)
                            parts.append(sname)
                            set_names.add(sname)
                    combos.append(
                        Combo(
                            label,
                            tuple(parts),
                            frozenset(combo.get("context") or ()),
                            bool(combo.get("require_context", False)),
                            frozenset(combo.get("absorbs") or ()),
                        )
                    )
        for cue, ws in (doc.get("cues") or {}).items():
            if cue == "filler":
                continue
            for p in ws:
                ws2 = words(p)
                _add(trie, ws2, f"c:{CUE_CODE[cue]}")
                vocab[r.language].update(ws2)
        known.update(fold(w).replace("'", "") for w in doc.get("known_words", []))
        lw = {fold(w).replace("'", "") for w in doc.get("language_words", [])}
        vocab[r.language].update(lw)
    for file, key, sname in set_refs:
        if sname not in set_names:
            raise LexiconError(file, key, f"unknown set '@{sname}'")

    emoji: dict[str, tuple[str, ...]] = {}
    for r in raws:
        for k, v in (r.doc.get("emoji") or {}).items():
            emoji[k.replace("\ufe0f", "")] = words(v)
    lex.emoji = emoji
    lex.token_re = token_regex(list(emoji))
    lex.trie = trie
    lex.combos = tuple(combos)
    lex.sets = {k: tuple(dict.fromkeys(v)) for k, v in set_phrases.items()}
    lex.primary_sets = frozenset(c.parts[0] for c in combos)
    by_primary: dict[str, list[Combo]] = {}
    for c in combos:
        by_primary.setdefault(c.parts[0], []).append(c)
    lex.combos_by_primary = {k: tuple(v) for k, v in by_primary.items()}
    lex.mild_ignored = frozenset(mild_ignored)
    all_vocab = vocab["en"] | vocab["es"]
    lex.known = frozenset(known | all_vocab | set(spelling) | filler)
    lex.fuzzy_targets = tuple(sorted(fuzzy))
    lang: dict[str, int] = {}
    for w in vocab["en"] - vocab["es"]:
        lang[w] = 1
    for w in vocab["es"] - vocab["en"]:
        lang[w] = -1
    lex.lang = lang
    if patterns:
        groups = []
        for i, (pat, label) in enumerate(patterns):
            groups.append(f"(?P<p{i}>{pat})")
            lex.pattern_labels[f"p{i}"] = label
        lex.patterns = re.compile("|".join(groups))
    lex.options = {
        name: FlagOptions(
            o.get("new_only", False),
            o.get("transient", False),
            o.get("mild_watch", False),
            o.get("ambiguous_topic", name),
            frozenset(o.get("mild_words", ())),
            o.get("unilateral", False),
        )
        for name, o in options.items()
    }
    for f in FLAG_CODES - set(lex.options):
        lex.options[f] = FlagOptions(ambiguous_topic=f)
    return lex


def load_file(name: str) -> _Raw:
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
