"""Re-plan one enrollment after an anchor changes (surgery date, discharge, appointments).

``stored_plan_input`` reads the enrollment's anchors from the database; ``replan`` lines the new plan
up with the enrollment's outbox rows by key. Rows keep their keys: a pending row whose key is
still planned gets its new due time (and visit); one no longer planned is cancelled; a newly
planned key is inserted. Rows sent or being sent stay as history, so nothing is duplicated.
With ``apply=False`` nothing is written and the result only says what would move.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from checkin.core.schedule import PlanInput, PlannedMessage, Schedule
from checkin.core.schedule.model import Appointment as PlannedAppointment
from checkin.core.timeline import plan
from checkin.enrollment.records import outbox_row
from checkin.errors import EnrollmentError
from checkin.states import OUTBOX_UNSENT, ChannelName, EnrollmentStatus, OutboxStatus
from checkin.store import outbox
from checkin.store.bulk import insert_outbox_rows
from checkin.store.models import (
    APPOINTMENT_BOOKED,
    APPOINTMENT_CANCELLED,
    Appointment,
    Enrollment,
    OutboxMessage,
    Patient,
)


@dataclass(frozen=True)
class Move:
    """One message whose time changes: ``before``/``after`` are None when it is added/cancelled."""

    step_id: str
    occurrence: int
    channel: str
    before: datetime | None
    after: datetime | None


@dataclass
class RescheduleResult:
    updated: int = 0
    added: int = 0
    cancelled: int = 0
    kept_history: int = 0
    moves: list[Move] = field(default_factory=list)
    old_date: date | None = None  # set by a surgery-date change
    procedure: str = ""
    cancelled_steps: list[str] = field(default_factory=list)  # step ids, first occurrence order


def stored_plan_input(session: Session, enrollment: Enrollment) -> PlanInput:
    """The timeline's view of ``enrollment``, with its discharge date and appointments."""
    patient = enrollment.patient
    tz = ZoneInfo(patient.timezone)
    rows = list(session.scalars(select(Appointment).where(Appointment.enrollment_id == enrollment.id)))
    booked = tuple(
        PlannedAppointment(a.kind, a.at.astimezone(tz).replace(tzinfo=None), a.location)
        for a in rows
        if a.status == APPOINTMENT_BOOKED
    )
    booked_kinds = {a.kind for a in booked}
    cancelled = frozenset(
        a.kind for a in rows if a.status == APPOINTMENT_CANCELLED and a.kind not in booked_kinds
    )
    return PlanInput(
        id=enrollment.id,
        surgery_date=enrollment.surgery_date,
        timezone=patient.timezone,
        language=patient.language,  # type: ignore[arg-type]
        channel=enrollment.channel,  # type: ignore[arg-type]
        attributes=frozenset(enrollment.attributes),
        has_email=patient.email is not None,
        has_phone=patient.phone is not None,
        discharge_date=enrollment.discharge_date,
        appointments=booked,
        cancelled_appointments=cancelled,
    )


def replan(
    session: Session,
    enrollment: Enrollment,
    schedule: Schedule,
    pin: PlanInput,
    *,
    now: datetime,
    apply: bool = True,
) -> RescheduleResult:
    """Line the outbox up with ``plan(schedule, pin)``; see the module docstring."""
    planned = {m.key: m for m in plan(schedule, pin, now=now)}
    rows = {
        r.key: r
        for r in session.scalars(select(OutboxMessage).where(OutboxMessage.enrollment_id == enrollment.id))
    }
    result = RescheduleResult()
    for row in sorted(rows.values(), key=lambda r: r.due_at):
        msg = planned.get(row.key)
        if row.status not in _REVIVABLE:
            result.kept_history += 1
        elif msg is None:
            _cancel(row, result, now=now, apply=apply)
        else:
            _move(row, msg, result, now=now, apply=apply, sms_opted_out=enrollment.patient.sms_opted_out)
    _add(session, enrollment, [m for k, m in planned.items() if k not in rows], result, now=now, apply=apply)
    return result


