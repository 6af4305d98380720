"""Checks that catch a clerk's likely mistakes before a patient is enrolled: a surgery date in
the past or far ahead, and a phone number another enrolled patient already has.

Neither is refused outright (a late enrollment after surgery is sometimes right); the CLI asks
for ``--force`` on a suspicious date and says what will and will not be sent, and warns about a
shared phone, whose replies cannot be matched to one patient and go to the care team instead.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from checkin.core.schedule import Schedule
from checkin.core.schedule.model import PlannedMessage
from checkin.core.timeline import plan
from checkin.enrollment.enroll import EnrollRequest, plan_input
from checkin.states import EnrollmentStatus
from checkin.store.models import Enrollment, Patient

MAX_DAYS_AHEAD = 365
_SHOWN = 5  # step names listed before "…"


def surgery_date_problem(schedule: Schedule, req: EnrollRequest, *, now: datetime) -> str | None:
    """None when the surgery date is today or within a year ahead (patient's zone); else a
    sentence (no final stop) saying what is odd and what would and would not be sent."""
    today = now.astimezone(ZoneInfo(req.timezone)).date()
    days = (req.surgery_date - today).days
    if 0 <= days <= MAX_DAYS_AHEAD:
        return None
    pin = plan_input(0, req)
    ahead = plan(schedule, pin, now=now)
    if days > MAX_DAYS_AHEAD:
        when = (
            f"the first message ({ahead[0].step_id}) would go on {_local_day(ahead[0])}"
            if ahead
            else "nothing would be sent"
        )
        return f"surgery date {req.surgery_date} is {days} days ahead, more than a year: {when}"
    start = datetime.combine(req.surgery_date - timedelta(days=3650), time(), UTC)
    whole = plan(schedule, pin, now=start)
    planned = {m.key for m in ahead}
    missed = [m for m in whole if m.key not in planned]
    will = (
        f"{len(ahead)} of {len(whole)} message(s) would still be sent, the next {ahead[0].step_id} "
        f"on {_local_day(ahead[0])}"
        if ahead
        else f"none of its {len(whole)} message(s) would be sent"
    )
    wont = f"; {len(missed)} already past would not ({_names(missed)})" if missed else ""
    return f"surgery date {req.surgery_date} is {-days} day(s) in the past: {will}{wont}"


def shared_phone(session: Session, phone: str | None, mrn: str) -> list[str]:
    """References of other patients with an active enrollment on ``phone``."""
    if not phone:
        return []
    return sorted({ref for other, ref in phone_holders(session, {phone}).get(phone, ()) if other != mrn})


def phone_holders(session: Session, phones: set[str]) -> dict[str, list[tuple[str, str]]]:
    """phone -> (MRN, reference) of each patient with an active enrollment on it."""
    held: dict[str, list[tuple[str, str]]] = {}
    listed = sorted(phones)
    for i in range(0, len(listed), 500):
        for phone, mrn, ref in session.execute(
            select(Patient.phone, Patient.mrn, Patient.reference)
            .join(Enrollment, Enrollment.patient_id == Patient.id)
            .where(Patient.phone.in_(listed[i : i + 500]), Enrollment.status == EnrollmentStatus.ACTIVE)
            .distinct()
        ):
            held.setdefault(phone or "", []).append((mrn, ref))
    return held


def _local_day(m: PlannedMessage) -> str:
    return m.local_due.date().isoformat()


def _names(messages: Sequence[PlannedMessage]) -> str:
    names = list(dict.fromkeys(m.step_id for m in messages))
    return ", ".join(names[:_SHOWN]) + (", …" if len(names) > _SHOWN else "")
