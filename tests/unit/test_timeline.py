from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from apscheduler.triggers.calendarinterval import (  # type: ignore[import-untyped]
    CalendarIntervalTrigger,
)

from checkin.core.schedule.model import Condition, PlanInput, PlannedMessage, Schedule, Step
from checkin.core.timeline import plan, preview_rows, replan

NY = ZoneInfo("America/New_York")
SURGERY = date(2026, 1, 12)  # a Monday, far from any DST change in New York
LONG_AGO = datetime(2025, 1, 1, tzinfo=UTC)
NIGHT_OK = (time(0), time(23, 59))


def make_step(**kw: Any) -> Step:
    fields: dict[str, Any] = {"id": "reminder", "day": 1, "time": time(10), "message": "reminder"}
    fields.update(kw)
    return Step(**fields)


def make_schedule(*steps: Step, window: tuple[time, time] = (time(9), time(20))) -> Schedule:
    return Schedule(id="lumbar-fusion", name="Lumbar fusion", version="test", send_window=window, steps=steps)


def make_enrollment(**kw: Any) -> PlanInput:
    fields: dict[str, Any] = {
        "id": 7,
        "surgery_date": SURGERY,
        "timezone": "America/New_York",
    }
    fields.update(kw)
    return PlanInput(**fields)


def ny(y: int, m: int, d: int, hh: int, mm: int = 0) -> datetime:
    """An EST (winter) wall time in New York as a UTC instant, without zoneinfo."""
    return datetime(y, m, d, hh, mm, tzinfo=timezone(timedelta(hours=-5))).astimezone(UTC)


def only(planned: list[PlannedMessage]) -> PlannedMessage:
    assert len(planned) == 1, planned
    return planned[0]


# --- DST ------------------------------------------------------------------------------------

# (zone, transition day, UTC offset in hours before it, after it)
TRANSITIONS = [
    ("America/New_York", date(2026, 3, 8), -5, -4),
    ("America/New_York", date(2026, 11, 1), -4, -5),
    ("Europe/London", date(2026, 3, 29), 0, 1),
    ("Europe/London", date(2026, 10, 25), 1, 0),
    ("Australia/Sydney", date(2026, 4, 5), 11, 10),
    ("Australia/Sydney", date(2026, 10, 4), 10, 11),
]
TRANSITION_IDS = [
    "new-york-spring-forward",
    "new-york-fall-back",
    "london-spring-forward",
    "london-fall-back",
    "sydney-fall-back",
    "sydney-spring-forward",
]


@pytest.mark.parametrize(("zone", "transition", "before", "after"), TRANSITIONS, ids=TRANSITION_IDS)
def test_it_keeps_a_daily_step_at_the_same_local_time_across_dst(
    zone: str, transition: date, before: int, after: int
) -> None:
    # Days 0..4 from two days before the transition: the transition day is day 2.
    step = make_step(day=0, every=1, until=4)
    enrollment = make_enrollment(surgery_date=transition - timedelta(days=2), timezone=zone)
    planned = plan(make_schedule(step), enrollment, now=LONG_AGO)

    assert [m.occurrence for m in planned] == [0, 1, 2, 3, 4]
    for m, hours in zip(planned, [before, before, after, after, after], strict=True):
        day = enrollment.surgery_date + timedelta(days=m.occurrence)
        offset = timezone(timedelta(hours=hours))
        assert m.due_at == datetime.combine(day, time(10), tzinfo=offset)
        assert m.local_due.time() == time(10)
        assert m.local_due.utcoffset() == timedelta(hours=hours)


@pytest.mark.parametrize(("zone", "transition", "before", "after"), TRANSITIONS, ids=TRANSITION_IDS)
def test_it_agrees_with_calendar_interval_trigger_away_from_gaps(
    zone: str, transition: date, before: int, after: int
) -> None:
    start = transition - timedelta(days=2)
    trigger = CalendarIntervalTrigger(
        days=1,
        hour=10,
        minute=0,
        start_date=start,
        end_date=start + timedelta(days=4),
        timezone=ZoneInfo(zone),
    )
    fires: list[datetime] = []
    previous = None
    while (fire := trigger.get_next_fire_time(previous, LONG_AGO)) is not None:
        fires.append(fire)
        previous = fire

    step = make_step(day=0, every=1, until=4)
    planned = plan(make_schedule(step), make_enrollment(surgery_date=start, timezone=zone), now=LONG_AGO)
    assert [m.due_at for m in planned] == fires


