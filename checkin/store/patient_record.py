"""One patient as staff look them up: found by MRN or reference, with the conversation (what
they wrote, what we sent and answered), their alerts and each enrollment's timeline.

Reading a record writes an audit row (``patient.viewed``): every staff view of a patient is
audited, in the same transaction as the read.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from checkin.states import OutboxStatus
from checkin.store import audit, consents
from checkin.store.models import (
    Alert,
    AuditEvent,
    Enrollment,
    InboundMessage,
    OutboxMessage,
    Patient,
)


@dataclass(frozen=True)
class Turn:
    """One message of the conversation. ``direction`` is ``in`` or ``out``; ``text`` is what
    was written when it is stored (inbound text, pre-rendered answers), else None and
    ``message`` names the template that was sent."""

    at: datetime
    direction: str
    channel: str
    message: str
    text: str | None = None
    note: str = ""


@dataclass
class PatientRecord:
    patient: Patient
    enrollments: list[tuple[Enrollment, list[OutboxMessage]]] = field(default_factory=list)
    conversation: list[Turn] = field(default_factory=list)
    alerts: list[Alert] = field(default_factory=list)
    consents: list[consents.Consent] = field(default_factory=list)  # oldest first


def find_patient(session: Session, key: str) -> Patient | None:
    """The patient whose MRN is ``key``, else whose reference is (``P-YWNUE49``, any case)."""
    key = key.strip()
    found = session.scalar(select(Patient).where(Patient.mrn == key))
    if found is None:
        found = session.scalar(select(Patient).where(Patient.reference == key.upper()))
    return found


def read_record(session: Session, patient: Patient, *, actor: str, now: datetime) -> PatientRecord:
    """Everything ``patients show`` prints, and the audit row for having looked."""
    record = PatientRecord(patient)
    for e in session.scalars(
        select(Enrollment).where(Enrollment.patient_id == patient.id).order_by(Enrollment.id)
    ):
        rows = session.scalars(
            select(OutboxMessage)
            .where(OutboxMessage.enrollment_id == e.id)
            .order_by(OutboxMessage.due_at, OutboxMessage.step_id)
        )
        record.enrollments.append((e, list(rows)))
    record.conversation = _conversation(session, patient)
    record.alerts = list(
        session.scalars(select(Alert).where(Alert.patient_id == patient.id).order_by(Alert.opened_at))
    )
    record.consents = consents.history(session, patient.id)
    audit.record(session, at=now, actor=actor, action="patient.viewed", patient_ref=patient.reference)
    return record


def _conversation(session: Session, patient: Patient) -> list[Turn]:
    turns: list[Turn] = []
    inbound = list(
        session.scalars(
            select(InboundMessage).where(InboundMessage.patient_id == patient.id).order_by(InboundMessage.id)
        )
    )
    for m in inbound:
        triage = f"{m.severity or '-'}" + (f" {','.join(m.flags)}" if m.flags else "")
        note = f"keyword {m.keyword}" if m.keyword else f"triage {triage}"
        turns.append(Turn(m.received_at, "in", m.channel, f"#{m.id}", m.body, note))
    # Our answers to those messages (an SMS answer goes back in the webhook response, so only
    # the audit log holds which template it was).
    subjects = [f"inbound:{m.id}" for m in inbound]
    if subjects:
        for ev in session.scalars(
            select(AuditEvent).where(AuditEvent.action == "reply.sent", AuditEvent.subject.in_(subjects))
        ):
            template = str(ev.detail.get("template", "reply"))
            turns.append(
                Turn(ev.at, "out", str(ev.detail.get("channel", "sms")), template, None, ev.subject or "")
            )
    for row in session.scalars(
        select(OutboxMessage).where(
            OutboxMessage.patient_id == patient.id,
            OutboxMessage.status == OutboxStatus.SENT,
            or_(OutboxMessage.recipient.is_(None), OutboxMessage.recipient.in_(_addresses(patient))),
        )
    ):
        if row.step_id == "followup":
            continue  # recorded for matching; the audit's reply.sent row already shows it
        turns.append(
            Turn(row.sent_at or row.updated_at, "out", row.channel, row.message, row.body, row.step_id)
        )
    return sorted(turns, key=lambda t: (t.at, t.direction == "out"))


def _addresses(patient: Patient) -> list[str]:
    return [a for a in (patient.phone, patient.email) if a]


__all__ = ["PatientRecord", "Turn", "find_patient", "read_record"]
