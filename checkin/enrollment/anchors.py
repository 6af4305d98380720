"""Record the dates a timeline counts from besides surgery: discharge and appointments.

Each function validates first, then changes the enrollment and re-plans its outbox in the
caller's session (one transaction), and audits the change; with ``apply=False`` it writes
nothing and returns what would move (a preview). The CSV import and an EHR feed fill the same
rows through these functions (``source`` says which).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from checkin.core.schedule import Schedule
from checkin.core.schedule.load_timing import APPOINTMENT_KIND
from checkin.core.schedule.model import DISCHARGE, SURGERY
from checkin.core.schedule.model import Appointment as Planned
from checkin.core.window import local_instant
from checkin.enrollment.replan import (
    RescheduleResult,
    active_enrollment,
    replan,
    replan_target,
    stored_plan_input,
)
from checkin.errors import EnrollmentError
from checkin.store import audit
from checkin.store.models import APPOINTMENT_BOOKED, APPOINTMENT_CANCELLED, Appointment, Enrollment

# A discharge more than this long after surgery is almost certainly a typo (a wrong year).
MAX_STAY = timedelta(days=90)
MAX_WHERE = 40  # it goes into SMS text, so it must stay short


@dataclass(frozen=True)
class AppointmentView:
    kind: str
    at_local: datetime  # naive, patient-local
    where: str | None
    status: str
    source: str


def appointment_kinds(schedule: Schedule) -> list[str]:
    """The appointment kinds some step of ``schedule`` counts from."""
    return sorted({s.anchor for s in schedule.steps if s.anchor not in (SURGERY, DISCHARGE)})


def set_discharge(
    session: Session,
    mrn: str,
    discharge: date,
    *,
    schedules: Mapping[str, Schedule],
    now: datetime,
    procedure: str | None = None,
    actor: str = "system",
    apply: bool = True,
) -> RescheduleResult:
    """Record the discharge date; discharge-anchored messages move to count from it."""
    enrollment, schedule = replan_target(session, mrn, procedure, schedules)
    if discharge < enrollment.surgery_date:
        raise EnrollmentError(
            "date", f"discharge {discharge} is before the surgery date {enrollment.surgery_date}"
        )
    if discharge - enrollment.surgery_date > MAX_STAY:
        raise EnrollmentError(
            "date", f"discharge {discharge} is more than {MAX_STAY.days} days after surgery; check the year"
        )
    pin = replace(stored_plan_input(session, enrollment), discharge_date=discharge)
    result = replan(session, enrollment, schedule, pin, now=now, apply=apply)
    if apply:
        old = enrollment.discharge_date
        enrollment.discharge_date = discharge
        audit.record(
            session,
            at=now,
            actor=actor,
            action="enrollment.discharge_set",
            patient_ref=enrollment.patient.reference,
            subject=f"enrollment:{enrollment.id}",
            old_date=old.isoformat() if old else None,
            new_date=discharge.isoformat(),
            moved=len(result.moves),
        )
    return result


def _check_kind(kind: str, schedule: Schedule) -> None:
    if not APPOINTMENT_KIND.fullmatch(kind) or kind in (SURGERY, DISCHARGE):
        raise EnrollmentError("kind", f"{kind!r} is not an appointment kind like first_visit")
    known = appointment_kinds(schedule)
    if kind not in known:
        raise EnrollmentError(
            "kind",
            f"no step of {schedule.id} counts from {kind!r}; kinds it uses: {', '.join(known) or 'none'}",
        )


def book_appointment(
    session: Session,
    mrn: str,
    kind: str,
    at_local: datetime,
    *,
    schedules: Mapping[str, Schedule],
    now: datetime,
    where: str | None = None,
    procedure: str | None = None,
    source: str = "cli",
    external_id: str | None = None,
    actor: str = "system",
    apply: bool = True,
) -> RescheduleResult:
    """Book (or move) the ``kind`` appointment at ``at_local`` (naive, patient-local time).

    One booked appointment per kind: booking a kind that is already booked moves it, and its
    reminders move with it.
    """
    enrollment, schedule = replan_target(session, mrn, procedure, schedules)
    _check_kind(kind, schedule)
    if at_local.tzinfo is not None:
        raise ValueError("at_local must be a naive patient-local time")
    where = " ".join((where or "").split()) or None
    if where is not None and len(where) > MAX_WHERE:
        raise EnrollmentError("where", f"is longer than {MAX_WHERE} characters")
    if at_local.date() < enrollment.surgery_date:
        raise EnrollmentError(
            "at", f"{at_local:%Y-%m-%d} is before the surgery date {enrollment.surgery_date}"
        )
    tz = ZoneInfo(enrollment.patient.timezone)
    at_utc = local_instant(at_local.date(), at_local.time(), tz)
    pin = stored_plan_input(session, enrollment)
    others = tuple(a for a in pin.appointments if a.kind != kind)
    pin = replace(
        pin,
        appointments=(*others, Planned(kind, at_local, where)),
        cancelled_appointments=pin.cancelled_appointments - {kind},
    )
    result = replan(session, enrollment, schedule, pin, now=now, apply=apply)
    if not apply:
        return result
    row = _booked(session, enrollment.id, kind)
    action = "appointment.moved" if row is not None else "appointment.booked"
    if row is None:
        row = Appointment(enrollment_id=enrollment.id, kind=kind, status=APPOINTMENT_BOOKED, created_at=now)
        session.add(row)
    row.at, row.location, row.source, row.updated_at = at_utc, where, source, now
    row.external_id = external_id or row.external_id
    session.flush()
    audit.record(
        session,
        at=now,
        actor=actor,
        action=action,
        patient_ref=enrollment.patient.reference,
        subject=f"appointment:{row.id}",
        kind=kind,
        moved=len(result.moves),
    )
    return result


def cancel_appointment(
    session: Session,
    mrn: str,
    kind: str,
    *,
    schedules: Mapping[str, Schedule],
    now: datetime,
    procedure: str | None = None,
    actor: str = "system",
    apply: bool = True,
) -> RescheduleResult:
    """Cancel the booked ``kind`` appointment; its unsent reminders are cancelled (no fallback
    reminder either: the clinic said there is no such visit)."""
    enrollment, schedule = replan_target(session, mrn, procedure, schedules)
    row = _booked(session, enrollment.id, kind)
    if row is None:
        raise EnrollmentError("kind", f"MRN {mrn!r} has no booked {kind!r} appointment")
    pin = stored_plan_input(session, enrollment)
    pin = replace(
        pin,
        appointments=tuple(a for a in pin.appointments if a.kind != kind),
        cancelled_appointments=pin.cancelled_appointments | {kind},
    )
    result = replan(session, enrollment, schedule, pin, now=now, apply=apply)
    if apply:
        # A set-based UPDATE: appointment rows are not outbox rows, and this keeps that obvious.
        session.execute(
            update(Appointment)
            .where(Appointment.id == row.id)
            .values(status=APPOINTMENT_CANCELLED, updated_at=now)
            .execution_options(synchronize_session="fetch")
        )
        audit.record(
            session,
            at=now,
            actor=actor,
            action="appointment.cancelled",
            patient_ref=enrollment.patient.reference,
            subject=f"appointment:{row.id}",
            kind=kind,
            cancelled=result.cancelled,
        )
    return result


def list_appointments(
    session: Session, mrn: str, *, procedure: str | None = None
) -> tuple[Enrollment, list[AppointmentView]]:
    enrollment = active_enrollment(session, mrn, procedure)
    tz = ZoneInfo(enrollment.patient.timezone)
    rows = session.scalars(
        select(Appointment).where(Appointment.enrollment_id == enrollment.id).order_by(Appointment.at)
    )
    return enrollment, [
        AppointmentView(r.kind, r.at.astimezone(tz).replace(tzinfo=None), r.location, r.status, r.source)
        for r in rows
    ]


def _booked(session: Session, enrollment_id: int, kind: str) -> Appointment | None:
    return session.scalar(
        select(Appointment).where(
            Appointment.enrollment_id == enrollment_id,
            Appointment.kind == kind,
            Appointment.status == APPOINTMENT_BOOKED,
        )
    )


__all__ = [
    "AppointmentView",
    "appointment_kinds",
    "book_appointment",
    "cancel_appointment",
    "list_appointments",
    "set_discharge",
]
