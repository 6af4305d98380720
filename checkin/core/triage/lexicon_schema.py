"""The lexicon file format: its keys, cue names, contexts, and the validation of one file.

Contract: ``validate(file, doc)`` checks the shape of one parsed lexicon file and returns it
as a ``Raw`` for compilation (lexicon.compile_lexicon), or raises ``LexiconError`` naming the
file and the key that is wrong (``file: key: problem``) on the first problem.  The format
itself is documented at the top of lexicon/en.yaml.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from checkin.errors import CheckinError

from .model import Flag

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
        "patient_self",
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
class Raw:
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


def validate(file: str, doc: Any) -> Raw:
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
    return Raw(file, lang, doc)
