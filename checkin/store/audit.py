"""Append-only audit log: every message in or out and every staff action gets a row."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Connection, Table, insert
from sqlalchemy.orm import Session

from checkin.store.models import AuditEvent


def record(
    session: Session,
    *,
    at: datetime,
    actor: str,
    action: str,
    patient_ref: str | None = None,
    subject: str | None = None,
    **detail: Any,
) -> None:
    """Add an audit row to the caller's transaction (it commits with the change it records).

    ``detail`` must not hold message text, phone numbers or names: the audit log is read by
    more people than the chart is.
    """
    session.add(
        AuditEvent(at=at, actor=actor, action=action, patient_ref=patient_ref, subject=subject, detail=detail)
    )


def row(
    *,
    at: datetime,
    actor: str,
    action: str,
    patient_ref: str | None,
    subject: str | None,
    detail: dict[str, Any],
) -> dict[str, Any]:
    """The ``AuditEvent`` columns ``record`` would add, as values for a Core INSERT: for callers
    that write their audit rows in one statement with their own (same rules for ``detail``)."""
    return {
        "at": at,
        "actor": actor,
        "action": action,
        "patient_ref": patient_ref,
        "subject": subject,
        "detail": detail,
    }


def record_outbox(
    session: Session, now: datetime, action: str, patient_ref: str | None, outbox_id: int, **detail: Any
) -> None:
    """A ``system`` audit row about one outbox row: the outbox state machine's own record."""
    record(
        session,
        at=now,
        actor="system",
        action=action,
        patient_ref=patient_ref,
        subject=f"outbox:{outbox_id}",
        **detail,
    )


def record_outbox_many(
    conn: Connection, now: datetime, action: str, subjects: Iterable[tuple[str | None, int]], **detail: Any
) -> None:
    """One ``system`` audit row per (patient reference, outbox id), inserted in one Core
    statement: the rows ``record`` writes, without an ORM flush (the dispatcher's hot path)."""
    values = [
        row(at=now, actor="system", action=action, patient_ref=ref, subject=f"outbox:{oid}", detail=detail)
        for ref, oid in subjects
    ]
    if values:
        conn.execute(insert(cast(Table, AuditEvent.__table__)), values)
