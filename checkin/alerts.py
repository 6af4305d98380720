"""Care-team alerts: the minimal core that inbound processing needs.

An alert is *unresolved* while its status is ``open`` or ``acknowledged``. Per patient and kind
there is at most one unresolved alert: a later red flag joins it instead of opening a second
(storm suppression: five worried texts in ten minutes are one alert, not five pages). The
caller (the notifier, added later) re-notifies only when ``AlertChange.renotify`` says the
severity rose, so a nurse is paged again for "now it's chest pain" but not for "still leaking".

Functions add to the caller's session and never commit. On PostgreSQL two replies from the same
patient may be processed at once; ``checkin.inbound`` locks the patient row first, so the
find-or-open below is not racy (on SQLite the write transaction already serializes).

Alert kinds: ``red_flag`` (from an assessment; severity emergency/urgent, or ``watch`` when a
red-flag topic was mentioned but triage could not decide), ``contact_problem`` (the care team
must sort out how to reach the patient: shared phone, opt-out request to review; low priority,
severity ``watch`` unless the text itself was alarming). ``flags`` holds flag codes, plus
``ambiguous:<topic>`` for undecided topics and the reason code for contact problems.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from checkin import audit
from checkin.models import Alert, Enrollment, InboundMessage, Patient

if TYPE_CHECKING:
    from checkin.triage import Assessment

UNRESOLVED = ("open", "acknowledged")
RED_FLAG = "red_flag"
CONTACT_PROBLEM = "contact_problem"
# Built once (statement construction is a measurable part of a webhook's time).
_UNRESOLVED = (
    select(Alert)
    .where(Alert.patient_id == bindparam("patient_id"), Alert.kind == bindparam("kind"), Alert.status.in_(UNRESOLVED))
    .order_by(Alert.opened_at.desc(), Alert.id.desc())
    .limit(1)
)
_RANK = {"none": 0, "low": 0, "watch": 1, "urgent": 2, "emergency": 3}


@dataclass(frozen=True)
class AlertChange:
    """What happened to the patient's alert: ``opened`` (new alert) or joined an unresolved one;
    ``renotify`` is True when a new alert opened or the joined alert's severity rose."""

    alert: Alert
    opened: bool
    renotify: bool


def rank(severity: str) -> int:
    return _RANK.get(severity, 0)


def alert_severity(assessment: Assessment) -> str | None:
    """The alert severity an assessment calls for, or None for no alert: urgent/emergency as
    assessed; ``watch`` when a red-flag topic is ambiguous; nothing for plain watch items."""
    severity = str(assessment.severity)
    if rank(severity) >= rank("urgent"):
        return severity
    if assessment.ambiguous:
        return "watch"
    return None


def alert_flags(assessment: Assessment) -> list[str]:
    return sorted({str(f) for f in assessment.flags} | {f"ambiguous:{t}" for t in assessment.ambiguous})


def unresolved(session: Session, patient_id: int, kind: str) -> Alert | None:
    """The patient's unresolved alert of ``kind`` (the most recent, should there be several)."""
    return session.scalars(_UNRESOLVED, {"patient_id": patient_id, "kind": kind}).first()


def raise_or_join(
    session: Session, *, patient: Patient, enrollment: Enrollment | None, kind: str, severity: str,
    flags: list[str], inbound: InboundMessage | None, now: datetime, reason: str,
) -> AlertChange:
    """Open an alert of ``kind`` for ``patient`` or join the unresolved one (union of flags,
    severity = max). Audited either way."""
    alert = unresolved(session, patient.id, kind)
    if alert is None:
        alert = Alert(
            patient_id=patient.id, enrollment_id=enrollment.id if enrollment else None, kind=kind,
            severity=severity, flags=sorted(set(flags)), status="open",
            inbound_id=inbound.id if inbound else None, escalation_level=0, opened_at=now, updated_at=now,
        )
        session.add(alert)
        session.flush()
        audit.record(session, at=now, actor="system", action="alert.opened", patient_ref=patient.reference,
                     subject=f"alert:{alert.id}", kind=kind, severity=severity, flags=alert.flags,
                     reason=reason, inbound_id=alert.inbound_id)
        return AlertChange(alert, opened=True, renotify=True)
    rose = rank(severity) > rank(alert.severity)
    merged = sorted(set(alert.flags or []) | set(flags))
    if rose:
        alert.severity = severity
    # Assign a new list: SQLAlchemy does not see in-place changes to a JSON column.
    alert.flags = merged
    alert.updated_at = now
    audit.record(session, at=now, actor="system", action="alert.joined", patient_ref=patient.reference,
                 subject=f"alert:{alert.id}", kind=kind, severity=alert.severity, flags=merged,
                 severity_rose=rose, reason=reason, inbound_id=inbound.id if inbound else None)
    return AlertChange(alert, opened=False, renotify=rose)


def raise_for_assessment(
    session: Session, *, patient: Patient, enrollment: Enrollment | None, inbound: InboundMessage,
    assessment: Assessment, now: datetime,
) -> AlertChange | None:
    """Open or join the patient's ``red_flag`` alert for an urgent/emergency assessment, or a
    ``watch`` one for an ambiguous red-flag topic; None when the assessment needs no alert."""
    severity = alert_severity(assessment)
    if severity is None:
        return None
    return raise_or_join(
        session, patient=patient, enrollment=enrollment, kind=RED_FLAG, severity=severity,
        flags=alert_flags(assessment), inbound=inbound, now=now, reason="assessment",
    )


def open_contact_problem(
    session: Session, *, patient: Patient, reason: str, now: datetime,
    inbound: InboundMessage | None = None, severity: str = "watch",
) -> AlertChange:
    """Ask the care team to sort out how to reach ``patient`` (``reason``: a short code such as
    ``shared_phone`` or ``optout_candidate``). Deduplicated: while one is unresolved, it is
    joined (the reason added to its flags). ``severity`` stays ``watch`` unless the text that
    caused it was itself alarming."""
    return raise_or_join(
        session, patient=patient, enrollment=None, kind=CONTACT_PROBLEM, severity=severity,
        flags=[reason], inbound=inbound, now=now, reason=reason,
    )
