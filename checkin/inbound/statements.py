"""The SQL one inbound message needs, built once at import (building a statement costs more
than running it on SQLite), and the idempotent insert that makes a message id count once."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, cast

from sqlalchemy import (
    Table,
    TextClause,
    bindparam,
    func,
    insert,
    literal_column,
    select,
    text,
    true,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from checkin.inbound.message import InboundSms, storable
from checkin.states import EnrollmentStatus, OutboxStatus
from checkin.store import outbox
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
# questions; ``checkin.inbound.lookup`` folds them. Plain columns, not ORM entities: only what
# processing reads, so the driver describes 11 columns rather than 40 and no instances are
# built (``tests/benchmarks/webhook_steps.py`` prints this step's CPU per reply).
PATIENT = cast(Table, Patient.__table__)
ENROLLMENT = cast(Table, Enrollment.__table__)
OPEN = outbox.OPEN_QUESTION
PATIENTS = (
    select(
        PATIENT.c.id,
        PATIENT.c.reference,
        PATIENT.c.first_name,
        PATIENT.c.language,
        PATIENT.c.sms_opted_out,
        ENROLLMENT.c.id.label("enrollment_id"),
        OPEN.c.id.label("question_id"),
        OPEN.c.ask,
        OPEN.c.sent_at,
        OPEN.c.step_id,
        OPEN.c.enrollment_id.label("question_enrollment_id"),
        ENROLLMENT.c.created_at.label("enrollment_created_at"),
    )
    .select_from(PATIENT)
    .outerjoin(
        ENROLLMENT,
        (ENROLLMENT.c.patient_id == PATIENT.c.id) & (ENROLLMENT.c.status == EnrollmentStatus.ACTIVE),
    )
    .outerjoin(
        OPEN,
        (OPEN.c.patient_id == PATIENT.c.id)
        & OPEN.c.ask.is_not(None)
        & (OPEN.c.status == OutboxStatus.SENT)
        & OPEN.c.answered_at.is_(None)
        & OPEN.c.sent_at.is_not(None)
        & (OPEN.c.sent_at >= bindparam("since")),
    )
    .order_by(PATIENT.c.id, ENROLLMENT.c.created_at.desc(), ENROLLMENT.c.id.desc())
)
BY_PHONE = PATIENTS.where(PATIENT.c.phone == bindparam("phone"))
BY_ID = PATIENTS.where(PATIENT.c.id == bindparam("patient_id"))
LOCKED = {id(q): q.with_for_update(of=PATIENT) for q in (BY_PHONE, BY_ID)}
INBOUND_VALUES = ("message_sid", "channel", "from_phone", "body", "flags", "received_at", "outbox_id")
# PostgreSQL, an SMS: store it (``INSERT_ONCE``, as a CTE) and find its sender (``LOCKED``
# ``BY_PHONE``) in one round trip instead of two (issue 15: each statement costs a web process
# about as much CPU as triage and the reply's render together; ``webhook_steps`` prints both). A data-modifying CTE runs whether or not the query reads it. The lookup is a LATERAL
# subquery joined to one constant row, so a number that matches no patient still returns a row
# that carries the new id (``FOR UPDATE`` may not lock the nullable side of an outer join, but
# may lock inside the subquery). ``inbound_id`` is NULL on every row for a replay.
_RECEIVED = (
    postgresql.insert(INBOUND)
    .values({c: bindparam(c, type_=INBOUND.c[c].type) for c in INBOUND_VALUES})
    .on_conflict_do_nothing(index_elements=["message_sid"])
    .returning(INBOUND.c.id)
    .cte("received")
)
_FOUND = LOCKED[id(BY_PHONE)].subquery("found").lateral()
RECEIVE_BY_PHONE = (
    select(select(_RECEIVED.c.id).scalar_subquery().label("inbound_id"), *_FOUND.c)
    .select_from(select(literal_column("1").label("one")).subquery("one"))
    .outerjoin(_FOUND, true())
    .order_by(_FOUND.c.id, _FOUND.c.enrollment_created_at.desc(), _FOUND.c.enrollment_id.desc())
)
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
AUDIT_COLUMNS = ("at", "actor", "action", "patient_ref", "subject", "detail")


def _save_and_audit(rows: int, answered: bool) -> TextClause:
    """PostgreSQL: ``SAVE_RESULT`` (and, when ``answered``, ``outbox.mark_answered``) as
    data-modifying CTEs of one INSERT of ``rows`` audit rows. One statement instead of an
    UPDATE, another UPDATE and a list of audit rows (which psycopg sends as a pipeline): two
    round trips less per answer (issue 15). Every parameter carries
    its column's type, so values are bound as the ORM binds them."""
    sets = ", ".join(f"{f} = :v_{f}" for f in RESULT_FIELDS)
    values = ", ".join("(" + ", ".join(f":{c}_{i}" for c in AUDIT_COLUMNS) + ")" for i in range(rows))
    saved = f"UPDATE {INBOUND.name} SET {sets} WHERE id = :inbound_id"  # noqa: S608 - names from the model
    audit = f"INSERT INTO {AUDIT.name} ({', '.join(AUDIT_COLUMNS)}) VALUES {values}"  # noqa: S608 - as above
    answer = f", answered AS ({outbox.ANSWER_SQL})" if answered else ""
    sql = f"WITH saved AS ({saved}){answer} {audit}"
    return text(sql).bindparams(
        bindparam("inbound_id", type_=INBOUND.c.id.type),
        *(bindparam(f"v_{f}", type_=INBOUND.c[f].type) for f in RESULT_FIELDS),
        *(bindparam(f"{c}_{i}", type_=AUDIT.c[c].type) for i in range(rows) for c in AUDIT_COLUMNS),
        *(bindparam(name, type_=type_) for name, type_ in outbox.ANSWER_BINDS.items() if answered),
    )