def test_it_keeps_the_gap_day_that_calendar_interval_trigger_drops() -> None:
    # Why timeline computes days itself: the trigger skips a day whose wall time is in a gap.
    trigger = CalendarIntervalTrigger(
        days=1, hour=2, minute=30, start_date=date(2026, 3, 8), end_date=date(2026, 3, 8), timezone=NY
    )
    assert trigger.get_next_fire_time(None, LONG_AGO) is None

    step = make_step(day=0, time=time(2, 30))
    enrollment = make_enrollment(surgery_date=date(2026, 3, 8))
    m = only(plan(make_schedule(step, window=NIGHT_OK), enrollment, now=LONG_AGO))
    assert m.due_at == datetime(2026, 3, 8, 7, 30, tzinfo=UTC)  # 03:30 EDT: forward by the gap


def test_it_sends_a_fold_wall_time_at_its_first_occurrence() -> None:
    step = make_step(day=0, time=time(1, 30))
    enrollment = make_enrollment(surgery_date=date(2026, 11, 1))
    m = only(plan(make_schedule(step, window=NIGHT_OK), enrollment, now=LONG_AGO))
    assert m.due_at == datetime(2026, 11, 1, 5, 30, tzinfo=UTC)  # 01:30 EDT, not EST
    assert m.local_due.utcoffset() == timedelta(hours=-4)


def test_it_counts_days_on_the_local_calendar_not_in_utc() -> None:
    # 20:00 in Sydney on day 1 is still the morning of day 1 in UTC: the local date rules.
    step = make_step(day=1, time=time(19))
    enrollment = make_enrollment(timezone="Australia/Sydney", surgery_date=date(2026, 6, 1))
    m = only(plan(make_schedule(step), enrollment, now=LONG_AGO))
    assert m.local_due == datetime(2026, 6, 2, 19, tzinfo=ZoneInfo("Australia/Sydney"))


# --- send window and expiry -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("step_time", "expected"),
    [
        (time(8), ny(2026, 1, 13, 9)),  # too early: the window's start that day
        (time(9), ny(2026, 1, 13, 9)),  # the start itself is allowed
        (time(19, 59), ny(2026, 1, 13, 19, 59)),
        (time(20), ny(2026, 1, 14, 9)),  # the end is exclusive: next morning
        (time(21), ny(2026, 1, 14, 9)),  # too late: next morning
    ],
    ids=["08:00", "09:00", "19:59", "20:00", "21:00"],
)
def test_it_moves_a_due_time_outside_the_window_to_the_next_allowed(
    step_time: time, expected: datetime
) -> None:
    m = only(plan(make_schedule(make_step(time=step_time)), make_enrollment(), now=LONG_AGO))
    assert m.due_at == expected


@pytest.mark.parametrize(
    ("step_time", "expires_after", "expected"),
    [
        (time(10), timedelta(hours=8), ny(2026, 1, 13, 18)),
        (time(10), timedelta(hours=12), ny(2026, 1, 13, 20)),  # capped at the window's end
        (time(10), None, ny(2026, 1, 13, 20)),  # default: the end of that day's window
        (time(8), timedelta(hours=2), ny(2026, 1, 13, 11)),  # from the moved due time (09:00)
        (time(21), timedelta(hours=2), ny(2026, 1, 14, 11)),  # moved to the next morning
        (time(10), timedelta(0), ny(2026, 1, 13, 10)),  # never before due
    ],
    ids=["8h", "12h-capped", "default", "moved-forward", "moved-next-day", "zero"],
)
def test_it_expires_within_that_days_window(
    step_time: time, expires_after: timedelta | None, expected: datetime
) -> None:
    step = make_step(time=step_time, expires_after=expires_after)
    m = only(plan(make_schedule(step), make_enrollment(), now=LONG_AGO))
    assert m.expires_at == expected


# --- the past, and catch-up -----------------------------------------------------------------


def test_it_does_not_plan_steps_already_past_at_enrollment() -> None:
    steps = (make_step(id="early", day=-7), make_step(id="late", day=5))
    planned = plan(make_schedule(*steps), make_enrollment(), now=ny(2026, 1, 10, 12))
    assert [m.step_id for m in planned] == ["late"]


