"""Pause and resume a patient's planned messages (a nurse's decision: readmitted, on holiday
without signal, asked for a break on the phone).

Pausing sets ``Patient.paused_at`` (what the console shows) and holds every unsent planned
message (status ``held``, reason ``PAUSED``); resuming
puts those back to ``pending`` (expired ones ``skipped``), except SMS of a patient who has
opted out, which stay held for START. Messages that expire while paused are not sent late:
the dispatcher skips expired rows. Both audited with the nurse as actor.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import and_, update
from sqlalchemy.orm import Session

from checkin.store import audit
from checkin.store.db import rowcount
from checkin.store.models import OUTBOX_HELD, OUTBOX_PENDING, OUTBOX_SKIPPED, OutboxMessage, Patient

PAUSED = "paused by staff"


def pause(session: Session, patient: Patient, *, now: datetime, actor: str) -> int:
    """Hold the patient's pending messages and mark the patient paused; returns how many."""
    patient.paused_at = patient.paused_at or now
    held = rowcount(
        session.execute(
            update(OutboxMessage)
            .where(OutboxMessage.patient_id == patient.id, OutboxMessage.status == OUTBOX_PENDING)
            .values(status=OUTBOX_HELD, status_reason=PAUSED, updated_at=now)
            .execution_options(synchronize_session=False)
        )
    )
    audit.record(
        session, at=now, actor=actor, action="patient.paused", patient_ref=patient.reference, held=held
    )
    return held


def resume(session: Session, patient: Patient, *, now: datetime, actor: str) -> int:
    """Release what ``pause`` held; returns how many became pending again."""
    patient.paused_at = None
    paused = and_(
        OutboxMessage.patient_id == patient.id,
        OutboxMessage.status == OUTBOX_HELD,
        OutboxMessage.status_reason == PAUSED,
    )
    skipped = rowcount(
        session.execute(
            update(OutboxMessage)
            .where(paused, OutboxMessage.expires_at <= now)
            .values(status=OUTBOX_SKIPPED, status_reason="expired while paused", updated_at=now)
            .execution_options(synchronize_session=False)
        )
    )
    if patient.sms_opted_out:
        session.execute(
            update(OutboxMessage)
            .where(paused, OutboxMessage.channel == "sms")
            .values(status_reason="patient opted out of SMS", updated_at=now)
            .execution_options(synchronize_session=False)
        )
    released = rowcount(
        session.execute(
            update(OutboxMessage)
            .where(paused)
            .values(status=OUTBOX_PENDING, status_reason=None, updated_at=now)
            .execution_options(synchronize_session=False)
        )
    )
    audit.record(
        session,
        at=now,
        actor=actor,
        action="patient.resumed",
        patient_ref=patient.reference,
        released=released,
        skipped=skipped,
    )
    return released