SAVE_AND_AUDIT = {
    (rows, answered): _save_and_audit(rows, answered) for rows in (1, 2, 3) for answered in (False, True)
}


def save_outcome(
    session: Session,
    inbound: InboundMessage,
    audit: list[dict[str, Any]],
    *,
    answered: int | None = None,
) -> None:
    """Write the outcome collected on the transient ``inbound`` (``RESULT_FIELDS``), the queued
    ``audit`` rows (``AUDIT_COLUMNS`` each) and, with ``answered`` (an outbox id), that the
    question was answered at ``inbound.processed_at`` (``outbox.mark_answered``)."""
    conn = session.connection()
    result = {f"v_{f}": getattr(inbound, f) for f in RESULT_FIELDS}
    both = (
        SAVE_AND_AUDIT.get((len(audit), answered is not None)) if conn.dialect.name == "postgresql" else None
    )
    if both is None:  # SQLite (no UPDATE inside WITH), or an unusual number of audit rows
        if answered is not None:
            outbox.mark_answered(session, answered, result["v_processed_at"])
        conn.execute(SAVE_RESULT, {"inbound_id": inbound.id, **result})
        if audit:
            conn.execute(insert(AUDIT), audit)
        return
    rows = {f"{c}_{i}": row[c] for i, row in enumerate(audit) for c in AUDIT_COLUMNS}
    answer = {"question_id": answered, "at": inbound.processed_at} if answered is not None else {}
    conn.execute(both, {"inbound_id": inbound.id, **result, **rows, **answer})


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


def inbound_values(msg: InboundSms, now: datetime) -> dict[str, Any]:
    """The new inbound row's columns (``INBOUND_VALUES``)."""
    return {
        "message_sid": msg.message_sid,
        "channel": msg.channel,
        "from_phone": msg.from_phone,
        "body": storable(msg.body),
        "flags": [],
        "received_at": now,
        "outbox_id": msg.outbox_id,
    }


def insert_once(session: Session, msg: InboundSms, now: datetime) -> int | None:
    """Insert the inbound row unless its ``message_sid`` exists; the new id, or None."""
    conn = session.connection()
    stmt = INSERT_ONCE.get(conn.dialect.name, INSERT_ONCE["sqlite"])
    return conn.execute(stmt, inbound_values(msg, now)).scalar()
