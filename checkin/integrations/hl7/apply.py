"""Apply one HL7 event to the database through checkin.enrollment, in the caller's transaction.

Each function validates through the same enrollment functions the CLI and CSV use (same
checks, same audit, same re-planning, ``actor="hl7"``) and raises EnrollmentError naming the
request field at fault; ``location_of`` turns that field into the HL7 field an ACK names.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from checkin.core.hl7.mapping import Hl7Mapping
from checkin.core.hl7.message import (
    BookVisit,
    CancelVisit,
    Discharge,
    Enroll,
    Event,
    Merge,
    MoveSurgery,
    Person,
    UpdatePatient,
    Withdraw,
)
from checkin.core.schedule import Schedule
from checkin.enrollment.anchors import book_appointment, cancel_appointment, set_discharge
from checkin.enrollment.enroll import enroll, parse_request, reschedule, withdraw
from checkin.enrollment.phones import normalize_phone, region_problem, region_refused
from checkin.enrollment.replan import replan, stored_plan_input
from checkin.enrollment.sanity import surgery_date_problem
from checkin.errors import EnrollmentError
from checkin.states import EnrollmentStatus
from checkin.store import audit
from checkin.store.consents import Provenance
from checkin.store.models import Enrollment, Patient

ACTOR = "hl7"


@dataclass(frozen=True)
class Site:
    """What the feed needs besides the mapping: ``Settings`` values, passed in."""

    default_region: str
    emergency_number: str
    crisis_line: str
    emergency_regions: frozenset[str] | None


def location_of(field: str, mapping: Hl7Mapping) -> str:
    """The HL7 field an EnrollmentError's field came from."""
    return {
        "mrn": "PID-3",
        "first_name": "PID-5.2",
        "phone": str(mapping.phone),
        "email": str(mapping.email),
        "language": str(mapping.language),
        "procedure": "AIS-3",
        "surgery_date": "AIS-4",
        "at": "AIS-4",
        "date": "PV1-45",
        "kind": "SCH-8",
        "where": "AIL-3",
        "timezone": "MSH-6",
    }.get(field, "PID-3")


def apply(
    session: Session,
    event: Event,
    *,
    mapping: Hl7Mapping,
    schedules: Mapping[str, Schedule],
    site: Site,
    now: datetime,
    consent: Provenance,
) -> str | None:
    """Apply ``event``; ``consent`` says where an enrollment's consent came from (the
    message's sender, control id and type). Returns the MRN it concerned (the caller looks up the patient's
    reference), or None when it concerns no patient of checkin's: an ADT feed carries every
    admission of the hospital, so an A03/A08/A31/A40 for someone checkin does not follow (no
    active enrollment) is acknowledged and changes nothing."""
    if isinstance(event, Discharge | UpdatePatient | Merge) and not _followed(session, event):
        return None
    if isinstance(event, Enroll):
        _enroll(session, event, schedules, site, now, consent)
        return event.person.mrn
    if isinstance(event, MoveSurgery):
        reschedule(
            session,
            event.mrn,
            event.surgery_date,
            schedules=schedules,
            now=now,
            procedure=event.procedure,
            actor=ACTOR,
        )
        return event.mrn
    if isinstance(event, Withdraw):
        withdraw(
            session, event.mrn, now=now, procedure=event.procedure, actor=ACTOR, reason="cancelled in the EHR"
        )
        return event.mrn
    if isinstance(event, BookVisit):
        zone = ZoneInfo(_patient(session, event.mrn).timezone)
        at_local = event.at.astimezone(zone).replace(tzinfo=None)
        book_appointment(
            session,
            event.mrn,
            event.kind,
            at_local,
            schedules=schedules,
            now=now,
            where=event.where,
            source="hl7",
            external_id=event.external_id,
            actor=ACTOR,
        )
        return event.mrn
    if isinstance(event, CancelVisit):
        cancel_appointment(session, event.mrn, event.kind, schedules=schedules, now=now, actor=ACTOR)
        return event.mrn
    if isinstance(event, Discharge):
        set_discharge(session, event.mrn, event.day, schedules=schedules, now=now, actor=ACTOR)
        return event.mrn
    if isinstance(event, UpdatePatient):
        update_patient(session, event.person, schedules=schedules, site=site, now=now)
        return event.person.mrn
    merge(session, event, now=now)
    return event.surviving_mrn


def _followed(session: Session, event: Discharge | UpdatePatient | Merge) -> bool:
    mrn = (
        event.person.mrn
        if isinstance(event, UpdatePatient)
        else event.prior_mrn
        if isinstance(event, Merge)
        else event.mrn
    )
    patient = session.scalar(select(Patient).where(Patient.mrn == mrn))
    return patient is not None and bool(_active(session, patient))


def _patient(session: Session, mrn: str) -> Patient:
    patient = session.scalar(select(Patient).where(Patient.mrn == mrn))
    if patient is None:
        raise EnrollmentError("mrn", f"no patient with MRN {mrn!r}")
    return patient


