"""Retention: the texts of messages whose work is done, removed after a set age.

Only the content goes (``body``, ``subject``, ``html``); the row, its status, times and
provider id stay, and so does the audit log (append-only), so what was sent when, and to which
patient reference, can still be answered. Rows still to be sent or being sent keep their text.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import or_, update
from sqlalchemy.orm import Session

from checkin.states import OutboxStatus
from checkin.store.db import rowcount
from checkin.store.models import OutboxMessage

FINAL = (OutboxStatus.SENT, OutboxStatus.SKIPPED, OutboxStatus.CANCELLED, OutboxStatus.DEAD)


def purge_bodies(session: Session, before: datetime) -> int:
    """Clear the content of final rows due before ``before``; returns how many were cleared."""
    result = session.execute(
        update(OutboxMessage)
        .where(
            OutboxMessage.status.in_(FINAL),
            OutboxMessage.due_at < before,
            or_(OutboxMessage.body.is_not(None), OutboxMessage.html.is_not(None)),
        )
        .values(body=None, subject=None, html=None)
        .execution_options(synchronize_session=False)
    )
    return rowcount(result)
