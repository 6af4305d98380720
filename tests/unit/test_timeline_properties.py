"""Properties of plan() and the window functions over random dates, zones, windows and steps."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from hypothesis import given, settings
from hypothesis import strategies as st

from checkin.core.schedule.model import PlanInput, Schedule, Step
from checkin.core.timeline import plan
from checkin.core.window import in_window, local_instant, next_allowed, window_end

ZONES = [
    "UTC",
    "America/New_York",
    "America/Los_Angeles",
    "America/St_Johns",  # -3:30 with DST
    "America/Sao_Paulo",
    "America/Santiago",  # changes at local midnight
    "Europe/London",
    "Europe/Dublin",  # "negative" DST in tzdata
    "Asia/Tehran",  # DST until 2022, changing at midnight
    "Asia/Kathmandu",  # +5:45
    "Asia/Kolkata",
    "Australia/Sydney",
    "Australia/Lord_Howe",  # 30-minute DST
    "Pacific/Chatham",  # +12:45/+13:45, changes at 02:45
    "Pacific/Kiritimati",  # +14
]

SETTINGS = settings(max_examples=200, deadline=None)
FIRST, LAST = date(2020, 1, 1), date(2035, 12, 31)


def _transition_days(zone: str) -> list[date]:
    """Local days in FIRST..LAST whose midnight has another UTC offset than the next one's."""
    tz = ZoneInfo(zone)
    days = []
    day = FIRST
    offset = datetime.combine(day, time(0), tzinfo=tz).utcoffset()
    while day <= LAST:
        following = datetime.combine(day + timedelta(days=1), time(0), tzinfo=tz).utcoffset()
        if following != offset:
            days.append(day)
        day, offset = day + timedelta(days=1), following
    return days


# Uniform dates over 16 years almost never land on a DST change, so half the draws are near one.
TRANSITION_DAYS = {zone: _transition_days(zone) for zone in ZONES}


@st.composite
def zone_and_day(draw: st.DrawFn) -> tuple[str, date]:
    zone = draw(st.sampled_from(ZONES))
    near = TRANSITION_DAYS[zone]
    pick_near = draw(st.booleans())
    if near and pick_near:
        return zone, draw(st.sampled_from(near)) + timedelta(days=draw(st.integers(-2, 1)))
    return zone, draw(st.dates(min_value=FIRST, max_value=LAST))


minutes_of_day = st.integers(min_value=0, max_value=24 * 60 - 1)


