"""Discharge and appointments: recording them moves, adds and cancels the right outbox rows."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from checkin.core.schedule import Schedule
from checkin.core.schedule.load import parse_schedule_text
from checkin.enrollment.anchors import book_appointment, cancel_appointment, list_appointments, set_discharge
from checkin.enrollment.enroll import enroll, parse_request, reschedule
from checkin.errors import EnrollmentError
from checkin.states import OutboxStatus
from checkin.store.models import AuditEvent, OutboxMessage

OUTBOX_CANCELLED, OUTBOX_PENDING, OUTBOX_SENT = (
    OutboxStatus.CANCELLED,
    OutboxStatus.PENDING,
    OutboxStatus.SENT,
)

NOW = datetime(2026, 3, 1, 15, 0, tzinfo=UTC)
SURGERY = date(2026, 3, 10)  # New York is on EST until 2026-03-08, EDT after: all dates here are EDT

SCHEDULE_YAML = """\
id: anchor-test
name: Anchor test
send_window: ["09:00", "20:00"]
discharge_fallback_day: 4
daily_limit:
  - {max: 5}
steps:
  - id: welcome
    day: -7
    time: "10:00"
    message: welcome
  - id: daily-check
    anchor: discharge
    day: 1
    every: 1
    until: 3
    time: "16:00"
    message: fever_check
    ask: fever_check
  - id: visit-first
    anchor: first_visit
    day: -1
    fallback_day: 12
    time: "12:00"
    message: visit_first
  - id: visit-six-weeks
    anchor: six_week_visit
    day: -1
    time: "12:00"
    message: visit_6_weeks