# Rows a new plan may still change: sent (or sending) ones are history.
_REVIVABLE = (*OUTBOX_UNSENT, OutboxStatus.CANCELLED, OutboxStatus.SKIPPED)


def _cancel(row: OutboxMessage, result: RescheduleResult, *, now: datetime, apply: bool) -> None:
    """A row the new plan no longer has: cancelled if it was still to send."""
    if row.status not in OUTBOX_UNSENT:
        return
    result.cancelled += 1
    result.moves.append(Move(row.step_id, row.occurrence, row.channel, row.due_at, None))
    if row.step_id not in result.cancelled_steps:
        result.cancelled_steps.append(row.step_id)
    if apply:
        outbox.cancel_rescheduled(row, now)


def _move(
    row: OutboxMessage,
    msg: PlannedMessage,
    result: RescheduleResult,
    *,
    now: datetime,
    apply: bool,
    sms_opted_out: bool,
) -> None:
    """A row the new plan keeps: its new times (and visit); a cancelled or skipped one revives."""
    was_unsent = row.status in OUTBOX_UNSENT
    if msg.due_at != row.due_at or not was_unsent or msg.followup_at != row.followup_at:
        result.moves.append(
            Move(row.step_id, row.occurrence, row.channel, row.due_at if was_unsent else None, msg.due_at)
        )
    result.updated += 1
    if apply:
        outbox.move(
            row,
            due_at=msg.due_at,
            expires_at=msg.expires_at,
            now=now,
            sms_opted_out=sms_opted_out,
            followup_at=msg.followup_at,
            followup_where=msg.followup_where,
        )


def _add(
    session: Session,
    enrollment: Enrollment,
    new: list[PlannedMessage],
    result: RescheduleResult,
    *,
    now: datetime,
    apply: bool,
) -> None:
    """Keys the old plan did not have: inserted (SMS held for a patient who opted out)."""
    patient = enrollment.patient
    rows = [outbox_row(m, enrollment.id, patient.id, now) for m in new]
    result.moves.extend(Move(r["step_id"], r["occurrence"], r["channel"], None, r["due_at"]) for r in rows)
    result.added = len(rows)
    if not apply or not rows:
        return
    if patient.sms_opted_out:
        for r in rows:
            if r["channel"] == ChannelName.SMS:
                r["status"] = OutboxStatus.HELD
    insert_outbox_rows(session, rows)


def active_enrollment(session: Session, mrn: str, procedure: str | None) -> Enrollment:
    """The one active enrollment of ``mrn`` (on ``procedure`` if given); EnrollmentError if there
    is no such patient, none, or several and no procedure to choose."""
    patient = session.scalar(select(Patient).where(Patient.mrn == mrn))
    if patient is None:
        raise EnrollmentError("mrn", f"no patient with MRN {mrn!r}")
    query = select(Enrollment).where(
        Enrollment.patient_id == patient.id, Enrollment.status == EnrollmentStatus.ACTIVE
    )
    if procedure:
        query = query.where(Enrollment.procedure == procedure)
    found = list(session.scalars(query))
    if not found:
        raise EnrollmentError(
            "mrn", f"MRN {mrn!r} has no active enrollment" + (f" on {procedure}" if procedure else "")
        )
    if len(found) > 1:
        names = ", ".join(e.procedure for e in found)
        raise EnrollmentError(
            "procedure", f"MRN {mrn!r} is enrolled on several procedures ({names}); name one"
        )
    return found[0]


def replan_target(
    session: Session, mrn: str, procedure: str | None, schedules: Mapping[str, Schedule]
) -> tuple[Enrollment, Schedule]:
    """The active enrollment to re-plan and its loaded schedule (EnrollmentError if unloaded)."""
    enrollment = active_enrollment(session, mrn, procedure)
    schedule = schedules.get(enrollment.procedure)
    if schedule is None:
        raise EnrollmentError("procedure", f"schedule {enrollment.procedure!r} is not loaded")
    return enrollment, schedule