def test_it_plans_a_step_due_exactly_now_but_not_one_due_just_before() -> None:
    steps = (make_step(id="now", day=1, time=time(10)), make_step(id="before", day=1, time=time(9, 59)))
    planned = plan(make_schedule(*steps), make_enrollment(), now=ny(2026, 1, 13, 10))
    assert [m.step_id for m in planned] == ["now"]


def test_it_never_bursts_old_recurring_occurrences() -> None:
    step = make_step(day=1, every=1, until=14)
    planned = plan(make_schedule(step), make_enrollment(), now=ny(2026, 1, 20, 12))  # day 8
    assert [m.occurrence for m in planned] == list(range(9, 15))


def test_it_catches_up_a_one_off_step_once_at_the_next_allowed_instant() -> None:
    step = make_step(id="smoking", day=-7, time=time(11), catch_up=True, expires_after=timedelta(hours=3))
    now = ny(2026, 1, 9, 21)  # day -3, after the window closed
    m = only(plan(make_schedule(step), make_enrollment(), now=now))
    assert m.occurrence == -7
    assert m.due_at == ny(2026, 1, 10, 9)
    assert m.expires_at == ny(2026, 1, 10, 12)  # from the new due time


def test_it_catches_up_only_the_latest_missed_occurrence() -> None:
    step = make_step(id="calcium", day=1, time=time(18), every=7, until=84, catch_up=True)
    now = ny(2026, 1, 22, 12)  # day 10: days 1 and 8 are past
    planned = plan(make_schedule(step), make_enrollment(), now=now)

    assert planned[0].occurrence == 8
    assert planned[0].due_at == now
    assert [m.occurrence for m in planned[1:]] == list(range(15, 85, 7))
    assert len(planned) == 11


def test_it_drops_a_catch_up_that_the_next_occurrence_supersedes_the_same_day() -> None:
    step = make_step(id="fever", day=1, every=1, until=14, catch_up=True)
    now = ny(2026, 1, 15, 21)  # day 3 after the window: a catch-up would go at 09:00 on day 4
    planned = plan(make_schedule(step), make_enrollment(), now=now)
    assert [m.occurrence for m in planned] == list(range(4, 15))
    assert planned[0].due_at == ny(2026, 1, 16, 10)


# --- recurrence -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("day", "every", "until", "count"),
    [(1, 7, 84, 12), (1, 1, 14, 14), (-7, None, None, 1), (3, 5, None, 1), (0, 7, 7, 2)],
    ids=["weekly-to-84", "daily-two-weeks", "one-off", "every-without-until", "until-inclusive"],
)
def test_it_counts_recurring_occurrences(day: int, every: int | None, until: int | None, count: int) -> None:
    step = make_step(day=day, every=every, until=until)
    planned = plan(make_schedule(step), make_enrollment(), now=LONG_AGO)
    assert len(planned) == count
    assert planned[0].occurrence == day


# --- conditions and channels ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("attributes", "has_email", "expected"),
    [
        (frozenset(), False, ["everyone", "non-smoker"]),
        (frozenset({"smoker"}), False, ["everyone", "smoker"]),
        (frozenset(), True, ["email-holder", "everyone", "non-smoker"]),
    ],
    ids=["non-smoker", "smoker", "has-email"],
)
def test_it_plans_only_steps_whose_conditions_hold(
    attributes: frozenset[str], has_email: bool, expected: list[str]
) -> None:
    steps = (
        make_step(id="everyone"),
        make_step(id="smoker", when=(Condition("smoker"),)),
        make_step(id="non-smoker", when=(Condition("smoker", negate=True),)),
        make_step(id="email-holder", when=(Condition("has_email"),)),
    )
    enrollment = make_enrollment(attributes=attributes, has_email=has_email)
    planned = plan(make_schedule(*steps), enrollment, now=LONG_AGO)
    assert sorted(m.step_id for m in planned) == expected


@pytest.mark.parametrize(
    ("step_channel", "preference", "has_phone", "has_email", "expected"),
    [
        (None, "both", True, True, ["email", "sms"]),
        (None, "both", True, False, ["sms"]),
        (None, "both", False, True, ["email"]),
        (None, "email", True, False, ["sms"]),  # fallback
        (None, "sms", False, True, ["email"]),  # fallback
        (None, "sms", False, False, []),
        ("sms", "email", True, True, ["sms"]),  # the step overrides the preference
        ("both", "sms", True, True, ["email", "sms"]),
    ],
    ids=[
        "both",
        "both-no-email",
        "both-no-phone",
        "email-falls-back",
        "sms-falls-back",
        "unreachable",
        "step-override",
        "step-both",
    ],
)
def test_it_picks_channels(
    step_channel: str | None,
    preference: str,
    has_phone: bool,
    has_email: bool,
    expected: list[str],
) -> None:
    enrollment = make_enrollment(channel=preference, has_phone=has_phone, has_email=has_email)
    planned = plan(make_schedule(make_step(channel=step_channel)), enrollment, now=LONG_AGO)
    assert sorted(m.channel for m in planned) == expected
    assert len({m.key for m in planned}) == len(planned)