"""


@pytest.fixture
def schedules() -> dict[str, Schedule]:
    return {"anchor-test": parse_schedule_text(SCHEDULE_YAML, "anchor-test.yaml")}


@pytest.fixture
def enrolled(session: Session, schedules: dict[str, Schedule]) -> Session:
    req = parse_request(
        {
            "mrn": "M1",
            "first_name": "Ana",
            "phone": "(617) 555-0123",
            "procedure": "anchor-test",
            "surgery_date": SURGERY.isoformat(),
            "timezone": "America/New_York",
        },
        schedules=schedules,
        default_region="US",
        default_timezone="America/New_York",
    )
    enroll(session, req, schedules=schedules, now=NOW)
    session.commit()
    return session


def rows(session: Session, step: str) -> list[OutboxMessage]:
    return list(
        session.scalars(
            select(OutboxMessage).where(OutboxMessage.step_id == step).order_by(OutboxMessage.occurrence)
        )
    )


def local(row: OutboxMessage) -> str:
    return f"{row.due_at - timedelta(hours=4):%Y-%m-%d %H:%M}"  # EDT, see SURGERY


def test_it_waits_for_discharge_until_the_fallback_day(enrolled: Session) -> None:
    checks = rows(enrolled, "daily-check")
    # No discharge recorded: day 1 after an assumed discharge on day 4 is day 5 after surgery.
    assert [local(r) for r in checks] == ["2026-03-15 16:00", "2026-03-16 16:00", "2026-03-17 16:00"]


def test_it_moves_discharge_checks_when_the_discharge_is_recorded(
    enrolled: Session, schedules: dict[str, Schedule]
) -> None:
    result = set_discharge(enrolled, "M1", date(2026, 3, 12), schedules=schedules, now=NOW)
    enrolled.commit()
    checks = rows(enrolled, "daily-check")
    assert [local(r) for r in checks] == ["2026-03-13 16:00", "2026-03-14 16:00", "2026-03-15 16:00"]
    assert {r.status for r in checks} == {OUTBOX_PENDING}
    assert {(m.step_id, m.occurrence) for m in result.moves} == {("daily-check", d) for d in (1, 2, 3)}
    actions = list(enrolled.scalars(select(AuditEvent.action)))
    assert "enrollment.discharge_set" in actions


def test_it_refuses_a_discharge_before_surgery_and_changes_nothing(
    enrolled: Session, schedules: dict[str, Schedule]
) -> None:
    before = [local(r) for r in rows(enrolled, "daily-check")]
    with pytest.raises(EnrollmentError, match="before the surgery date"):
        set_discharge(enrolled, "M1", date(2026, 3, 9), schedules=schedules, now=NOW)
    assert [local(r) for r in rows(enrolled, "daily-check")] == before


def test_a_dry_run_reports_moves_without_writing(enrolled: Session, schedules: dict[str, Schedule]) -> None:
    before = [local(r) for r in rows(enrolled, "daily-check")]
    result = set_discharge(enrolled, "M1", date(2026, 3, 11), schedules=schedules, now=NOW, apply=False)
    enrolled.commit()
    assert len(result.moves) == 3
    assert [local(r) for r in rows(enrolled, "daily-check")] == before


def test_it_plans_the_fallback_visit_reminder_without_a_date(enrolled: Session) -> None:
    (first,) = rows(enrolled, "visit-first")
    assert local(first) == "2026-03-22 12:00"  # fallback_day 12: sent on day 12 after surgery
    assert first.followup_at is None
    assert rows(enrolled, "visit-six-weeks") == []  # no fallback: nothing until it is booked


def test_booking_a_visit_moves_its_reminder_to_the_day_before_with_its_time(
    enrolled: Session, schedules: dict[str, Schedule]
) -> None:
    book_appointment(
        enrolled,
        "M1",
        "first_visit",
        datetime(2026, 3, 25, 9, 30),
        where="Clinic B",
        schedules=schedules,
        now=NOW,
    )
    enrolled.commit()
    (first,) = rows(enrolled, "visit-first")
    assert local(first) == "2026-03-24 12:00"
    assert first.followup_at == datetime(2026, 3, 25, 13, 30, tzinfo=UTC)
    assert first.followup_where == "Clinic B"


def test_moving_a_visit_moves_its_reminder_and_keeps_the_row(
    enrolled: Session, schedules: dict[str, Schedule]
) -> None:
    book_appointment(
        enrolled, "M1", "six_week_visit", datetime(2026, 4, 21, 10, 0), schedules=schedules, now=NOW
    )
    enrolled.commit()
    (booked,) = rows(enrolled, "visit-six-weeks")
    result = book_appointment(
        enrolled, "M1", "six_week_visit", datetime(2026, 4, 28, 15, 0), schedules=schedules, now=NOW
    )
    enrolled.commit()
    (moved,) = rows(enrolled, "visit-six-weeks")
    assert moved.id == booked.id
    assert local(moved) == "2026-04-27 12:00"
    assert moved.followup_at == datetime(2026, 4, 28, 19, 0, tzinfo=UTC)
    assert [(m.step_id, m.after is not None and m.before is not None) for m in result.moves] == [
        ("visit-six-weeks", True)
    ]
    _, views = list_appointments(enrolled, "M1")
    assert [(v.kind, v.at_local, v.status) for v in views] == [
        ("six_week_visit", datetime(2026, 4, 28, 15, 0), "booked")
    ]


def test_removing_a_visit_cancels_its_reminders_and_its_fallback(
    enrolled: Session, schedules: dict[str, Schedule]
) -> None:
    book_appointment(
        enrolled, "M1", "first_visit", datetime(2026, 3, 25, 9, 30), schedules=schedules, now=NOW
    )
    enrolled.commit()
    result = cancel_appointment(enrolled, "M1", "first_visit", schedules=schedules, now=NOW)
    enrolled.commit()
    (first,) = rows(enrolled, "visit-first")
    assert first.status == OUTBOX_CANCELLED
    assert result.cancelled == 1
    # Re-planning for another reason (a new surgery date) must not bring the reminder back.
    reschedule(enrolled, "M1", SURGERY + timedelta(days=1), schedules=schedules, now=NOW)
    enrolled.commit()
    assert [r.status for r in rows(enrolled, "visit-first")] == [OUTBOX_CANCELLED]


def test_a_sent_reminder_stays_history_when_the_visit_moves(
    enrolled: Session, schedules: dict[str, Schedule]
) -> None:
    (first,) = rows(enrolled, "visit-first")
    first.status = OUTBOX_SENT
    enrolled.commit()
    result = book_appointment(
        enrolled, "M1", "first_visit", datetime(2026, 3, 30, 9, 0), schedules=schedules, now=NOW
    )
    enrolled.commit()
    assert result.kept_history == 1
    (still,) = rows(enrolled, "visit-first")
    assert still.status == OUTBOX_SENT and local(still) == "2026-03-22 12:00"


def test_it_rejects_an_appointment_kind_the_schedule_does_not_use(
    enrolled: Session, schedules: dict[str, Schedule]
) -> None:
    with pytest.raises(EnrollmentError, match="kinds it uses: first_visit, six_week_visit"):
        book_appointment(
            enrolled, "M1", "six_week_vist", datetime(2026, 4, 21, 10, 0), schedules=schedules, now=NOW
        )
