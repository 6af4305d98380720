"""Every HL7 v2 message the feed received, with the ACK it got (``checkin.integrations.hl7``).

The row is the idempotency key (a resent MSH-10 from the same sender gets the stored ACK and
changes nothing) and, for rejected messages, what an admin reviews and replays. ``raw`` and
``problem`` hold patient data: they live here and in the ACK, never in a log.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from checkin.store.models import Base, BigId, UtcDateTime

ACCEPTED = "accepted"  # AA: the change is committed
ERROR = "error"  # AE: ours but wrong; nothing changed
REJECTED = "rejected"  # AR: not ours, or not HL7; nothing changed


class Hl7Message(Base):
    __tablename__ = "hl7_messages"
    __table_args__ = (
        UniqueConstraint("sender", "control_id", name="uq_hl7_messages_sender_control_id"),
        Index("ix_hl7_messages_outcome_received", "outcome", "received_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    sender: Mapped[str] = mapped_column(String(200))  # MSH-3^MSH-4
    control_id: Mapped[str | None] = mapped_column(String(64))  # MSH-10; None if it had none
    message_type: Mapped[str] = mapped_column(String(16))  # SIU^S12, or "" if unreadable
    outcome: Mapped[str] = mapped_column(String(16))  # accepted | error | rejected
    ack_code: Mapped[str] = mapped_column(String(2))  # AA | AE | AR
    ack: Mapped[str] = mapped_column(Text)  # the exact ACK sent, sent again for a resend
    problem: Mapped[str | None] = mapped_column(Text)  # "PID-13: '555-01' is not a phone number"
    raw: Mapped[str] = mapped_column(Text)  # the message as received (PHI)
    patient_ref: Mapped[str | None] = mapped_column(String(16))
    replays: Mapped[int] = mapped_column(Integer, default=0)
    received_at: Mapped[datetime] = mapped_column(UtcDateTime)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)
