"""The daily limit: no day over its maximum, high priority never moves, others shift or drop."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, date, datetime, time
from typing import Any

import pytest

from checkin.core.schedule.burden import DEFAULT_DAILY_LIMIT, Slot, limit_for, place
from checkin.core.schedule.load import parse_schedule_text
from checkin.core.schedule.model import LimitBand, PlanInput, Schedule, Step
from checkin.core.timeline import plan, plan_with_drops
from checkin.errors import ScheduleErrors

SURGERY = date(2026, 1, 12)
LONG_AGO = datetime(2025, 1, 1, tzinfo=UTC)


def step(step_id: str, day: int, hour: int, priority: str = "normal", **kw: Any) -> Step:
    return Step(id=step_id, day=day, time=time(hour), message=step_id, priority=priority, **kw)


def schedule(*steps: Step, limit: tuple[LimitBand, ...] = DEFAULT_DAILY_LIMIT) -> Schedule:
    return Schedule(
        id="t", name="t", version="v", send_window=(time(9), time(20)), steps=steps, daily_limit=limit
    )


def per_day(planned: list[Any]) -> Counter[date]:
    return Counter(m.local_due.date() for m in planned)


def test_the_default_allows_two_a_day_in_the_first_two_weeks_and_three_otherwise() -> None:
    assert [limit_for(d, DEFAULT_DAILY_LIMIT) for d in (-1, 0, 14, 15, 200)] == [3, 2, 2, 3, 3]


def test_it_moves_the_lowest_priority_message_to_the_next_day() -> None:
    s = schedule(
        step("check", 1, 10, "high"),
        step("tip", 1, 11, "low"),
        step("reminder", 1, 12, "normal"),
    )
    planned = plan(s, PlanInput(id=1, surgery_date=SURGERY, timezone="America/New_York"), now=LONG_AGO)
    days = {m.step_id: (m.local_due.date() - SURGERY).days for m in planned}
    assert days == {"check": 1, "reminder": 1, "tip": 2}
    assert {m.step_id: m.moved_days for m in planned} == {"check": 0, "reminder": 0, "tip": 1}
    # the moved message keeps its key (occurrence = its own day), so re-planning updates it
    assert next(m for m in planned if m.step_id == "tip").occurrence == 1


def test_no_day_goes_over_the_limit_when_only_lower_priorities_crowd_it() -> None:
    s = schedule(
        step("a", 1, 10, "high", every=1, until=14),
        step("b", 1, 11, "normal", every=1, until=14),
        step("c", 2, 12, "low", every=7, until=14),
        step("d", 3, 13, "normal", every=7, until=14),
    )
    planned, dropped = plan_with_drops(
        s, PlanInput(id=1, surgery_date=SURGERY, timezone="America/New_York"), now=LONG_AGO
    )
    counts = per_day(planned)
    assert all(counts[d] <= limit_for((d - SURGERY).days, DEFAULT_DAILY_LIMIT) for d in counts)  # type: ignore[operator]
    # every day of weeks 1-2 is full with a and b, so c and d can only move past day 14 or drop
    assert set(dropped) | {(m.step_id, m.occurrence) for m in planned if m.step_id in "cd"} == {
        ("c", 2),
        ("c", 9),
        ("d", 3),
        ("d", 10),
    }
    assert all((m.local_due.date() - SURGERY).days - m.occurrence <= 3 for m in planned)


def test_high_priority_messages_are_never_moved_even_over_the_limit() -> None:
    s = schedule(step("x", 1, 10, "high"), step("y", 1, 11, "high"), step("z", 1, 12, "high"))
    planned = plan(s, PlanInput(id=1, surgery_date=SURGERY, timezone="America/New_York"), now=LONG_AGO)
    assert per_day(planned) == Counter({date(2026, 1, 13): 3})


def test_placement_does_not_depend_on_input_order() -> None:
    slots = [
        Slot(i, date(2026, 1, 13), time(10 + i), p, i) for i, p in enumerate(["low", "normal", "high", "low"])
    ]
    bands = (LimitBand(max=2),)
    assert place(slots, bands, SURGERY) == place(list(reversed(slots)), bands, SURGERY)


def test_without_bands_nothing_moves() -> None:
    slots = [Slot(i, date(2026, 1, 13), time(10), "low", i) for i in range(6)]
    placed, dropped = place(slots, (), SURGERY)
    assert set(placed.values()) == {date(2026, 1, 13)} and dropped == []


HEAD = "id: t\nname: T\n"
STEPS = 'steps:\n  - {id: a, day: 1, time: "10:00", message: a}\n'


def test_the_loader_fills_in_the_default_limit() -> None:
    assert parse_schedule_text(HEAD + STEPS, "t.yaml").daily_limit == DEFAULT_DAILY_LIMIT


def test_the_loader_reads_a_custom_limit() -> None:
    text = HEAD + "daily_limit:\n  - {from: 0, until: 7, max: 1}\n  - {max: 4}\n" + STEPS
    bands = parse_schedule_text(text, "t.yaml").daily_limit
    assert [(b.start, b.end, b.max) for b in bands] == [(0, 7, 1), (None, None, 4)]


@pytest.mark.parametrize(
    ("limit", "problem"),
    [
        ("daily_limit: 3\n", "t.yaml:3: daily_limit: must be a list of bands"),
        (
            "daily_limit:\n  - {until: 14, max: 2}\n",
            "t.yaml:4: daily_limit: the last band must have no from/until",
        ),
        ("daily_limit:\n  - {max: 0}\n", "t.yaml:4: max: must be 1-10 messages a day, got 0"),
        ("daily_limit:\n  - {max: two}\n", "t.yaml:4: max: must be a whole number"),
        ("daily_limit:\n  - {from: 9, until: 2, max: 2}\n  - {max: 3}\n", "t.yaml:4: until: day 2 is before"),
        (
            "daily_limit:\n  - {mx: 2}\n",
            "t.yaml:4: mx: unknown key in a daily_limit band; did you mean 'max'?",
        ),
    ],
)
def test_the_loader_names_a_bad_limit(limit: str, problem: str) -> None:
    with pytest.raises(ScheduleErrors) as exc:
        parse_schedule_text(HEAD + limit + STEPS, "t.yaml")
    assert problem in str(exc.value)


def test_the_loader_names_a_bad_priority_and_anchor() -> None:
    text = (
        HEAD
        + 'steps:\n  - {id: a, day: 1, time: "10:00", message: a, priority: urgent, anchor: "Six Week"}\n'
    )
    with pytest.raises(ScheduleErrors) as exc:
        parse_schedule_text(text, "t.yaml")
    assert "t.yaml:4: priority: must be one of high, normal, low" in str(exc.value)
    assert "t.yaml:4: anchor: must be surgery, discharge or an appointment kind" in str(exc.value)


def test_the_loader_refuses_a_fallback_day_without_an_appointment_anchor() -> None:
    text = HEAD + 'steps:\n  - {id: a, day: 1, time: "10:00", message: a, fallback_day: 3}\n'
    with pytest.raises(ScheduleErrors, match="fallback_day: only makes sense with an appointment anchor"):
        parse_schedule_text(text, "t.yaml")
