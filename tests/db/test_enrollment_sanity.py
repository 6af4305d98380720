"""Enrollment sanity: zones that are places, surgery dates that look like mistakes, shared phones."""

from __future__ import annotations

from datetime import date

import pytest
from sqlalchemy.orm import Session

from checkin.core.schedule import Schedule
from checkin.core.zones import zone_problem
from checkin.enrollment.enroll import enroll, parse_request, withdraw
from checkin.enrollment.sanity import shared_phone, surgery_date_problem
from checkin.errors import ConfigError, EnrollmentError
from tests.db.test_enroll import NOW, SURGERY, parse, request, schedules
from tests.support import make_settings

__all__ = ["schedules"]  # a fixture, used by name


@pytest.mark.parametrize(
    ("zone", "suggestion"),
    [
        ("EST", "America/New_York"),
        ("est", "America/New_York"),
        ("EST5EDT", "America/New_York"),
        ("US/Eastern", "America/New_York"),
        ("CST", "America/Chicago"),
        ("PST", "America/Los_Angeles"),
        ("MST", "America/Phoenix"),
        ("HST", "Pacific/Honolulu"),
        ("UTC", "Europe/London"),
        ("Etc/GMT+5", "America/Chicago"),
        ("america/chicago", "America/Chicago"),
    ],
)
def test_abbreviations_and_fixed_offsets_are_refused_with_a_suggestion(
    schedules: dict[str, Schedule], zone: str, suggestion: str
) -> None:
    with pytest.raises(EnrollmentError) as err:
        parse(schedules, timezone=zone)
    assert err.value.field == "timezone"
    assert suggestion in str(err.value)


@pytest.mark.parametrize("zone", ["America/New_York", "America/Argentina/Buenos_Aires", "Europe/Madrid"])
def test_place_zones_are_accepted(zone: str) -> None:
    assert zone_problem(zone) is None


def test_the_default_timezone_setting_is_held_to_the_same_rule() -> None:
    with pytest.raises(ConfigError) as err:
        make_settings(CHECKIN_DEFAULT_TIMEZONE="EST")
    assert "America/New_York" in str(err.value)


def test_a_surgery_date_in_the_past_says_what_will_and_will_not_be_sent(
    schedules: dict[str, Schedule],
) -> None:
    req = parse(schedules, surgery_date="2026-02-20", smoker="yes")  # NOW is 2026-03-01
    problem = surgery_date_problem(schedules["test-fusion"], req, now=NOW)
    assert problem is not None
    assert "9 day(s) in the past" in problem
    assert "would still be sent" in problem and "would not (smoking, fever" in problem


def test_a_surgery_date_more_than_a_year_ahead_needs_force(schedules: dict[str, Schedule]) -> None:
    req = parse(schedules, surgery_date="2099-01-01")
    problem = surgery_date_problem(schedules["test-fusion"], req, now=NOW)
    assert problem is not None and "more than a year" in problem and "2099-01-02" in problem


@pytest.mark.parametrize("day", [date(2026, 3, 1), SURGERY, date(2027, 2, 28)])
def test_today_and_the_coming_year_pass(schedules: dict[str, Schedule], day: date) -> None:
    req = parse(schedules, surgery_date=day.isoformat())
    assert surgery_date_problem(schedules["test-fusion"], req, now=NOW) is None


def test_a_phone_shared_with_another_enrolled_patient_is_found(
    session: Session, schedules: dict[str, Schedule]
) -> None:
    first = parse(schedules, mrn="M1")
    enroll(session, first, schedules=schedules, now=NOW)
    assert first.phone is not None
    assert len(shared_phone(session, first.phone, "M2")) == 1
    assert shared_phone(session, first.phone, "M1") == []  # the patient themself
    withdraw(session, "M1", now=NOW)
    assert shared_phone(session, first.phone, "M2") == []  # no longer enrolled


def test_request_helper_still_builds_valid_requests(schedules: dict[str, Schedule]) -> None:
    req = parse_request(
        request(smoker="y", attributes="brace;diabetic", channel="BOTH", email="a@example.org"),
        schedules=schedules,
        default_region="US",
        default_timezone="America/New_York",
    )
    assert req.attributes == frozenset({"smoker", "brace", "diabetic"}) and req.channel == "both"
