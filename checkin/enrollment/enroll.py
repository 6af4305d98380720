"""Enroll, reschedule and withdraw: the timeline meets the outbox, one transaction each.

Callers pass an open Session and commit it; every function here either applies its whole
change to that session or raises before touching it (validation happens first).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from sqlalchemy.orm import Session

from checkin.core.schedule import CHANNEL_PREFERENCES, KNOWN_ATTRIBUTES, LANGUAGES, PlanInput, Schedule
from checkin.core.schedule.model import FIRST_NAME_MAX
from checkin.core.suggest import unknown
from checkin.core.timeline import plan
from checkin.core.zones import zone_problem
from checkin.enrollment.phones import normalize_phone
from checkin.enrollment.records import (
    insert_enrollments,
    known_patients,
    planned_values,
    stamp,
    upsert_patients,
)
from checkin.enrollment.replan import (
    RescheduleResult,
    active_enrollment,
    replan,
    replan_target,
    stored_plan_input,
)
from checkin.errors import EnrollmentError
from checkin.states import EnrollmentStatus
from checkin.store import audit, consents, outbox
from checkin.store.bulk import insert_outbox_rows
from checkin.store.consents import Provenance


@dataclass(frozen=True)
class EnrollRequest:
    mrn: str
    first_name: str
    phone: str | None
    email: str | None
    procedure: str
    surgery_date: date
    timezone: str
    language: str = "en"
    channel: str = "sms"
    attributes: frozenset[str] = field(default_factory=frozenset)
    care_team: str | None = None


FIELDS = (
    "mrn",
    "first_name",
    "phone",
    "email",
    "procedure",
    "surgery_date",
    "timezone",
    "language",
    "smoker",
    "channel",
    "attributes",
)
_TRUE = {"1", "true", "yes", "y", "x", "si", "sí"}
_FALSE = {"", "0", "false", "no", "n"}


def parse_request(
    raw: Mapping[str, Any],
    *,
    schedules: Mapping[str, Schedule],
    default_region: str,
    default_timezone: str,
) -> EnrollRequest:
    """Turn user-typed fields (CLI options or a CSV row) into a valid request.

    Raises EnrollmentError naming the first bad field, in the order of ``FIELDS``.
    """
    mrn = _required(raw, "mrn", 64)
    # Texts are checked for length with first names up to FIRST_NAME_MAX (checkin.content.lint).
    first_name = _required(raw, "first_name", FIRST_NAME_MAX)
    procedure = _procedure(_text(raw, "procedure"), schedules)
    surgery = _surgery_date(_text(raw, "surgery_date"))
    tz = _timezone(_text(raw, "timezone") or default_timezone)
    language = _one_of(raw, "language", "en", LANGUAGES)
    channel = _one_of(raw, "channel", "sms", CHANNEL_PREFERENCES)
    phone, email = _contact(raw, channel, default_region)
    return EnrollRequest(
        mrn=mrn,
        first_name=first_name,
        phone=phone,
        email=email,
        procedure=procedure,
        surgery_date=surgery,
        timezone=tz,
        language=language,
        channel=channel,
        attributes=frozenset(_smoker(raw.get("smoker")) | _attributes(raw.get("attributes"))),
        care_team=schedules[procedure].care_team,
    )


def _text(raw: Mapping[str, Any], name: str) -> str:
    value = raw.get(name)
    return "" if value is None else str(value).strip()


def _required(raw: Mapping[str, Any], name: str, limit: int) -> str:
    value = _text(raw, name)
    if not value:
        raise EnrollmentError(name, "is required")
    if len(value) > limit:
        raise EnrollmentError(name, f"is longer than {limit} characters")
    return value


def _procedure(procedure: str, schedules: Mapping[str, Schedule]) -> str:
    if procedure not in schedules:
        known = ", ".join(sorted(schedules)) or "none loaded"
        raise EnrollmentError("procedure", f"{procedure!r} is not a schedule (known: {known})")
    return procedure


def _surgery_date(raw_date: str) -> date:
    try:
        return date.fromisoformat(raw_date)
    except ValueError:
        raise EnrollmentError("surgery_date", f"{raw_date!r} is not a date like 2026-03-14") from None


def _timezone(tz: str) -> str:
    problem = zone_problem(tz)
    if problem:
        raise EnrollmentError("timezone", problem)
    return tz


def _one_of(raw: Mapping[str, Any], name: str, default: str, allowed: Iterable[str]) -> str:
    value = (_text(raw, name) or default).lower()
    if value not in allowed:
        raise EnrollmentError(name, f"{value!r} is not one of {', '.join(allowed)}")
    return value


def _contact(raw: Mapping[str, Any], channel: str, default_region: str) -> tuple[str | None, str | None]:
    phone: str | None = None
    if _text(raw, "phone"):
        try:
            phone = normalize_phone(_text(raw, "phone"), default_region)
        except ValueError as e:
            raise EnrollmentError("phone", str(e)) from None
    email = _text(raw, "email") or None
    # Any space or control character (CR/LF above all: header injection) makes it no address.
    if email is not None and (
        "@" not in email or not email.isprintable() or " " in email or len(email) > 254
    ):
        raise EnrollmentError("email", f"{email!r} is not an email address")
    if channel in ("sms", "both") and phone is None:
        raise EnrollmentError("phone", f"is required for channel {channel}")
    if channel in ("email", "both") and email is None:
        raise EnrollmentError("email", f"is required for channel {channel}")
    return phone, email


def _smoker(smoker: Any) -> set[str]:
    if smoker is None or isinstance(smoker, bool):
        return {"smoker"} if smoker else set()
    flag = str(smoker).strip().lower()
    if flag in _TRUE:
        return {"smoker"}
    if flag not in _FALSE:
        raise EnrollmentError("smoker", f"{smoker!r} is not yes or no")
    return set()


def _attributes(extra: Any) -> set[str]:
    names = (
        extra
        if isinstance(extra, (list, tuple, set, frozenset))
        else str(extra or "").replace(";", ",").split(",")
    )
    allowed = KNOWN_ATTRIBUTES - {"has_email"}
    found = set()
    for name in (str(n).strip() for n in names):
        if not name:
            continue
        if name not in allowed:
            raise EnrollmentError("attributes", unknown("attribute", name, allowed))
        found.add(name)
    return found


def plan_input(enrollment_id: int, req: EnrollRequest) -> PlanInput:
    return PlanInput(
        id=enrollment_id,
        surgery_date=req.surgery_date,
        timezone=req.timezone,
        language=req.language,  # type: ignore[arg-type]
        channel=req.channel,  # type: ignore[arg-type]
        attributes=req.attributes,
        has_email=req.email is not None,
        has_phone=req.phone is not None,
    )


@dataclass
class EnrollResult:
    patients: int = 0
    enrollments: int = 0
    planned: int = 0
    enrollment_ids: list[int] = field(default_factory=list)


def enroll_many(
    session: Session,
    requests: Sequence[EnrollRequest],
    *,
    schedules: Mapping[str, Schedule],
    now: datetime,
    actor: str = "system",
    consent: Provenance | Sequence[Provenance] | None = None,
) -> EnrollResult:
    """Enroll every request and plan its timeline into the outbox.

    Each enrolled patient's consent is recorded as granted for the channels they gave a
    contact for (SMS with a phone, email with an address), at ``now``, with ``consent``: one
    provenance for the batch, or one per request in order. None means a caller of this Python
    API (source ``api``, recorded by ``actor``).

    Raises EnrollmentError (field ``mrn``) if an MRN is already enrolled on the same procedure
    or appears twice in ``requests``; nothing is written in that case.
    """
    result = EnrollResult()
    if not requests:
        return result
    each = _provenances(requests, Provenance("api", actor) if consent is None else consent)
    _refuse_twice(requests)
    existing, active = known_patients(session, requests)
    _refuse_active(requests, active)
    result.patients = upsert_patients(session, requests, existing, now)
    result.enrollment_ids = insert_enrollments(session, requests, existing, schedules, now)
    result.enrollments = len(result.enrollment_ids)
    result.planned = _plan_outbox(session, requests, result.enrollment_ids, existing, schedules, now, actor)
    _grant_consent(session, requests, existing, each, now)
    return result


def _provenances(
    requests: Sequence[EnrollRequest], consent: Provenance | Sequence[Provenance]
) -> list[Provenance]:
    each = [consent] * len(requests) if isinstance(consent, Provenance) else list(consent)
    if len(each) != len(requests):
        raise ValueError(f"{len(each)} consent provenance(s) for {len(requests)} request(s)")
    return each


def _grant_consent(
    session: Session,
    requests: Sequence[EnrollRequest],
    existing: dict[str, tuple[int, str]],
    each: Sequence[Provenance],
    now: datetime,
) -> None:
    """Consent rows for each request's channels: granted by whoever enrolled them."""
    consents.record_many(
        session,
        (
            consents.values(existing[req.mrn][0], channel, consents.GRANTED, why, now)
            for req, why in zip(requests, each, strict=True)
            for channel, contact in (("sms", req.phone), ("email", req.email))
            if contact is not None
        ),
    )


