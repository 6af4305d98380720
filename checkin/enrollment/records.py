"""The patient and enrollment rows of a batch enrollment, written in chunks (one INSERT per
thousand rows, not one per patient: a 5,000-row CSV import is one short transaction), and the
outbox rows their timelines plan."""

from __future__ import annotations

import secrets
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import insert, select, update
from sqlalchemy.orm import Session

from checkin.core.schedule import Schedule
from checkin.core.schedule.model import PlannedMessage
from checkin.states import EnrollmentStatus, OutboxStatus, PhoneStatus
from checkin.store.models import Enrollment, Patient

if TYPE_CHECKING:
    from checkin.enrollment.enroll import EnrollRequest

_REF_ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I/L: read aloud on the phone


def new_reference() -> str:
    """An internal patient reference, safe for logs and email subjects: it means nothing."""
    return "P-" + "".join(secrets.choice(_REF_ALPHABET) for _ in range(7))


def known_patients(
    session: Session, requests: Sequence[EnrollRequest]
) -> tuple[dict[str, tuple[int, str]], set[tuple[str, str]]]:
    """Existing patients by MRN (id, reference), and the (MRN, procedure) pairs still active."""
    mrns = sorted({r.mrn for r in requests})
    existing: dict[str, tuple[int, str]] = {}
    active: set[tuple[str, str]] = set()
    for chunk in chunks(mrns, 500):
        for pid, mrn, ref in session.execute(
            select(Patient.id, Patient.mrn, Patient.reference).where(Patient.mrn.in_(chunk))
        ):
            existing[mrn] = (pid, ref)
        for mrn, proc in session.execute(
            select(Patient.mrn, Enrollment.procedure)
            .join(Enrollment, Enrollment.patient_id == Patient.id)
            .where(Patient.mrn.in_(chunk), Enrollment.status == EnrollmentStatus.ACTIVE)
        ):
            active.add((mrn, proc))
    return existing, active


def upsert_patients(
    session: Session,
    requests: Sequence[EnrollRequest],
    existing: dict[str, tuple[int, str]],
    now: datetime,
) -> int:
    """Reuse patients by MRN (contact details are updated to what the clerk entered now),
    insert the rest and add them to ``existing``. Returns how many were new."""
    new_patients = []
    latest: dict[str, EnrollRequest] = {r.mrn: r for r in requests}
    for mrn, req in latest.items():
        values = {
            "first_name": req.first_name,
            "phone": req.phone,
            "email": req.email,
            "email_consent": req.email is not None,
            "language": req.language,
            "timezone": req.timezone,
        }
        if mrn in existing:
            session.execute(update(Patient).where(Patient.id == existing[mrn][0]).values(**values))
        else:
            new_patients.append(
                {
                    "mrn": mrn,
                    "reference": new_reference(),
                    "sms_opted_out": False,
                    "phone_status": PhoneStatus.OK,
                    "created_at": now,
                    **values,
                }
            )
    for chunk in chunks(new_patients, 1000):
        rows = session.execute(
            insert(Patient).returning(
                Patient.id, Patient.mrn, Patient.reference, sort_by_parameter_order=True
            ),
            chunk,
        )
        for pid, mrn, ref in rows:
            existing[mrn] = (pid, ref)
    return len(new_patients)


def insert_enrollments(
    session: Session,
    requests: Sequence[EnrollRequest],
    existing: dict[str, tuple[int, str]],
    schedules: Mapping[str, Schedule],
    now: datetime,
) -> list[int]:
    """One active enrollment per request; the new ids in request order."""
    enrollment_rows = [
        {
            "patient_id": existing[r.mrn][0],
            "procedure": r.procedure,
            "schedule_version": schedules[r.procedure].version,
            "surgery_date": r.surgery_date,
            "attributes": sorted(r.attributes),
            "channel": r.channel,
            "care_team": r.care_team,
            "status": EnrollmentStatus.ACTIVE,
            "created_at": now,
        }
        for r in requests
    ]
    enrollment_ids: list[int] = []
    for chunk in chunks(enrollment_rows, 1000):
        enrollment_ids.extend(
            session.execute(
                insert(Enrollment).returning(Enrollment.id, sort_by_parameter_order=True), chunk
            ).scalars()
        )
    return enrollment_ids


def chunks(items: Sequence[Any], size: int) -> Iterable[Sequence[Any]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


def planned_values(msg: PlannedMessage, now: datetime) -> dict[str, Any]:
    """The outbox columns a planned message fixes, whoever it is for."""
    return {
        "step_id": msg.step_id,
        "occurrence": msg.occurrence,
        "channel": msg.channel,
        "message": msg.message,
        "ask": msg.ask,
        "due_at": msg.due_at,
        "expires_at": msg.expires_at,
        "remind_after_s": int(msg.remind_after.total_seconds()) if msg.remind_after else None,
        "missed_after_s": int(msg.missed_after.total_seconds()) if msg.missed_after else None,
        "followup_at": msg.followup_at,
        "followup_where": msg.followup_where,
        "status": OutboxStatus.PENDING,
        "attempts": 0,
        "urgent": False,
        "created_at": now,
        "updated_at": now,
    }


def outbox_row(msg: PlannedMessage, enrollment_id: int, patient_id: int, now: datetime) -> dict[str, Any]:
    """The outbox row (a ``pending`` insert) of one planned message; enroll and re-plan share it."""
    return stamp(planned_values(msg, now), enrollment_id, patient_id)


def stamp(values: dict[str, Any], enrollment_id: int, patient_id: int) -> dict[str, Any]:
    """``values`` made one enrollment's row: its ids and the key that names the message."""
    return {
        **values,
        "key": f"{enrollment_id}:{values['step_id']}:{values['occurrence']}:{values['channel']}",
        "enrollment_id": enrollment_id,
        "patient_id": patient_id,
    }
