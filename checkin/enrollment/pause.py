"""Pause and resume a patient's planned messages (a nurse's decision: readmitted, on holiday
without signal, asked for a break on the phone).

Pausing sets ``Patient.paused_at`` (what the console shows) and holds every unsent planned
message (``checkin.store.outbox.hold_for_pause``); resuming clears it and puts those back to
``pending`` (expired ones ``skipped``), except SMS of a patient who has opted out, which stay
held for START. Messages that expire while paused are never sent late. Both audited with the
nurse as actor.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from checkin.store import audit, outbox
from checkin.store.models import Patient


def pause(session: Session, patient: Patient, *, now: datetime, actor: str) -> int:
    """Hold the patient's pending messages and mark the patient paused; returns how many."""
    patient.paused_at = patient.paused_at or now
    held = outbox.hold_for_pause(session, patient.id, now=now)
    audit.record(
        session, at=now, actor=actor, action="patient.paused", patient_ref=patient.reference, held=held
    )
    return held


def resume(session: Session, patient: Patient, *, now: datetime, actor: str) -> int:
    """Release what ``pause`` held; returns how many became pending again."""
    patient.paused_at = None
    released, skipped = outbox.release_pause(
        session, patient.id, sms_opted_out=patient.sms_opted_out, now=now
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
