"""``checkin retention purge``: message bodies older than a set age go; the audit trail stays.

Patients' replies (``inbound_messages.body`` and the assessment, which quotes their words) and
the texts checkin sent (``checkin.store.outbox.retention``) are cleared; severities, flags,
times, alerts and the append-only audit log are kept, and the purge itself is audited.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import update
from sqlalchemy.orm import Session

from checkin.store import audit
from checkin.store.db import rowcount
from checkin.store.models import InboundMessage
from checkin.store.outbox.retention import purge_bodies

PURGED = "[purged]"
MIN_DAYS = 30  # below this a typo would erase conversations nurses are still working on


@dataclass(frozen=True)
class Purged:
    before: datetime
    replies: int
    sent: int


def purge(session: Session, *, now: datetime, days: int, actor: str) -> Purged:
    """Clear bodies of replies received and messages due more than ``days`` before ``now``.
    Raises ValueError below ``MIN_DAYS``. The caller commits."""
    if days < MIN_DAYS:
        raise ValueError(f"keep at least {MIN_DAYS} days")
    before = now - timedelta(days=days)
    replies = rowcount(
        session.execute(
            update(InboundMessage)
            .where(InboundMessage.received_at < before, InboundMessage.body != PURGED)
            .values(body=PURGED, assessment=None)
            .execution_options(synchronize_session=False)
        )
    )
    sent = purge_bodies(session, before)
    audit.record(
        session,
        at=now,
        actor=actor,
        action="retention.purged",
        before=before.isoformat(),
        replies=replies,
        sent=sent,
    )
    return Purged(before=before, replies=replies, sent=sent)
