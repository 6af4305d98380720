"""A nurse pauses a patient's messages: unsent ``pending`` rows wait in ``held`` with the reason
``PAUSED`` until resumed (``checkin.enrollment.pause`` keeps the patient's flag and the audit).

    pending ─hold_for_pause─► held (PAUSED) ─release_pause─► pending | skipped (expired)
                                            └─(patient opted out of SMS)─► held (OPTED_OUT)
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import and_, update
from sqlalchemy.orm import Session

from checkin.states import ChannelName, OutboxStatus
from checkin.store.db import rowcount
from checkin.store.models import OutboxMessage
from checkin.store.outbox.unsent import OPTED_OUT

PAUSED = "paused by staff"


def hold_for_pause(session: Session, patient_id: int, *, now: datetime) -> int:
    """Hold the patient's pending rows; returns how many."""
    return rowcount(
        session.execute(
            update(OutboxMessage)
            .where(OutboxMessage.patient_id == patient_id, OutboxMessage.status == OutboxStatus.PENDING)
            .values(status=OutboxStatus.HELD, status_reason=PAUSED, updated_at=now)
            .execution_options(synchronize_session=False)
        )
    )


def release_pause(
    session: Session, patient_id: int, *, sms_opted_out: bool, now: datetime
) -> tuple[int, int]:
    """Release what ``hold_for_pause`` held: (released, skipped as expired). SMS of a patient
    who has opted out stay held, now for their START."""
    paused = and_(
        OutboxMessage.patient_id == patient_id,
        OutboxMessage.status == OutboxStatus.HELD,
        OutboxMessage.status_reason == PAUSED,
    )
    skipped = rowcount(
        session.execute(
            update(OutboxMessage)
            .where(paused, OutboxMessage.expires_at <= now)
            .values(status=OutboxStatus.SKIPPED, status_reason="expired while paused", updated_at=now)
            .execution_options(synchronize_session=False)
        )
    )
    if sms_opted_out:
        session.execute(
            update(OutboxMessage)
            .where(paused, OutboxMessage.channel == ChannelName.SMS)
            .values(status_reason=OPTED_OUT, updated_at=now)
            .execution_options(synchronize_session=False)
        )
    released = rowcount(
        session.execute(
            update(OutboxMessage)
            .where(paused)
            .values(status=OutboxStatus.PENDING, status_reason=None, updated_at=now)
            .execution_options(synchronize_session=False)
        )
    )
    return released, skipped
