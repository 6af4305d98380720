"""Escalations the patient messages promise: whatever a template says to call 911 (the
emergency number) for, a reply stating it must be assessed emergency (cervical swelling with
airway trouble, cannot move or feel the limbs)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from checkin.core.triage import assess
from checkin.core.triage.escalate import compile_doc
from checkin.core.triage.lexicon import LexiconError

TEMPLATES = Path(__file__).resolve().parents[2] / "templates"
# "If X, call 911" / "Si X, llame al 911" (one sentence; X is the promised condition)
# (911 is the emergency number setting's US default, written {{ emergency_number }} in templates)
PROMISE = re.compile(
    r"(?:^|[.!?:]\s*)(?:If|Si) ([^.!?]+?), (?:call|llame al) (?:911|\{\{\s*emergency_number\s*\}\})",
    re.IGNORECASE,
)
# Conditions that are not symptoms the patient could report ("if this is an emergency").
GENERIC = re.compile(r"emergenc|peligro|danger|gets worse|empeora", re.IGNORECASE)
# The condition in the patient's words: second person -> first person.  Whole words only.
FIRST_PERSON = {
    "en": {"you": "I", "your": "my", "are": "am", "cannot": "cannot", "have": "have"},
    "es": {
        "le": "me",
        "se le": "se me",
        "puede": "puedo",
        "controla": "controlo",
        "su": "mi",
        "cuesta": "cuesta",
    },
}


def promises() -> list[tuple[str, str, str]]:
    """(template, language, condition) for every specific 911 promise under templates/."""
    out = []
    for path in sorted(TEMPLATES.rglob("*.j2")):
        lang = "es" if "/es/" in path.as_posix() else "en"
        for m in PROMISE.finditer(path.read_text(encoding="utf-8")):
            cond = m.group(1)
            if not GENERIC.search(cond):
                out.append((path.relative_to(TEMPLATES).as_posix(), lang, cond))
    return out


# "If yes, call 911": the condition is the answer to the question the template asks.
ANSWER = re.compile(r"^(?:yes|es s[ií])$", re.IGNORECASE)
PLAIN_YES = {"en": "yes", "es": "sí"}


def as_reply(condition: str, lang: str) -> str:
    """The patient stating the condition: "you cannot move or feel your legs" -> "I cannot
    move or feel my legs"; "or" becomes "and" so every part is stated. A promise made on the
    answer itself ("If yes, call 911") is met by the patient's plain yes."""
    if ANSWER.match(condition.strip()):
        return PLAIN_YES[lang]
    words = FIRST_PERSON[lang]
    text = condition
    for a in sorted(words, key=len, reverse=True):
        text = re.sub(rf"\b{a}\b", words[a], text)
    return re.sub(r"\bor\b", "and", re.sub(r"\bo\b", "y", text))


PROMISES = promises()
# A bare YES is an emergency only as the answer to the question that made the promise: under
# `general` the triage contract says a bare YES means nothing, so those cases run in context only.
CASES = [
    (template, lang, condition, context)
    for template, lang, condition in PROMISES
    for context in (("from_template",) if ANSWER.match(condition.strip()) else ("general", "from_template"))
]


def test_the_templates_make_specific_911_promises() -> None:
    # bladder/bowels, neck swelling or breathing, cannot move or feel the legs, in en and es
    assert len(PROMISES) >= 6, PROMISES
    assert {lang for _t, lang, _c in PROMISES} == {"en", "es"}


@pytest.mark.parametrize(("template", "lang", "condition", "context"), CASES)
def test_a_reply_stating_a_911_condition_is_an_emergency(
    template: str, lang: str, condition: str, context: str
) -> None:
    reply = as_reply(condition, lang)
    ctx = Path(template).name.split(".")[0] if context == "from_template" else "general"
    a = assess(reply, ctx)
    assert a.severity.value == "emergency", (template, reply, ctx, a.to_dict())


@pytest.mark.parametrize(
    ("text", "context", "flag"),
    [
        ("my neck is swollen and it's hard to swallow", "general", "swallowing"),
        ("neck is getting puffy and my voice sounds strangled", "general", "swallowing"),
        ("throat swelling up and I can't get a breath", "general", "chest_breathing"),
        ("my neck is swelling", "swallow_check", "swallowing"),
        ("yes and my neck is swollen", "swallow_check", "swallowing"),
        ("se me hincha el cuello y me cuesta tragar", "general", "swallowing"),
        ("I can't move my legs", "general", "new_weakness"),
        ("cant feel my legs at all since this morning", "general", "new_numbness"),
        ("can't lift my arms", "general", "new_weakness"),
        ("my legs won't move", "general", "new_weakness"),
        ("no puedo mover las piernas", "general", "new_weakness"),
        ("no siento las piernas", "general", "new_numbness"),
    ],
)
def test_promised_escalations_are_emergencies(text: str, context: str, flag: str) -> None:
    a = assess(text, context)
    assert a.severity.value == "emergency" and flag in {f.value for f in a.flags}, a.to_dict()


@pytest.mark.parametrize(
    ("text", "context"),
    [
        ("no neck swelling, swallowing is fine", "swallow_check"),
        ("my neck is a little stiff but no swelling", "general"),
        ("I can move my legs fine now", "general"),
        ("my friend had surgery and can't move his legs", "general"),
    ],
)
def test_escalations_respect_negation_and_someone_else(text: str, context: str) -> None:
    assert assess(text, context).severity.value != "emergency", assess(text, context).to_dict()


def test_a_malformed_escalation_file_names_the_key() -> None:
    with pytest.raises(LexiconError, match="neck_swelling"):
        compile_doc({"limbs_cannot_move_or_feel": ["x"], "neck_swelling": ["("], "strangled_voice": ["y"]})
    with pytest.raises(LexiconError, match="typo"):
        compile_doc({"typo": ["x"]})
