"""Who sent a reply and which question it answers: one query for the patients (each with its
latest active enrollment) and their open questions, folded here (``statements.PATIENTS``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from checkin.core import replies
from checkin.inbound.statements import LAST_REMINDER, LOCKED, Question, aware
from checkin.store.models import Enrollment, Patient


@dataclass(frozen=True)
class OpenRow:
    """A sent, unanswered question of the patient's, within ``replies.QUESTION_WINDOW``."""

    id: int
    ask: str | None
    sent_at: datetime
    step_id: str
    enrollment_id: int | None


@dataclass
class Found:
    """The patients (each with its latest active enrollment, or None) and, per patient id, its
    open questions."""

    patients: list[tuple[Patient, Enrollment | None]] = field(default_factory=list)
    questions: dict[int, list[OpenRow]] = field(default_factory=dict)


def find(session: Session, stmt: Any, params: dict[str, Any], now: datetime) -> Found:
    """Patients matching ``stmt`` (``statements.BY_PHONE``/``BY_ID``) with their open questions.
    On PostgreSQL the patient rows are locked (``FOR UPDATE OF patients``) so two replies from
    one patient are processed one after the other: alert find-or-open and STOP/START are then
    not racy. SQLite's BEGIN IMMEDIATE already holds the only write lock."""
    if session.get_bind().dialect.name == "postgresql":
        stmt = LOCKED[id(stmt)]
    patients: dict[int, tuple[Patient, Enrollment | None]] = {}
    questions: dict[int, dict[int, OpenRow]] = {}
    for patient, enrollment, qid, ask, sent_at, step_id, q_enrollment in session.execute(
        stmt, {**params, "since": now - replies.QUESTION_WINDOW}
    ):
        patients.setdefault(patient.id, (patient, enrollment))  # first row: latest enrollment
        if qid is not None:  # one row per enrollment and question: keep each question once
            questions.setdefault(patient.id, {})[qid] = OpenRow(qid, ask, sent_at, step_id, q_enrollment)
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
