"""What the care team gets for an assessment that is neither flagged nor benign: a low-priority
(watch) alert, listed in the digest, that says why."""

from __future__ import annotations

from checkin.alerts.lifecycle import alert_flags, alert_severity
from checkin.core.triage import assess
from checkin.core.triage.model import Assessment, Flag, Severity


def test_a_reply_that_needs_review_opens_a_watch_alert_saying_why() -> None:
    a = Assessment(severity=Severity.NONE, needs_review=True, review_reason="question")
    assert alert_severity(a) == "watch"
    assert alert_flags(a) == ["review:question"]


def test_a_question_to_the_care_team_is_read_by_a_person() -> None:
    a = assess("can I shower with the bandage on?", "general")
    assert a.needs_review and alert_severity(a) == "watch"


def test_a_fusion_concern_is_shown_to_the_care_team_at_watch() -> None:
    a = assess("my hardware feels loose and it clicks when I bend", "general")
    assert Flag.FUSION_CONCERN in a.flags and a.severity is Severity.WATCH
    assert alert_severity(a) == "watch" and "fusion_concern" in alert_flags(a)


def test_a_plainly_benign_reply_opens_nothing() -> None:
    a = assess("doing great today, thanks", "general")
    assert not a.needs_review and alert_severity(a) is None


def test_urgent_and_emergency_keep_their_severity() -> None:
    assert alert_severity(assess("I can't pee since last night", "general")) == "emergency"
    assert alert_severity(assess("my incision is leaking pus", "general")) == "urgent"
