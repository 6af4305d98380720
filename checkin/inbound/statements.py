"""The SQL one inbound message needs, built once at import (building a statement costs more
than running it on SQLite), and the idempotent insert that makes a message id count once."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import cast

from sqlalchemy import Table, bindparam, func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, aliased

from checkin.inbound.message import InboundSms, storable
from checkin.states import EnrollmentStatus, OutboxStatus
from checkin.store.models import AuditEvent, Enrollment, InboundMessage, OutboxMessage, Patient

INBOUND = cast(Table, InboundMessage.__table__)
# Built once: constructing a statement costs more than running it on SQLite (profiled).
INSERT_ONCE = {
    name: dialect.insert(INBOUND)
    .on_conflict_do_nothing(index_elements=["message_sid"])
    .returning(INBOUND.c.id)
    for name, dialect in (("postgresql", postgresql), ("sqlite", sqlite))
}
# A reply's patients, each row with one active enrollment (latest first) and one open question
# (a sent, unanswered ``ask`` row within the window; NULLs when none): who sent it and what it
# answers in one round trip instead of two (issue 15). Rows are patients x enrollments x
# questions; ``checkin.inbound.lookup`` folds them.
OPEN = aliased(OutboxMessage, name="open_question")
PATIENTS = (
    select(Patient, Enrollment, OPEN.id, OPEN.ask, OPEN.sent_at, OPEN.step_id, OPEN.enrollment_id)
    .outerjoin(
        Enrollment, (Enrollment.patient_id == Patient.id) & (Enrollment.status == EnrollmentStatus.ACTIVE)
    )
    .outerjoin(
        OPEN,
        (OPEN.patient_id == Patient.id)
        & OPEN.ask.is_not(None)
        & (OPEN.status == OutboxStatus.SENT)
        & OPEN.answered_at.is_(None)
        & OPEN.sent_at.is_not(None)
        & (OPEN.sent_at >= bindparam("since")),
    )
    .order_by(Patient.id, Enrollment.created_at.desc(), Enrollment.id.desc())
)
BY_PHONE = PATIENTS.where(Patient.phone == bindparam("phone"))
BY_ID = PATIENTS.where(Patient.id == bindparam("patient_id"))
LOCKED = {
    id(q): q.with_for_update(of=Patient).execution_options(populate_existing=True) for q in (BY_PHONE, BY_ID)
}
# The latest message that asked nothing (a reminder): a bare YES/NO sent after it answers it.
LAST_REMINDER = select(func.max(OutboxMessage.sent_at)).where(
    OutboxMessage.patient_id == bindparam("patient_id"),
    OutboxMessage.ask.is_(None),
    OutboxMessage.status == OutboxStatus.SENT,
    OutboxMessage.sent_at >= bindparam("since"),
)
AUDIT = cast(Table, AuditEvent.__table__)
RESULT_FIELDS = (
    "patient_id",
    "enrollment_id",
    "outbox_id",
    "keyword",
    "severity",
    "flags",
    "assessment",
    "processed_at",
)
SAVE_RESULT = (
    update(INBOUND)
    .where(INBOUND.c.id == bindparam("inbound_id"))
    .values(**{f: bindparam(f"v_{f}") for f in RESULT_FIELDS})
)


@dataclass(frozen=True)
class Question:
    """The open question a reply answers (the outbox columns this module needs)."""

    id: int
    ask: str | None
    step_id: str
    enrollment_id: int | None


def aware(at: datetime | None) -> datetime | None:
    """SQLite returns naive datetimes for timezone-aware columns; they are stored as UTC."""
    if at is not None and at.tzinfo is None:
        return at.replace(tzinfo=UTC)
    return at


def insert_once(session: Session, msg: InboundSms, now: datetime) -> int | None:
    """Insert the inbound row unless its ``message_sid`` exists; the new id, or None."""
    conn = session.connection()
    stmt = INSERT_ONCE.get(conn.dialect.name, INSERT_ONCE["sqlite"])
    return conn.execute(
        stmt,
        {
            "message_sid": msg.message_sid,
            "channel": msg.channel,
            "from_phone": msg.from_phone,
            "body": storable(msg.body),
            "flags": [],
            "received_at": now,
            "outbox_id": msg.outbox_id,
        },
    ).scalar()
