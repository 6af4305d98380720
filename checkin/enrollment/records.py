"""The patient and enrollment rows of a batch enrollment, written in chunks (one INSERT per
thousand rows, not one per patient: a 5,000-row CSV import is one short transaction)."""

from __future__ import annotations

import secrets
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import insert, select, update
from sqlalchemy.orm import Session

from checkin.core.schedule import Schedule
from checkin.states import EnrollmentStatus, PhoneStatus
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
