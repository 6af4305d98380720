"""Open an alert or join the patient's unresolved one, and say whether someone must hear now.

Alert kinds: ``red_flag`` (from an assessment; severity emergency/urgent, or ``watch`` when a
red-flag topic was mentioned but triage could not decide, a watch-level flag fired, or triage
asked for a person to read the reply), ``contact_problem`` (the care team must sort out how to
reach the patient: shared phone, opt-out request to review, a number or address the provider
refused; severity ``watch`` unless the text itself was alarming), ``missed_checkin`` (a
check-in question went unanswered past its ``missed_after``; ``watch``), ``waiting`` (a reply
or watch-level alert nobody handled in time; ``urgent``, see ``checkin.alerts.inbox``). ``flags`` holds flag
codes, plus ``ambiguous:<topic>`` for undecided topics, ``review:<reason>`` when triage asks for
a person, and the reason code for contact problems and missed check-ins.

Alerts never go quiet (ADR 0012). What a join does, for an urgent/emergency red flag:

- **severity rose**, or the alert was **acknowledged**: a new round. The alert is open again
  (needs acknowledgement), its ladder restarts at level 0 due now and ``escalation_round`` goes
  up by one, so the round's outbox keys are new and each round notifies exactly once.
- the alert is **open** and the reply brings a flag the alert did **not have yet** ("fever" on
  an alert for drainage): *news*. ``escalation_round`` goes up so the news has outbox keys of
  its own and ``news_at`` is set: the escalation sweep tells step 0's people (the assignee, or
  the team) at once. The ladder keeps its level and clock, so a patient sending new flags cannot
  hold the page to on-call back.
- the same flags again on an open alert: joined silently (storm suppression: the ladder is
  running and repeats until acknowledged).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from checkin.states import AlertKind, AlertStatus
from checkin.store import audit
from checkin.store.models import Alert, Enrollment, InboundMessage, OutboxMessage, Patient

if TYPE_CHECKING:
    from checkin.core.triage import Assessment

UNRESOLVED = (AlertStatus.OPEN, AlertStatus.ACKNOWLEDGED)
MAX_NOTE = 2000
# Built once (statement construction is a measurable part of a webhook's time).
_UNRESOLVED = (
    select(Alert)
    .where(
        Alert.patient_id == bindparam("patient_id"),
        Alert.kind == bindparam("kind"),
        Alert.status.in_(UNRESOLVED),
    )
    .order_by(Alert.opened_at.desc(), Alert.id.desc())
    .limit(1)
)


class PatientRef(Protocol):
    """What an alert needs of its patient: an ORM ``Patient`` or the inbound lookup's ``Sender``."""

    @property
    def id(self) -> int: ...

    @property
    def reference(self) -> str: ...


class Identified(Protocol):
    """An enrollment as an alert needs it: its id (an ORM ``Enrollment`` or a reference)."""

    @property
    def id(self) -> int: ...


_RANK = {"none": 0, "low": 0, "watch": 1, "urgent": 2, "emergency": 3}


@dataclass(frozen=True)
class AlertChange:
    """What happened to the patient's alert: ``opened`` (new alert) or joined an unresolved one;
    ``renotify`` is True when someone must be told now: a new alert, a new round (the ladder
    restarted) or ``news`` (a new flag on an open alert: step 0's people are told, the ladder
    keeps its clock)."""

    alert: Alert
    opened: bool
    renotify: bool
    news: bool = False


def rank(severity: str) -> int:
    return _RANK.get(severity, 0)


def alert_severity(assessment: Assessment) -> str | None:
    """The alert severity an assessment calls for, or None for no alert: urgent/emergency as
    assessed; ``watch`` (low priority, listed in the digest) when a red-flag topic is ambiguous,
    a watch-level flag fired (``fusion_concern``: the care team must see it), or triage says a
    person should read the reply (``needs_review``: never silently "none"); nothing for plain
    watch items such as pain 6."""
    severity = str(assessment.severity)
    if rank(severity) >= rank("urgent"):
        return severity
    if assessment.ambiguous or assessment.flags or assessment.needs_review:
        return "watch"
    return None


def alert_flags(assessment: Assessment) -> list[str]:
    """Flag codes, ``ambiguous:<topic>`` for undecided topics, ``review:<reason>`` when triage
    asks for a person."""
    out = {str(f) for f in assessment.flags} | {f"ambiguous:{t}" for t in assessment.ambiguous}
    if assessment.needs_review:
        out.add(f"review:{assessment.review_reason}")
    return sorted(out)