# --- rescheduling ---------------------------------------------------------------------------

STEPS = (
    make_step(id="smoking", day=-7, time=time(11), when=(Condition("smoker"),)),
    make_step(id="calcium", day=1, time=time(18), every=7, until=84),
    make_step(id="fever", day=1, every=1, until=14, ask="fever_check", channel="both"),
)


def test_it_keeps_keys_and_moves_due_times_when_the_surgery_date_moves() -> None:
    enrollment = make_enrollment(attributes=frozenset({"smoker"}), has_email=True)
    first = plan(make_schedule(*STEPS), enrollment, now=LONG_AGO)
    moved = plan(
        make_schedule(*STEPS),
        make_enrollment(
            attributes=frozenset({"smoker"}), has_email=True, surgery_date=SURGERY + timedelta(days=7)
        ),
        now=LONG_AGO,
    )

    assert {m.key for m in first} == {m.key for m in moved}
    by_key = {m.key: m for m in first}
    for m in moved:
        # Seven calendar days later at the same local time (crossing 2026-03-08 for calcium).
        assert m.local_due.replace(tzinfo=None) == (
            by_key[m.key].local_due.replace(tzinfo=None) + timedelta(days=7)
        )


def test_it_replans_without_already_sent_keys_or_duplicates() -> None:
    schedule = make_schedule(*STEPS)
    before = plan(schedule, make_enrollment(), now=LONG_AGO)
    sent = {m.key for m in before[:5]}

    now = ny(2026, 1, 15, 12)
    after = replan(
        schedule, make_enrollment(surgery_date=SURGERY + timedelta(days=2)), now=now, sent_keys=sent
    )

    keys = [m.key for m in after]
    assert len(keys) == len(set(keys))
    assert not sent & set(keys)
    assert set(keys) == {m.key for m in before} - sent


# --- shape ----------------------------------------------------------------------------------


def test_it_sorts_by_due_time_then_step_then_channel() -> None:
    steps = (
        make_step(id="b", channel="both"),
        make_step(id="a", time=time(10)),
        make_step(id="c", time=time(9)),
    )
    planned = plan(make_schedule(*steps), make_enrollment(has_email=True), now=LONG_AGO)
    assert [(m.step_id, m.channel) for m in planned] == [
        ("c", "sms"),
        ("a", "sms"),
        ("b", "email"),
        ("b", "sms"),
    ]


def test_it_builds_stable_keys_and_carries_the_step() -> None:
    step = make_step(
        id="fever", ask="fever_check", remind_after=timedelta(hours=4), missed_after=timedelta(hours=24)
    )
    m = only(plan(make_schedule(step), make_enrollment(), now=LONG_AGO))
    assert m.key == "7:fever:1:sms"
    assert (m.ask, m.remind_after, m.missed_after) == ("fever_check", timedelta(hours=4), timedelta(hours=24))
    assert m.due_at.tzinfo is UTC


def test_it_previews_rows_with_local_and_utc_times() -> None:
    step = make_step(id="fever", ask="fever_check", expires_after=timedelta(hours=8))
    rows = preview_rows(plan(make_schedule(step), make_enrollment(), now=LONG_AGO))
    assert rows == [
        {
            "step": "fever",
            "due_local": "2026-01-13T10:00:00-05:00",
            "due_utc": "2026-01-13T15:00:00Z",
            "channel": "sms",
            "message": "reminder",
            "ask": "fever_check",
            "expires_utc": "2026-01-13T23:00:00Z",
        }
    ]


def test_it_rejects_a_naive_now() -> None:
    with pytest.raises(ValueError, match="aware"):
        plan(make_schedule(make_step()), make_enrollment(), now=datetime(2026, 1, 1))


def test_it_rejects_repeated_step_ids() -> None:
    with pytest.raises(ValueError, match="repeats a step id"):
        plan(make_schedule(make_step(), make_step()), make_enrollment(), now=LONG_AGO)