def _refuse_twice(requests: Sequence[EnrollRequest]) -> None:
    seen: set[tuple[str, str]] = set()
    for req in requests:
        if (req.mrn, req.procedure) in seen:
            raise EnrollmentError("mrn", f"{req.mrn!r} appears twice for {req.procedure}")
        seen.add((req.mrn, req.procedure))


def _refuse_active(requests: Sequence[EnrollRequest], active: set[tuple[str, str]]) -> None:
    for req in requests:
        if (req.mrn, req.procedure) in active:
            raise EnrollmentError(
                "mrn",
                f"{req.mrn!r} is already enrolled on {req.procedure}; "
                "use `checkin reschedule` or `checkin withdraw` instead",
            )


def _plan_outbox(
    session: Session,
    requests: Sequence[EnrollRequest],
    enrollment_ids: Sequence[int],
    existing: dict[str, tuple[int, str]],
    schedules: Mapping[str, Schedule],
    now: datetime,
    actor: str,
) -> int:
    """Plan each enrollment's timeline into the outbox, audit it; the number of rows planned.

    Patients enrolled together mostly share a surgery date and zone, and the plan does not
    depend on who they are: plan once per distinct input and stamp the ids on."""
    cache: dict[tuple[Any, ...], list[dict[str, Any]]] = {}
    batch: list[dict[str, Any]] = []
    planned_rows = 0
    for req, eid in zip(requests, enrollment_ids, strict=True):
        pin = plan_input(0, req)
        ck = (
            req.procedure,
            pin.surgery_date,
            pin.timezone,
            pin.language,
            pin.channel,
            pin.attributes,
            pin.has_email,
            pin.has_phone,
        )
        planned = cache.get(ck)
        if planned is None:
            planned = cache[ck] = [
                planned_values(m, now) for m in plan(schedules[req.procedure], pin, now=now)
            ]
        pid, ref = existing[req.mrn]
        batch.extend(stamp(values, eid, pid) for values in planned)
        audit.record(
            session,
            at=now,
            actor=actor,
            action="enrollment.created",
            patient_ref=ref,
            subject=f"enrollment:{eid}",
            procedure=req.procedure,
            schedule_version=schedules[req.procedure].version,
            planned=len(planned),
        )
        if len(batch) >= 5000:
            insert_outbox_rows(session, batch)
            planned_rows += len(batch)
            batch = []
    if batch:
        insert_outbox_rows(session, batch)
        planned_rows += len(batch)
    return planned_rows


