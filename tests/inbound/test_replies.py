"""Which question a reply answers, and which safety reply it gets (pure)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from checkin.core import replies
from checkin.core.replies import OpenQuestion, choose_reply, pick_question
from checkin.core.triage.model import Flag, Severity
from tests.inbound.support import assessment

NOW = datetime(2026, 3, 3, 15, 0, tzinfo=UTC)


def test_it_picks_the_most_recent_open_question() -> None:
    qs = [
        OpenQuestion(1, "fever_check", NOW - timedelta(hours=5)),
        OpenQuestion(2, "pain_scale", NOW - timedelta(hours=1)),
    ]
    assert pick_question(qs, now=NOW).outbox_id == 2  # type: ignore[union-attr]


def test_it_ignores_questions_older_than_the_window_or_in_the_future() -> None:
    qs = [
        OpenQuestion(1, "fever_check", NOW - timedelta(hours=49)),
        OpenQuestion(2, "pain_scale", NOW + timedelta(minutes=1)),
    ]
    assert pick_question(qs, now=NOW) is None


def test_it_breaks_ties_by_the_higher_id() -> None:
    qs = [OpenQuestion(7, "fever_check", NOW), OpenQuestion(9, "wound_check", NOW)]
    assert pick_question(qs, now=NOW).outbox_id == 9  # type: ignore[union-attr]


def test_it_sends_988_for_self_harm_even_with_other_emergencies() -> None:
    a = assessment(Flag.SELF_HARM, Flag.CHEST_BREATHING)
    assert choose_reply(a, known=True, may_follow_up=True).template == replies.REPLY_SELF_HARM


def test_it_sends_911_for_an_emergency_known_or_not() -> None:
    a = assessment(Flag.BOWEL_BLADDER)
    assert choose_reply(a, known=True, may_follow_up=True).template == replies.REPLY_EMERGENCY
    assert choose_reply(a, known=False, may_follow_up=False).template == replies.REPLY_EMERGENCY


def test_it_promises_a_nurse_call_only_to_a_known_patient() -> None:
    a = assessment(Flag.FEVER)
    assert choose_reply(a, known=True, may_follow_up=True).template == replies.REPLY_URGENT
    assert choose_reply(a, known=False, may_follow_up=False).template == replies.REPLY_UNKNOWN


def test_it_follows_up_on_ambiguity_once() -> None:
    a = assessment(ambiguous=["numbness/weakness"])
    first = choose_reply(a, known=True, may_follow_up=True)
    assert first.template == replies.REPLY_CLARIFY and first.follow_up
    assert choose_reply(a, known=True, may_follow_up=False).template == replies.REPLY_THANKS


def test_it_uses_a_topic_specific_follow_up_when_one_exists() -> None:
    a = assessment(ambiguous=["numbness/weakness"])
    choice = choose_reply(
        a, known=True, may_follow_up=True, template_exists=lambda n: n == "reply_followup_numbness_weakness"
    )
    assert choice.template == "reply_followup_numbness_weakness"


def test_it_does_not_follow_up_on_an_urgent_answer() -> None:
    a = assessment(Flag.FALL, ambiguous=["numbness/weakness"])
    assert choose_reply(a, known=True, may_follow_up=True).template == replies.REPLY_URGENT


def test_it_thanks_for_a_calm_answer() -> None:
    assert (
        choose_reply(assessment(severity=Severity.WATCH), known=True, may_follow_up=True).template
        == replies.REPLY_THANKS
    )


def test_it_has_a_built_in_text_naming_911_and_988_if_templates_break() -> None:
    numbers = {"emergency": "911", "crisis": "988"}
    assert "911" in replies.fallback_text(replies.REPLY_EMERGENCY, "es", **numbers)
    assert "988" in replies.fallback_text(replies.REPLY_SELF_HARM, "en", **numbers)
    assert "911" in replies.fallback_text("reply_thanks", "xx", **numbers)
    assert "Call 112 now" in replies.fallback_text(
        replies.REPLY_EMERGENCY, "en", emergency="112", crisis="116 123"
    )
