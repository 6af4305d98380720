"""Consent to be contacted, per patient and channel: an append-only history of who said so.

Every row is one decision (``granted`` or ``revoked``) with where it came from (``source``:
the HL7 feed, the CLI, a CSV import, the Python API, or the patient's own STOP/START),
when (the injected clock's now) and who recorded it (``recorded_by``: ``cli``, the HL7
sender and control id, the CSV file and line, ``patient``). The current consent of a
channel is its latest row. Rows are never changed: the ORM refuses updates and deletes.

``evidence`` is a short note for an auditor (a message type, a keyword); never patient data.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, String, event, insert, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from checkin.store.models import AppendOnlyError, Base, BigId, UtcDateTime

GRANTED = "granted"
REVOKED = "revoked"
CHANNELS = ("sms", "email")
SOURCES = ("hl7", "cli", "csv", "api", "patient-keyword")
BY_MAX = 254
EVIDENCE_MAX = 200


class Consent(Base):
    __tablename__ = "consents"
    __table_args__ = (Index("ix_consents_patient_recorded", "patient_id", "recorded_at"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey("patients.id"))
    channel: Mapped[str] = mapped_column(String(8))  # sms | email
    # Not ``status``: consent is no state machine, and the ownership scan keys on that name.
    decision: Mapped[str] = mapped_column(String(8))  # granted | revoked
    source: Mapped[str] = mapped_column(String(16))  # one of SOURCES
    recorded_at: Mapped[datetime] = mapped_column(UtcDateTime)
    recorded_by: Mapped[str] = mapped_column(String(BY_MAX))
    evidence: Mapped[str | None] = mapped_column(String(EVIDENCE_MAX))


@dataclass(frozen=True)
class Provenance:
    """Where a consent came from and who recorded it; ``evidence`` holds no patient data."""

    source: str
    by: str
    evidence: str | None = None

    def __post_init__(self) -> None:
        if self.source not in SOURCES:
            raise ValueError(f"consent source {self.source!r} is not one of {', '.join(SOURCES)}")


def values(
    patient_id: int, channel: str, decision: str, provenance: Provenance, at: datetime
) -> dict[str, Any]:
    """One row's column values (for ``record_many``)."""
    if channel not in CHANNELS:
        raise ValueError(f"consent channel {channel!r} is not one of {', '.join(CHANNELS)}")
    if decision not in (GRANTED, REVOKED):
        raise ValueError(f"consent decision {decision!r} is not granted or revoked")
    return {
        "patient_id": patient_id,
        "channel": channel,
        "decision": decision,
        "source": provenance.source,
        "recorded_at": at,
        "recorded_by": provenance.by[:BY_MAX],
        "evidence": provenance.evidence[:EVIDENCE_MAX] if provenance.evidence else None,
    }


def record_many(session: Session, rows: Iterable[dict[str, Any]]) -> int:
    """Insert rows built by ``values`` in the caller's transaction (one statement per
    thousand); returns how many."""
    batch = list(rows)
    for i in range(0, len(batch), 1000):
        session.execute(insert(Consent), batch[i : i + 1000])
    return len(batch)


def record(
    session: Session, patient_id: int, channel: str, decision: str, provenance: Provenance, *, at: datetime
) -> None:
    """One decision, in the caller's transaction."""
    record_many(session, [values(patient_id, channel, decision, provenance, at)])


def history(session: Session, patient_id: int) -> list[Consent]:
    """Every decision about the patient, oldest first."""
    return list(
        session.scalars(
            select(Consent).where(Consent.patient_id == patient_id).order_by(Consent.recorded_at, Consent.id)
        )
    )


def current(rows: Iterable[Consent]) -> dict[str, Consent]:
    """The latest decision per channel of ``rows`` (as ``history`` orders them)."""
    latest: dict[str, Consent] = {}
    for row in rows:
        latest[row.channel] = row
    return latest


@event.listens_for(Session, "before_flush")
def _refuse_consent_changes(session: Session, flush_context: Any, instances: Any) -> None:
    for obj in list(session.dirty) + list(session.deleted):
        if isinstance(obj, Consent):
            raise AppendOnlyError("consents is append-only")