def unresolved(session: Session, patient_id: int, kind: str) -> Alert | None:
    """The patient's unresolved alert of ``kind`` (the most recent, should there be several)."""
    return session.scalars(_UNRESOLVED, {"patient_id": patient_id, "kind": kind}).first()


def _what_a_join_means(alert: Alert, kind: str, severity: str, flags: list[str]) -> tuple[bool, bool, bool]:
    """(severity rose, new round, news) for ``flags`` at ``severity`` joining ``alert``."""
    rose = rank(severity) > rank(alert.severity)
    paging = kind in (AlertKind.RED_FLAG, AlertKind.WAITING) and rank(severity) >= rank("urgent")
    # A red flag on an acknowledged alert is news to whoever acknowledged it (the patient is told
    # a nurse will call): the ladder starts again. On an open alert only a flag it lacked is news;
    # the same flags again are the worried texts that storm suppression keeps to one page.
    new_round = rose or (paging and alert.status == AlertStatus.ACKNOWLEDGED)
    # Red-flag codes only: an undecided topic (``ambiguous:``) is not a new red flag.
    fresh = {f for f in flags if ":" not in f} - set(alert.flags or [])
    return rose, new_round, not new_round and paging and bool(fresh)


def raise_or_join(
    session: Session,
    *,
    patient: PatientRef,
    enrollment: Identified | None,
    kind: str,
    severity: str,
    flags: list[str],
    inbound: InboundMessage | None,
    now: datetime,
    reason: str,
    outbox_id: int | None = None,
    audit_rows: list[dict[str, Any]] | None = None,
) -> AlertChange:
    """Open an alert of ``kind`` for ``patient`` or join the unresolved one (union of flags,
    severity = max). Audited either way: the audit row is added to the session, or appended to
    ``audit_rows`` (``AuditEvent`` columns) for a caller that writes its rows in one statement
    with its own (the inbound webhook: a round trip and an ORM flush less per alert). A new alert, or a join that starts a new round (see
    the module docstring), is left due for escalation step 0 at ``now`` (status ``open``, level
    0); a join with ``news`` keeps the ladder where it is."""
    alert = unresolved(session, patient.id, kind)
    if alert is None:
        alert = Alert(
            patient_id=patient.id,
            enrollment_id=enrollment.id if enrollment else None,
            kind=kind,
            severity=severity,
            flags=sorted(set(flags)),
            status=AlertStatus.OPEN,
            inbound_id=inbound.id if inbound else None,
            escalation_level=0,
            escalation_round=0,
            next_escalation_at=now,
            opened_at=now,
            updated_at=now,
            outbox_id=outbox_id,
        )
        session.add(alert)
        session.flush()
        _audit(
            session,
            audit_rows,
            at=now,
            actor="system",
            action="alert.opened",
            patient_ref=patient.reference,
            subject=f"alert:{alert.id}",
            kind=kind,
            severity=severity,
            flags=alert.flags,
            reason=reason,
            inbound_id=alert.inbound_id,
        )
        return AlertChange(alert, opened=True, renotify=True)
    rose, new_round, news = _what_a_join_means(alert, kind, severity, flags)
    merged = sorted(set(alert.flags or []) | set(flags))
    was = alert.status
    if rose:
        alert.severity = severity
    if new_round:
        # An acknowledged alert is open again: whoever acknowledged it did so for what the
        # patient had said before (who it was stays in the audit log).
        alert.status, alert.escalation_level, alert.next_escalation_at = AlertStatus.OPEN, 0, now
        alert.acknowledged_at = alert.acknowledged_by = None
    if new_round or news:
        # A round of its own gives the news outbox keys no earlier message has.
        alert.escalation_round = (alert.escalation_round or 0) + 1
        # Step 0 of a new round tells the same people the news would.
        alert.news_at = now if news else None
    # Assign a new list: SQLAlchemy does not see in-place changes to a JSON column.
    alert.flags = merged
    alert.updated_at = now
    _audit(
        session,
        audit_rows,
        at=now,
        actor="system",
        action="alert.joined",
        patient_ref=patient.reference,
        subject=f"alert:{alert.id}",
        kind=kind,
        severity=alert.severity,
        flags=merged,
        severity_rose=rose,
        new_round=new_round,
        news=news,
        round=alert.escalation_round,
        was_status=was,
        reason=reason,
        inbound_id=inbound.id if inbound else None,
    )
    return AlertChange(alert, opened=False, renotify=new_round or news, news=news)


