"""Anchors as data: discharge and appointment steps in the pure timeline."""

from __future__ import annotations

from datetime import UTC, date, datetime, time

from checkin.core.schedule.anchors import followup_for, followup_phrase
from checkin.core.schedule.model import Appointment, PlanInput, Schedule, Step
from checkin.core.timeline import plan

SURGERY = date(2026, 1, 12)
LONG_AGO = datetime(2025, 1, 1, tzinfo=UTC)
STEPS = (
    Step(id="check", day=1, every=1, until=2, time=time(16), message="check", anchor="discharge"),
    Step(id="visit", day=-1, time=time(12), message="visit", anchor="first_visit", fallback_day=13),
)
SCHEDULE = Schedule(
    id="t", name="t", version="v", send_window=(time(9), time(20)), steps=STEPS, discharge_fallback_day=3
)


def days(enrollment: PlanInput) -> dict[str, list[int]]:
    out: dict[str, list[int]] = {}
    for m in plan(SCHEDULE, enrollment, now=LONG_AGO):
        out.setdefault(m.step_id, []).append((m.local_due.date() - SURGERY).days)
    return out


def base(**kw: object) -> PlanInput:
    return PlanInput(id=1, surgery_date=SURGERY, timezone="America/New_York", **kw)  # type: ignore[arg-type]


def test_discharge_steps_use_the_fallback_until_discharge_is_known() -> None:
    assert days(base())["check"] == [4, 5]
    assert days(base(discharge_date=date(2026, 1, 13)))["check"] == [2, 3]


def test_an_appointment_step_uses_its_fallback_day_then_the_booked_date() -> None:
    assert days(base())["visit"] == [13]
    booked = base(appointments=(Appointment("first_visit", datetime(2026, 1, 30, 9, 15), "Clinic B"),))
    assert days(booked)["visit"] == [17]
    (visit,) = [m for m in plan(SCHEDULE, booked, now=LONG_AGO) if m.step_id == "visit"]
    assert visit.followup_at == datetime(2026, 1, 30, 14, 15, tzinfo=UTC)
    assert visit.occurrence == -1  # the same key as the fallback reminder: booking moves the row


def test_a_cancelled_appointment_sends_nothing() -> None:
    assert "visit" not in days(base(cancelled_appointments=frozenset({"first_visit"})))


def test_the_followup_phrase_in_both_languages() -> None:
    at = datetime(2026, 3, 4, 14, 5)
    assert followup_phrase(at, None, "en") == "on Wednesday, March 4 at 2:05 PM"
    assert followup_phrase(at, " Clinic  B ", "es") == "el miércoles 4 de marzo a las 14:05 (Clinic B)"
    assert followup_for(None, None, "America/New_York", "en") == ""
    utc = datetime(2026, 3, 4, 19, 5, tzinfo=UTC)
    assert followup_for(utc, None, "America/New_York", "en") == "on Wednesday, March 4 at 2:05 PM"
