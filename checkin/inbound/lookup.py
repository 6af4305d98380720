"""Who sent a reply and which question it answers: one query for the patients (each with its
latest active enrollment) and their open questions, folded here (``statements.PATIENTS``).

The patients come back as ``Sender`` values, not ORM objects: what processing reads of them.
A step that changes a patient (STOP, START) loads the ORM object itself."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from checkin.core import replies
from checkin.inbound.message import InboundSms
from checkin.inbound.statements import (
    LAST_REMINDER,
    LOCKED,
    RECEIVE_BY_PHONE,
    Question,
    aware,
    inbound_values,
    insert_once,
)


@dataclass(frozen=True)
class OpenRow:
    """A sent, unanswered question of the patient's, within ``replies.QUESTION_WINDOW``."""

    id: int
    ask: str | None
    sent_at: datetime
    step_id: str
    enrollment_id: int | None


@dataclass(frozen=True, slots=True)
class Sender:
    """A patient a reply may come from: the columns processing reads."""

    id: int
    reference: str
    first_name: str
    language: str
    sms_opted_out: bool


@dataclass(frozen=True, slots=True)
class EnrollmentRef:
    """An enrollment, by id: all a reply's processing needs of it."""

    id: int


@dataclass
class Found:
    """The patients (each with its latest active enrollment, or None) and, per patient id, its
    open questions."""

    patients: list[tuple[Sender, EnrollmentRef | None]] = field(default_factory=list)
    questions: dict[int, list[OpenRow]] = field(default_factory=dict)


def find(session: Session, stmt: Any, params: dict[str, Any], now: datetime) -> Found:
    """Patients matching ``stmt`` (``statements.BY_PHONE``/``BY_ID``) with their open questions.
    On PostgreSQL the patient rows are locked (``FOR UPDATE OF patients``) so two replies from
    one patient are processed one after the other: alert find-or-open and STOP/START are then
    not racy. SQLite's BEGIN IMMEDIATE already holds the only write lock."""
    if session.get_bind().dialect.name == "postgresql":
        stmt = LOCKED[id(stmt)]
    return _fold(session.execute(stmt, {**params, "since": now - replies.QUESTION_WINDOW}))


def receive(session: Session, msg: InboundSms, now: datetime) -> tuple[int | None, Found | None]:
    """Store ``msg`` once (``insert_once``) and, for an SMS on PostgreSQL, find its sender in the
    same statement (``statements.RECEIVE_BY_PHONE``, locked as ``find`` locks): the new inbound
    id (None for a replay) and what ``find`` would have found, or None where the lookup is left
    to the caller (SQLite, the web form, no sender)."""
    if msg.outbox_id is not None or not msg.from_phone or session.get_bind().dialect.name != "postgresql":
        return insert_once(session, msg, now), None
    params = {**inbound_values(msg, now), "phone": msg.from_phone, "since": now - replies.QUESTION_WINDOW}
    rows = session.execute(RECEIVE_BY_PHONE, params).all()
    return rows[0].inbound_id, _fold(rows)


def _fold(rows: Iterable[Any]) -> Found:
    patients: dict[int, tuple[Sender, EnrollmentRef | None]] = {}
    questions: dict[int, dict[int, OpenRow]] = {}
    for row in rows:
        pid = row.id
        if pid is None:  # RECEIVE_BY_PHONE's one row for a number that matches no patient
            continue
        if pid not in patients:  # first row: the latest enrollment
            sender = Sender(pid, row.reference, row.first_name, row.language, row.sms_opted_out)
            enrollment = EnrollmentRef(row.enrollment_id) if row.enrollment_id is not None else None
            patients[pid] = (sender, enrollment)
        qid = row.question_id
        if qid is not None:  # one row per enrollment and question: keep each question once
            questions.setdefault(pid, {})[qid] = OpenRow(
                qid, row.ask, row.sent_at, row.step_id, row.question_enrollment_id
            )
    return Found(list(patients.values()), {pid: list(rows.values()) for pid, rows in questions.items()})


def open_question(
    session: Session, rows: list[OpenRow], patient_id: int, body: str, now: datetime
) -> Question | None:
    """The question ``body`` answers among the patient's open ``rows`` (``replies.pick_question``),
    unless it is a bare yes/no to a reminder sent since (then the question stays open)."""
    picked = replies.pick_question(
        (
            replies.OpenQuestion(r.id, r.ask or "general", r.sent_at, r.step_id == replies.FOLLOWUP_STEP)
            for r in rows
        ),
        now=now,
    )
    if picked is None:
        return None
    if replies.is_bare_yes_no(body):
        since = now - replies.QUESTION_WINDOW
        last = session.execute(LAST_REMINDER, {"patient_id": patient_id, "since": since}).scalar()
        if replies.answer_context(picked, body, aware(last)) == "reminder":
            return None  # "yes" to the reminder sent since: the question stays open
    return next(Question(r.id, r.ask, r.step_id, r.enrollment_id) for r in rows if r.id == picked.outbox_id)