def _audit(
    session: Session,
    rows: list[dict[str, Any]] | None,
    *,
    at: datetime,
    actor: str,
    action: str,
    patient_ref: str,
    subject: str,
    **detail: Any,
) -> None:
    if rows is None:
        audit.record(
            session, at=at, actor=actor, action=action, patient_ref=patient_ref, subject=subject, **detail
        )
        return
    rows.append(
        audit.row(at=at, actor=actor, action=action, patient_ref=patient_ref, subject=subject, detail=detail)
    )


def raise_for_assessment(
    session: Session,
    *,
    patient: PatientRef,
    enrollment: Identified | None,
    inbound: InboundMessage,
    assessment: Assessment,
    now: datetime,
    audit_rows: list[dict[str, Any]] | None = None,
) -> AlertChange | None:
    """Open or join the patient's ``red_flag`` alert for an urgent/emergency assessment, or a
    ``watch`` one for an ambiguous red-flag topic; None when the assessment needs no alert."""
    severity = alert_severity(assessment)
    if severity is None:
        return None
    return raise_or_join(
        session,
        patient=patient,
        enrollment=enrollment,
        kind=AlertKind.RED_FLAG,
        severity=severity,
        flags=alert_flags(assessment),
        inbound=inbound,
        now=now,
        reason="assessment",
        audit_rows=audit_rows,
    )


def open_contact_problem(
    session: Session,
    *,
    patient: PatientRef,
    reason: str,
    now: datetime,
    inbound: InboundMessage | None = None,
    severity: str = "watch",
) -> AlertChange:
    """Ask the care team to sort out how to reach ``patient`` (``reason``: a short code such as
    ``shared_phone`` or ``optout_candidate``). Deduplicated: while one is unresolved, it is
    joined (the reason added to its flags). ``severity`` stays ``watch`` unless the text that
    caused it was itself alarming."""
    return raise_or_join(
        session,
        patient=patient,
        enrollment=None,
        kind=AlertKind.CONTACT_PROBLEM,
        severity=severity,
        flags=[reason],
        inbound=inbound,
        now=now,
        reason=reason,
    )


def open_contact_problem_for(
    session: Session,
    patient_id: int,
    enrollment_id: int | None,
    *,
    now: datetime,
    reason: str,
    detail: str | None = None,
) -> AlertChange | None:
    """``open_contact_problem`` for callers that hold only ids (status callbacks, the
    dispatcher): ``reason`` is a short code, ``detail`` free text for the audit log (no phone
    number, no message text). None if the patient does not exist."""
    patient = session.get(Patient, patient_id)
    if patient is None:
        return None
    enrollment = session.get(Enrollment, enrollment_id) if enrollment_id is not None else None
    return raise_or_join(
        session,
        patient=patient,
        enrollment=enrollment,
        kind=AlertKind.CONTACT_PROBLEM,
        severity="watch",
        flags=[reason],
        inbound=None,
        now=now,
        reason=detail or reason,
    )


def open_waiting(
    session: Session,
    *,
    patient: Patient,
    waiting: list[str],
    inbound: InboundMessage | None,
    now: datetime,
) -> AlertChange:
    """An ``urgent`` alert for items that waited too long for a person (``waiting``: ``reply``
    or the kinds of watch-level alerts; ``checkin.alerts.inbox``). Joins the patient's
    unresolved one; one that was acknowledged starts a new round (something new waits)."""
    return raise_or_join(
        session,
        patient=patient,
        enrollment=None,
        kind=AlertKind.WAITING,
        severity="urgent",
        flags=[f"waiting:{w}" for w in waiting],
        inbound=inbound,
        now=now,
        reason="waited too long",
    )


def open_missed_checkin(
    session: Session,
    *,
    patient: Patient,
    enrollment: Enrollment | None,
    question: OutboxMessage,
    now: datetime,
) -> AlertChange:
    """A ``watch`` alert for a check-in question left unanswered (``question`` is the sent
    ``ask`` row). Joins the patient's unresolved missed-check-in alert, so a patient who stops
    answering is one alert, not one per question. The caller marks ``question.missed_at``."""
    return raise_or_join(
        session,
        patient=patient,
        enrollment=enrollment,
        kind=AlertKind.MISSED_CHECKIN,
        severity="watch",
        flags=[f"missed:{question.ask or 'checkin'}"],
        inbound=None,
        now=now,
        reason=AlertKind.MISSED_CHECKIN,
        outbox_id=question.id,
    )
