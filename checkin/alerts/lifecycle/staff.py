"""Staff actions on an alert, each audited under the signed-in person (their email).

``acknowledge`` (idempotent; stops escalation and cancels queued pages not yet claimed),
``resolve`` (needs a note), ``assign`` (the assignee hears first about what happens next).
Each is a compare-and-set on the alert's status, so it cannot interleave with an escalation
step or a new round.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session

from checkin.alerts.lifecycle.raising import MAX_NOTE, UNRESOLVED
from checkin.states import AlertStatus
from checkin.store import audit, outbox
from checkin.store.db import rowcount
from checkin.store.models import Alert, Patient


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
            .values(**values, next_escalation_at=None, news_at=None, updated_at=now)
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