def as_time(minutes: int) -> time:
    return time(minutes // 60, minutes % 60)


@st.composite
def windows(draw: st.DrawFn) -> tuple[time, time]:
    # Night-allowing windows too, so step and window edges meet gaps and folds.
    start = draw(st.integers(min_value=0, max_value=22 * 60))
    end = draw(st.integers(min_value=start + 30, max_value=24 * 60 - 1))
    return as_time(start), as_time(end)


@st.composite
def steps(draw: st.DrawFn, index: int) -> Step:
    day = draw(st.integers(min_value=-14, max_value=30))
    every = draw(st.none() | st.integers(min_value=1, max_value=10))
    until = None if every is None else draw(st.integers(min_value=day, max_value=day + 60))
    return Step(
        id=f"s{index}",
        day=day,
        time=as_time(draw(minutes_of_day)),
        message="m",
        every=every,
        until=until,
        channel=draw(st.sampled_from([None, "sms", "email", "both"])),
        expires_after=draw(st.none() | st.integers(0, 30 * 60).map(lambda m: timedelta(minutes=m))),
        catch_up=draw(st.booleans()),
    )


@st.composite
def cases(draw: st.DrawFn) -> tuple[Schedule, PlanInput, datetime]:
    count = draw(st.integers(min_value=1, max_value=4))
    schedule = Schedule(
        id="p",
        name="P",
        version="v",
        send_window=draw(windows()),
        steps=tuple(draw(steps(i)) for i in range(count)),
    )
    zone, day = draw(zone_and_day())
    # Put the first step's day 0 on the drawn day, so its first occurrence meets the change.
    enrollment = PlanInput(
        id=1,
        surgery_date=day - timedelta(days=schedule.steps[0].day),
        timezone=zone,
        channel=draw(st.sampled_from(["sms", "email", "both"])),
        has_email=draw(st.booleans()),
        has_phone=draw(st.booleans()),
    )
    midnight = datetime.combine(enrollment.surgery_date, time(0), tzinfo=UTC)
    now = midnight + timedelta(minutes=draw(st.integers(-20 * 24 * 60, 40 * 24 * 60)))
    return schedule, enrollment, now


@SETTINGS
@given(cases())
def test_it_plans_only_inside_the_window_and_never_in_the_past(
    case: tuple[Schedule, PlanInput, datetime],
) -> None:
    schedule, enrollment, now = case
    tz = ZoneInfo(enrollment.timezone)
    start, end = schedule.send_window
    planned = plan(schedule, enrollment, now=now)

    keys = Counter(m.key for m in planned)
    assert all(n == 1 for n in keys.values())
    assert [m.due_at for m in planned] == sorted(m.due_at for m in planned)
    for m in planned:
        assert m.due_at >= now
        assert in_window(m.due_at, schedule.send_window, tz)
        # Independently of window.py: the patient's clock reads inside the window.
        assert start <= m.due_at.astimezone(tz).time() < end
        assert m.due_at <= m.expires_at <= window_end(m.due_at, schedule.send_window, tz)
        # Compared in UTC: PEP 495 makes `==` across zones False for a fold=1 time.
        assert m.local_due.astimezone(UTC) == m.due_at and m.local_due.tzinfo == tz


@SETTINGS
@given(cases())
def test_it_catches_up_at_most_one_occurrence_per_step(
    case: tuple[Schedule, PlanInput, datetime],
) -> None:
    schedule, enrollment, now = case
    tz = ZoneInfo(enrollment.timezone)
    planned = plan(schedule, enrollment, now=now)
    for step in schedule.steps:
        occurrences = {m.occurrence for m in planned if m.step_id == step.id}
        # An occurrence whose own due time is past can only be there as a catch-up.
        caught_up = {
            day
            for day in occurrences
            if next_allowed(
                local_instant(enrollment.surgery_date + timedelta(days=day), step.time, tz),
                schedule.send_window,
                tz,
            )
            < now
        }
        assert len(caught_up) <= (1 if step.catch_up else 0)


@SETTINGS
@given(zone_and_day(), minutes_of_day, windows())
def test_it_finds_the_earliest_allowed_instant(
    zone_day: tuple[str, date], minutes: int, window: tuple[time, time]
) -> None:
    zone, day = zone_day
    tz = ZoneInfo(zone)
    instant = datetime.combine(day, time(0), tzinfo=UTC) + timedelta(minutes=minutes)
    got = next_allowed(instant, window, tz)

    assert got >= instant
    assert in_window(got, window, tz)
    assert window[0] <= got.astimezone(tz).time() < window[1]
    if got > instant:  # nothing earlier qualified
        assert not in_window(got - timedelta(seconds=1), window, tz)
    assert got < window_end(got, window, tz)
    assert not in_window(window_end(got, window, tz), window, tz)


@SETTINGS
@given(zone_and_day(), minutes_of_day)
def test_it_moves_a_wall_time_forward_only_by_a_gap(zone_day: tuple[str, date], minutes: int) -> None:
    zone, day = zone_day
    tz = ZoneInfo(zone)
    wall = datetime.combine(day, as_time(minutes))
    got = local_instant(day, as_time(minutes), tz).astimezone(tz)
    shift = got.replace(tzinfo=None) - wall
    if shift:
        # A gap: the shift is exactly its length, the post- minus the pre-transition offset.
        before = wall.replace(tzinfo=tz, fold=0).utcoffset()
        after = wall.replace(tzinfo=tz, fold=1).utcoffset()
        assert before is not None and after is not None
        assert shift == after - before > timedelta(0)
    else:
        # Exists: in a fold, the first occurrence (the earlier UTC instant).
        assert got.astimezone(UTC) == min(wall.replace(tzinfo=tz, fold=f).astimezone(UTC) for f in (0, 1))
