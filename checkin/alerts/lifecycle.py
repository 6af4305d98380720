"""Care-team alerts: the minimal core that inbound processing needs.

An alert is *unresolved* while its status is ``open`` or ``acknowledged``. Per patient and kind
there is at most one unresolved alert: a later red flag joins it instead of opening a second
(storm suppression: five worried texts in ten minutes are one alert, not five pages). The
caller (the notifier, added later) re-notifies only when ``AlertChange.renotify`` says the
severity rose, so a nurse is paged again for "now it's chest pain" but not for "still leaking".

Functions add to the caller's session and never commit. On PostgreSQL two replies from the same
patient may be processed at once; ``checkin.inbound.process`` locks the patient row first, so the
find-or-open below is not racy (on SQLite the write transaction already serializes).

Alert kinds: ``red_flag`` (from an assessment; severity emergency/urgent, or ``watch`` when a
red-flag topic was mentioned but triage could not decide, a watch-level flag fired, or triage
asked for a person to read the reply), ``contact_problem`` (the care team
must sort out how to reach the patient: shared phone, opt-out request to review, a number or
address the provider refused; low priority, severity ``watch`` unless the text itself was
alarming), ``missed_checkin`` (a check-in question went unanswered past its ``missed_after``;
``watch``). ``flags`` holds flag codes, plus ``ambiguous:<topic>`` for undecided topics and the
reason code for contact problems and missed check-ins.

Escalation state (read and advanced by ``checkin.alerts.notify.escalate``): ``escalation_level`` is how
many steps of the team's ladder for the alert's severity have been issued, and
``next_escalation_at`` when the next one is due (None: ladder done, or the alert is no longer
open). Opening an alert, or a severity rise (which also re-opens an acknowledged alert: "now it's
chest pain" must page someone again), sets level 0 due *now*: the caller issues step 0 in the same
transaction (``notify.alert_changed``); if a caller cannot (the delivery callback has no
renderer), the escalation sweep issues it on its next tick.

Alerts never go quiet. A new urgent/emergency red flag joining an *acknowledged* alert starts
a new notification round: the alert is open again (needs acknowledgement), its ladder restarts
at level 0 and ``escalation_round`` goes up by one, so the round's outbox keys are new and each
round notifies exactly once (step 0 goes to the assignee, if any, instead of the whole team). A
severity rise also starts a new round. Any other join of an *open* alert is silent (storm
suppression): its ladder is running and, for urgent/emergency, repeats until acknowledged.

Staff actions: ``acknowledge`` (idempotent; stops escalation) and ``resolve`` (needs a note),
each audited with the nurse's email as the actor.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import bindparam, or_, select, update
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from checkin.states import AlertKind, AlertStatus
from checkin.store import audit, outbox
from checkin.store.db import rowcount
from checkin.store.models import (
    Alert,
    Enrollment,
    InboundMessage,
    OutboxMessage,
    Patient,
)

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
_RANK = {"none": 0, "low": 0, "watch": 1, "urgent": 2, "emergency": 3}


@dataclass(frozen=True)
class AlertChange:
    """What happened to the patient's alert: ``opened`` (new alert) or joined an unresolved one;
    ``renotify`` is True when a new alert opened or the join started a new round (severity
    rose, or an urgent/emergency red flag joined an acknowledged alert)."""

    alert: Alert
    opened: bool
    renotify: bool


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


def raise_or_join(
    session: Session,
    *,
    patient: Patient,
    enrollment: Enrollment | None,
    kind: str,
    severity: str,
    flags: list[str],
    inbound: InboundMessage | None,
    now: datetime,
    reason: str,
    outbox_id: int | None = None,
) -> AlertChange:
    """Open an alert of ``kind`` for ``patient`` or join the unresolved one (union of flags,
    severity = max). Audited either way. A new alert, or a joined one whose severity rose, is
    left due for escalation step 0 at ``now`` (status ``open``, level 0)."""
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
        audit.record(
            session,
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
    rose = rank(severity) > rank(alert.severity)
    merged = sorted(set(alert.flags or []) | set(flags))
    was = alert.status
    # A red flag on an acknowledged alert is news to whoever acknowledged it (the patient is told
    # a nurse will call). On an open alert it is not: its ladder is still paging, and the worried
    # texts in a row are what storm suppression keeps to one page.
    again = (
        kind == AlertKind.RED_FLAG and rank(severity) >= rank("urgent") and was == AlertStatus.ACKNOWLEDGED
    )
    new_round = rose or again
    if rose:
        alert.severity = severity
    if new_round:
        # The ladder restarts as a new round; an acknowledged alert is open again, since whoever
        # acknowledged it did so for what the patient had said before.
        alert.status, alert.escalation_level, alert.next_escalation_at = AlertStatus.OPEN, 0, now
        alert.escalation_round = (alert.escalation_round or 0) + 1
        # It needs acknowledging again; who acknowledged before stays in the audit log.
        alert.acknowledged_at = alert.acknowledged_by = None
    # Assign a new list: SQLAlchemy does not see in-place changes to a JSON column.
    alert.flags = merged
    alert.updated_at = now
    audit.record(
        session,
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
        round=alert.escalation_round,
        was_status=was,
        reason=reason,
        inbound_id=inbound.id if inbound else None,
    )
    return AlertChange(alert, opened=False, renotify=new_round)


def raise_for_assessment(
    session: Session,
    *,
    patient: Patient,
    enrollment: Enrollment | None,
    inbound: InboundMessage,
    assessment: Assessment,
    now: datetime,
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
    )


def open_contact_problem(
    session: Session,
    *,
    patient: Patient,
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


@dataclass(frozen=True)
class StaffAction:
    """The alert after a staff action; ``changed`` is False when it had already been done
    (a second click, a second nurse): repeating an action is harmless, never an error."""

    alert: Alert
    changed: bool


def _cancel_pending_notifications(session: Session, alert_id: int, now: datetime, why: str) -> int:
    # Escalation messages queued but not yet claimed are pointless once someone has it in hand.
    return outbox.cancel_alert_notifications(session, alert_id, now=now, why=why)


def _reference(session: Session, alert: Alert) -> str | None:
    return session.scalar(select(Patient.reference).where(Patient.id == alert.patient_id))


def acknowledge(session: Session, alert_id: int, *, by: str, now: datetime) -> StaffAction | None:
    """Acknowledge an open alert: stops its escalation (no further step is issued, queued
    escalation messages not yet claimed are cancelled). Idempotent: acknowledging an
    acknowledged or resolved alert changes nothing but is audited. None if no such alert.
    A compare-and-set on ``status = 'open'``, so it cannot interleave with an escalation step
    (``notify.escalate`` sets the level under ``status = 'open'`` too)."""
    return _transition(
        session,
        alert_id,
        from_statuses=(AlertStatus.OPEN,),
        by=by,
        now=now,
        values={"status": AlertStatus.ACKNOWLEDGED, "acknowledged_at": now, "acknowledged_by": by},
        actions=("alert.acknowledged", "alert.ack_repeated"),
        why="alert acknowledged",
        detail=lambda a: {"status": a.status, "escalation_level": a.escalation_level},
    )


def resolve(session: Session, alert_id: int, *, by: str, note: str, now: datetime) -> StaffAction | None:
    """Resolve an unresolved alert with a short note (required: ``ValueError`` if blank; cut
    at ``MAX_NOTE``). Stops escalation like an acknowledgement. Resolving a resolved alert
    changes nothing (audited). None if no such alert."""
    note = note.strip()
    if not note:
        raise ValueError("a resolution note is required")
    note = note[:MAX_NOTE]
    # The note may hold clinical detail: it lives on the alert, the audit row says only that one exists.
    return _transition(
        session,
        alert_id,
        from_statuses=tuple(UNRESOLVED),
        by=by,
        now=now,
        values={
            "status": AlertStatus.RESOLVED,
            "resolved_at": now,
            "resolved_by": by,
            "resolution_note": note,
        },
        actions=("alert.resolved", "alert.resolve_repeated"),
        why="alert resolved",
        detail=lambda a: {"note_chars": len(note)},
    )


def take_step(
    session: Session,
    alert: Alert,
    level: int,
    *,
    next_at: datetime | None,
    now: datetime,
    issued: int | None = None,
) -> bool:
    """Escalate an open ``alert`` from ``level`` to the one after ``issued`` (default
    ``level``; larger when overdue repeats are skipped), due again at ``next_at``: a
    compare-and-set on status, level, severity and round, so of two workers (or a worker and
    a nurse acknowledging, or a new red flag restarting the round) exactly one wins. False if
    this caller lost."""
    new_level = (level if issued is None else issued) + 1
    won = rowcount(
        session.execute(
            update(Alert)
            .where(
                Alert.id == alert.id,
                Alert.status == AlertStatus.OPEN,
                Alert.escalation_level == level,
                Alert.severity == alert.severity,
                Alert.escalation_round == alert.escalation_round,
            )
            .values(escalation_level=new_level, next_escalation_at=next_at, updated_at=now)
            .execution_options(synchronize_session=False)
        )
    )
    if won:
        set_committed_value(alert, "escalation_level", new_level)
        set_committed_value(alert, "next_escalation_at", next_at)
    return bool(won)


def end_ladder(session: Session, alert: Alert) -> None:
    """The ladder has no further step (finished, or shortened by a care-team edit): nothing
    more is scheduled for ``alert``."""
    session.execute(
        update(Alert)
        .where(Alert.id == alert.id, Alert.escalation_level == alert.escalation_level)
        .values(next_escalation_at=None)
        .execution_options(synchronize_session=False)
    )
    set_committed_value(alert, "next_escalation_at", None)


def _transition(
    session: Session,
    alert_id: int,
    *,
    from_statuses: tuple[str, ...],
    by: str,
    now: datetime,
    values: dict[str, Any],
    actions: tuple[str, str],
    why: str,
    detail: Callable[[Alert], dict[str, Any]],
) -> StaffAction | None:
    """A staff action as a compare-and-set from ``from_statuses``: it stops escalation, cancels
    queued notifications when it changed something, and is audited either way (``actions`` =
    the first time, a repeat). None if there is no such alert."""
    changed = rowcount(
        session.execute(
            update(Alert)
            .where(Alert.id == alert_id, Alert.status.in_(from_statuses))
            .values(**values, next_escalation_at=None, updated_at=now)
            .execution_options(synchronize_session=False)
        )
    )
    alert = session.get(Alert, alert_id, populate_existing=True)
    if alert is None:
        return None
    cancelled = _cancel_pending_notifications(session, alert_id, now, why) if changed else 0
    audit.record(
        session,
        at=now,
        actor=by,
        action=actions[0] if changed else actions[1],
        patient_ref=_reference(session, alert),
        subject=f"alert:{alert_id}",
        cancelled=cancelled,
        **detail(alert),
    )
    return StaffAction(alert, bool(changed))


def assign(session: Session, alert_id: int, *, to: str, now: datetime) -> StaffAction | None:
    """Make ``to`` (a nurse's email) the alert's assignee, who is told first about what happens
    next. Assigning an unresolved alert does not stop its escalation (only acknowledging does);
    a resolved alert is not reassigned. Audited. None if no such alert."""
    changed = rowcount(
        session.execute(
            update(Alert)
            .where(
                Alert.id == alert_id,
                Alert.status.in_(UNRESOLVED),
                or_(Alert.assigned_to.is_(None), Alert.assigned_to != to),
            )
            .values(assigned_to=to, updated_at=now)
            .execution_options(synchronize_session=False)
        )
    )
    alert = session.get(Alert, alert_id, populate_existing=True)
    if alert is None:
        return None
    audit.record(
        session,
        at=now,
        actor=to,
        action="alert.assigned" if changed else "alert.assign_repeated",
        patient_ref=_reference(session, alert),
        subject=f"alert:{alert_id}",
    )
    return StaffAction(alert, bool(changed))
