"""Append-only audit log: every message in or out and every staff action gets a row."""

from __future__ import annotations

from datetime import datetime
from typing import Any

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