def _active(session: Session, patient: Patient, procedure: str | None = None) -> list[Enrollment]:
    query = select(Enrollment).where(
        Enrollment.patient_id == patient.id, Enrollment.status == EnrollmentStatus.ACTIVE
    )
    if procedure is not None:
        query = query.where(Enrollment.procedure == procedure)
    return list(session.scalars(query))


def _enroll(
    session: Session,
    event: Enroll,
    schedules: Mapping[str, Schedule],
    site: Site,
    now: datetime,
    consent: Provenance,
) -> None:
    p = event.person
    existing = session.scalar(select(Patient).where(Patient.mrn == p.mrn))
    if existing is not None and _active(session, existing, event.procedure):
        # Booked again (a new booking id for the same surgery): the date is what it says now.
        reschedule(
            session,
            p.mrn,
            event.surgery_date,
            schedules=schedules,
            now=now,
            procedure=event.procedure,
            actor=ACTOR,
        )
        return
    channel = "sms" if p.phone or not p.email else "email"
    req = parse_request(
        {
            "mrn": p.mrn,
            "first_name": p.first_name,
            "phone": p.phone,
            "email": p.email,
            "procedure": event.procedure,
            "surgery_date": event.surgery_date.isoformat(),
            "timezone": event.timezone,
            "language": p.language or "en",
            "smoker": bool(p.smoker),
            "channel": channel,
        },
        schedules=schedules,
        default_region=site.default_region,
        default_timezone=event.timezone,
    )
    _check_region(req.phone, site)
    odd = surgery_date_problem(schedules[req.procedure], req, now=now)
    if odd:
        raise EnrollmentError("surgery_date", odd)
    enroll(session, req, schedules=schedules, now=now, actor=ACTOR, consent=consent)


def _check_region(phone: str | None, site: Site) -> None:
    refused = region_refused(phone, site.emergency_regions) if phone else None
    if refused is not None:
        raise EnrollmentError(
            "phone", f"{phone} {region_problem(refused, site.emergency_number, site.crisis_line)}"
        )


def update_patient(
    session: Session, person: Person, *, schedules: Mapping[str, Schedule], site: Site, now: datetime
) -> None:
    """Apply what an A08/A31 sends (fields it leaves empty stay as they are), then re-plan the
    patient's active timelines (a new email or phone can change which channel a step uses)."""
    patient = _patient(session, person.mrn)
    had = (patient.phone is None, patient.email is None)
    changed: list[str] = []
    if person.phone:
        try:
            phone = normalize_phone(person.phone, site.default_region)
        except ValueError as e:
            raise EnrollmentError("phone", str(e)) from None
        _check_region(phone, site)
        if phone != patient.phone:
            patient.phone = phone
            changed.append("phone")
    if person.email and person.email != patient.email:
        if (
            "@" not in person.email
            or not person.email.isprintable()
            or " " in person.email
            or len(person.email) > 254
        ):
            raise EnrollmentError("email", f"{person.email!r} is not an email address")
        patient.email = person.email
        changed.append("email")
    if person.first_name and person.first_name != patient.first_name:
        if len(person.first_name) > 100:
            raise EnrollmentError("first_name", "is longer than 100 characters")
        patient.first_name = person.first_name
        changed.append("first_name")
    if person.language and person.language != patient.language:
        patient.language = person.language
        changed.append("language")
    if not changed:
        return
    session.flush()
    moved = 0
    # Only having a phone or an email changes which messages are planned (and on which channel);
    # a new number or name is read at send time.
    if (patient.phone is None) != had[0] or (patient.email is None) != had[1]:
        for enrollment in _active(session, patient):
            schedule = schedules.get(enrollment.procedure)
            if schedule is not None:
                pin = stored_plan_input(session, enrollment)
                moved += len(replan(session, enrollment, schedule, pin, now=now).moves)
    audit.record(
        session,
        at=now,
        actor=ACTOR,
        action="patient.updated",
        patient_ref=patient.reference,
        subject=f"patient:{patient.id}",
        fields=changed,
        moved=moved,
    )


def merge(session: Session, event: Merge, *, now: datetime) -> None:
    """A40: the prior MRN's patient takes the surviving MRN. If both MRNs have patients here,
    merging their timelines needs a person: it is refused, naming both."""
    prior = session.scalar(select(Patient).where(Patient.mrn == event.prior_mrn))
    if prior is None:
        raise EnrollmentError("mrn", f"no patient with the prior MRN {event.prior_mrn!r} (MRG-1)")
    surviving = session.scalar(select(Patient).where(Patient.mrn == event.surviving_mrn))
    if surviving is not None:
        raise EnrollmentError(
            "mrn",
            f"MRNs {event.surviving_mrn!r} and {event.prior_mrn!r} are both patients here "
            f"({surviving.reference}, {prior.reference}); merge their timelines by hand",
        )
    prior.mrn = event.surviving_mrn
    audit.record(
        session,
        at=now,
        actor=ACTOR,
        action="patient.merged",
        patient_ref=prior.reference,
        subject=f"patient:{prior.id}",
    )