def enroll(
    session: Session,
    req: EnrollRequest,
    *,
    schedules: Mapping[str, Schedule],
    now: datetime,
    actor: str = "system",
    consent: Provenance | None = None,
) -> EnrollResult:
    return enroll_many(session, [req], schedules=schedules, now=now, actor=actor, consent=consent)


def reschedule(
    session: Session,
    mrn: str,
    surgery_date: date,
    *,
    schedules: Mapping[str, Schedule],
    now: datetime,
    procedure: str | None = None,
    actor: str = "system",
) -> RescheduleResult:
    """Move the surgery date and recompute every message not yet sent.

    Rows keep their keys (see ``checkin.enrollment.replan``): pending rows move, rows no
    longer planned are cancelled, new keys are inserted, sent rows stay as history.
    """
    enrollment, schedule = replan_target(session, mrn, procedure, schedules)
    patient = enrollment.patient
    old_date = enrollment.surgery_date
    enrollment.surgery_date = surgery_date
    result = replan(session, enrollment, schedule, stored_plan_input(session, enrollment), now=now)
    result.old_date, result.procedure = old_date, enrollment.procedure
    audit.record(
        session,
        at=now,
        actor=actor,
        action="enrollment.rescheduled",
        patient_ref=patient.reference,
        subject=f"enrollment:{enrollment.id}",
        old_date=old_date.isoformat(),
        new_date=surgery_date.isoformat(),
        updated=result.updated,
        added=result.added,
        cancelled=result.cancelled,
    )
    return result


def withdraw(
    session: Session,
    mrn: str,
    *,
    now: datetime,
    procedure: str | None = None,
    actor: str = "system",
    reason: str = "withdrawn",
) -> int:
    """End the enrollment and cancel its unsent messages; returns how many were cancelled."""
    enrollment = active_enrollment(session, mrn, procedure)
    enrollment.status, enrollment.withdrawn_at = EnrollmentStatus.WITHDRAWN, now
    cancelled = outbox.cancel_unsent(session, enrollment.id, reason=reason, now=now)
    audit.record(
        session,
        at=now,
        actor=actor,
        action="enrollment.withdrawn",
        patient_ref=enrollment.patient.reference,
        subject=f"enrollment:{enrollment.id}",
        cancelled=cancelled,
    )
    return int(cancelled)
