"""Escalations the messages promise, applied after the flags are decided.

Contract: ``escalations(folded, ctx, flags, in_scope)`` returns the flags to add and whether
severity is raised to emergency, from the regex lists of ``lexicon/escalations.yaml``:
* cannot move or cannot feel the legs or arms -> emergency (new_weakness / new_numbness);
* after neck surgery (the swallow check, or a neck word in the reply), neck swelling together
  with trouble swallowing or breathing, or a strangled voice -> emergency (swallowing).
``in_scope(pos)`` says whether the words at ``pos`` are the patient's, present and not negated
(the rules' scopes), so "my husband can't move his legs" or "no neck swelling" do not escalate.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from importlib import resources
from typing import Any

import yaml

from .lexicon import LexiconError

FILE = "escalations.yaml"
KEYS = ("limbs_cannot_move_or_feel", "neck_swelling", "strangled_voice")
_FEEL = re.compile(r"feel|sentir|siento|sensation|feeling")


def compile_doc(doc: Any, file: str = FILE) -> dict[str, re.Pattern[str]]:
    """Validate and compile the escalation lists (one alternation per key)."""
    if not isinstance(doc, dict):
        raise LexiconError(file, "(top level)", "must be a mapping")
    unknown = set(doc) - set(KEYS)
    if unknown:
        raise LexiconError(file, min(unknown), f"unknown key (allowed: {list(KEYS)})")
    out: dict[str, re.Pattern[str]] = {}
    for key in KEYS:
        pats = doc.get(key)
        if not isinstance(pats, list) or not pats or not all(isinstance(p, str) and p for p in pats):
            raise LexiconError(file, key, "must be a non-empty list of regular expressions")
        for i, p in enumerate(pats):
            try:
                re.compile(p)
            except re.error as exc:
                raise LexiconError(file, f"{key}[{i}]", f"bad regex: {exc}") from None
        out[key] = re.compile("|".join(f"(?:{p})" for p in pats))
    return out


def _load() -> dict[str, re.Pattern[str]]:
    ref = resources.files(__package__).joinpath("lexicon", FILE)
    try:
        doc = yaml.safe_load(ref.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise LexiconError(FILE, "(yaml)", str(exc)) from None
    return compile_doc(doc)


PATTERNS = _load()


def _first(key: str, folded: str, in_scope: Callable[[int], bool]) -> re.Match[str] | None:
    for m in PATTERNS[key].finditer(folded):
        if in_scope(m.start()):
            return m
    return None


def escalations(
    folded: str, ctx: str, flags: set[str] | Any, in_scope: Callable[[int], bool]
) -> tuple[dict[str, tuple[int, int]], bool]:
    """(flags to add with the span that justifies each, emergency?)."""
    add: dict[str, tuple[int, int]] = {}
    emergency = False
    limbs = _first("limbs_cannot_move_or_feel", folded, in_scope)
    if limbs is not None:
        emergency = True
        if "new_weakness" not in flags and "new_numbness" not in flags:
            code = "new_numbness" if _FEEL.search(limbs.group()) else "new_weakness"
            add[code] = limbs.span()
    neck = _first("neck_swelling", folded, in_scope)
    voice = _first("strangled_voice", folded, in_scope)
    airway = "swallowing" in flags or "chest_breathing" in flags
    cervical = ctx == "swallow_check"
    hit = None
    if neck is not None and (airway or voice is not None or cervical):
        hit = neck
    elif voice is not None and (cervical or neck is not None or airway):
        hit = voice
    if hit is not None:
        emergency = True
        if not airway:
            add["swallowing"] = hit.span()
    return add, emergency
