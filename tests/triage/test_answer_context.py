"""Which message a reply answers, as triage context; caregivers versus someone else's illness."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from checkin.core.replies import OpenQuestion, answer_context, is_bare_yes_no
from checkin.core.triage import assess

NOW = datetime(2026, 3, 3, 15, 0, tzinfo=UTC)
FEVER_Q = OpenQuestion(7, "fever_check", NOW - timedelta(hours=3))


@pytest.mark.parametrize("text", ["YES", "yes!", "Yep", "no", "NO.", "si", "Sí 👍", "nope"])
def test_a_bare_yes_or_no_after_a_reminder_answers_the_reminder(text: str) -> None:
    ctx = answer_context(FEVER_Q, text, NOW - timedelta(hours=1))
    assert ctx == "reminder"
    assert assess(text, ctx).severity.value == "none"


def test_a_bare_yes_with_no_reminder_since_answers_the_question() -> None:
    ctx = answer_context(FEVER_Q, "YES", NOW - timedelta(hours=5))
    assert ctx == "fever_check"
    assert {f.value for f in assess("YES", ctx).flags} == {"fever"}


def test_a_reading_after_a_reminder_still_answers_the_open_question() -> None:
    ctx = answer_context(FEVER_Q, "101.5", NOW - timedelta(hours=1))
    assert ctx == "fever_check"
    assert {f.value for f in assess("101.5", ctx).flags} == {"fever"}


def test_without_an_open_question_a_reply_is_general() -> None:
    assert answer_context(None, "my incision is leaking", None) == "general"
    assert answer_context(None, "yes", NOW) == "reminder"


@pytest.mark.parametrize(
    ("text", "bare"), [("yes", True), ("YES!!", True), ("yes it hurts", False), ("no fever", False)]
)
def test_it_knows_a_bare_yes_or_no(text: str, bare: bool) -> None:
    assert is_bare_yes_no(text) is bare


@pytest.mark.parametrize(
    ("text", "flag"),
    [
        ("This is his wife. He fell getting out of the shower last night", "fall"),
        ("this is her daughter, mom can't pee since this morning", "bowel_bladder"),
        ("Soy la hija, mi mamá se cayó en el baño", "fall"),
    ],
)
def test_a_caregiver_writing_about_the_patient_counts_as_the_patient(text: str, flag: str) -> None:
    assert flag in {f.value for f in assess(text, "general").flags}, assess(text, "general").to_dict()


@pytest.mark.parametrize(
    "text",
    [
        "my friend had a fever all week, I feel great",
        "my neighbor fell off his ladder yesterday",
        "a friend of mine has been coughing up blood",
    ],
)
def test_someone_elses_illness_is_not_the_patients(text: str) -> None:
    a = assess(text, "general")
    assert a.severity.value in ("none", "watch"), a.to_dict()
