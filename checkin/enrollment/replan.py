"""Re-plan one enrollment after an anchor changes (surgery date, discharge, appointments).

``stored_plan_input`` reads the enrollment's anchors from the database; ``replan`` lines the new plan
up with the enrollment's outbox rows by key. Rows keep their keys: a pending row whose key is
still planned gets its new due time (and visit); one no longer planned is cancelled; a newly
planned key is inserted. Rows sent or being sent stay as history, so nothing is duplicated.
With ``apply=False`` nothing is written and the result only says what would move.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from checkin.core.schedule import PlanInput, Schedule
from checkin.core.schedule.model import Appointment as PlannedAppointment
from checkin.core.timeline import plan
from checkin.states import OUTBOX_UNSENT, ChannelName, OutboxStatus
from checkin.store import outbox
from checkin.store.bulk import insert_outbox_rows
from checkin.store.models import (
    APPOINTMENT_BOOKED,
    APPOINTMENT_CANCELLED,
    Appointment,
    Enrollment,
    OutboxMessage,
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
    from checkin.enrollment.enroll import _outbox_row  # one row shape for enroll and replan

    patient = enrollment.patient
    planned = {m.key: m for m in plan(schedule, pin, now=now)}
    rows = {
        r.key: r
        for r in session.scalars(select(OutboxMessage).where(OutboxMessage.enrollment_id == enrollment.id))
    }
    result = RescheduleResult()
    revivable = (*OUTBOX_UNSENT, OutboxStatus.CANCELLED, OutboxStatus.SKIPPED)
    for key, row in sorted(rows.items(), key=lambda kv: kv[1].due_at):
        msg = planned.get(key)
        if row.status not in revivable:
            result.kept_history += 1
            continue
        if msg is None:
            if row.status in OUTBOX_UNSENT:
                result.cancelled += 1
                result.moves.append(Move(row.step_id, row.occurrence, row.channel, row.due_at, None))
                if row.step_id not in result.cancelled_steps:
                    result.cancelled_steps.append(row.step_id)
                if apply:
                    outbox.cancel_rescheduled(row, now)
            continue
        was_unsent = row.status in OUTBOX_UNSENT
        if msg.due_at != row.due_at or not was_unsent or msg.followup_at != row.followup_at:
            result.moves.append(
                Move(row.step_id, row.occurrence, row.channel, row.due_at if was_unsent else None, msg.due_at)
            )
        result.updated += 1
        if not apply:
            continue
        outbox.move(
            row,
            due_at=msg.due_at,
            expires_at=msg.expires_at,
            now=now,
            sms_opted_out=patient.sms_opted_out,
            followup_at=msg.followup_at,
            followup_where=msg.followup_where,
        )
    new = [_outbox_row(m, enrollment.id, patient.id, now) for k, m in planned.items() if k not in rows]
    result.moves.extend(Move(r["step_id"], r["occurrence"], r["channel"], None, r["due_at"]) for r in new)
    result.added = len(new)
    if apply and new:
        if patient.sms_opted_out:
            for r in new:
                if r["channel"] == ChannelName.SMS:
                    r["status"] = OutboxStatus.HELD
        insert_outbox_rows(session, new)
    return result
