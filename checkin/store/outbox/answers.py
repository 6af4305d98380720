"""Answered questions: the patient replied to a check-in question (or its reminder).

The only writes to ``answered_at``; part of the outbox state machine's package, so the
one-writer rule holds (``tests/db/test_state_ownership.py``)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, bindparam, select, update
from sqlalchemy.dialects.postgresql.base import PGDialect
from sqlalchemy.orm import Session

from checkin.store.models import OutboxMessage

_OUTBOX = cast(Table, OutboxMessage.__table__)
# The question, and the same question sent on the other channel (a patient who chose "both"):
# an answer on one answers the other, or the email copy would later count as a missed check-in.
# One statement, not two: this runs in every answered reply's webhook (issue 15).
_SIBLING = _OUTBOX.alias("sibling")


def _of_question(column: Any) -> Any:
    return select(column).where(_SIBLING.c.id == bindparam("question_id")).scalar_subquery()


_ANSWER = (
    update(_OUTBOX)
    .where(
        _OUTBOX.c.answered_at.is_(None),
        (_OUTBOX.c.id == bindparam("question_id"))
        | (
            _OUTBOX.c.ask.is_not(None)
            & (_OUTBOX.c.enrollment_id == _of_question(_SIBLING.c.enrollment_id))
            & (_OUTBOX.c.step_id == _of_question(_SIBLING.c.step_id))
            & (_OUTBOX.c.occurrence == _of_question(_SIBLING.c.occurrence))
        ),
    )
    .values(answered_at=bindparam("at"), updated_at=bindparam("at"))
)


def mark_answered(session: Session, question_id: int, now: datetime) -> None:
    """The patient answered this question (and so its copy on the other channel)."""
    session.execute(_ANSWER, {"question_id": question_id, "at": now})


# ``mark_answered`` as PostgreSQL text with ``:question_id`` and ``:at`` binds, for a caller that
# folds it into one statement with its own writes (the inbound webhook saves its outcome, its
# audit rows and the answer in one WITH: a round trip less per answered question). Compiled
# from ``_ANSWER``, so the two cannot drift; by the driverless dialect, which writes named binds
# without casts, as ``text()`` reads them.
ANSWER_SQL = str(_ANSWER.compile(dialect=PGDialect(paramstyle="named")))  # type: ignore[no-untyped-call]
# The outbox table under another name, for a query elsewhere that reads questions beside other
# tables (the inbound lookup joins a patient's open questions); the writes stay here.
OPEN_QUESTION = _OUTBOX.alias("open_question")
ANSWER_BINDS = {"question_id": _OUTBOX.c.id.type, "at": _OUTBOX.c.answered_at.type}


def adopt_answer(session: Session, row_id: int, answered_at: datetime, now: datetime) -> None:
    """The patient answered the reminder of this question: so they answered the question."""
    session.execute(
        update(OutboxMessage)
        .where(OutboxMessage.id == row_id, OutboxMessage.answered_at.is_(None))
        .values(answered_at=answered_at, updated_at=now)
        .execution_options(synchronize_session=False)
    )


__all__ = ["ANSWER_BINDS", "ANSWER_SQL", "OPEN_QUESTION", "adopt_answer", "mark_answered"]
