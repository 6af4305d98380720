from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from checkin.store.bulk import insert_outbox_rows
from checkin.store.models import OutboxMessage

NOW = datetime(2026, 3, 1, 15, 0, 0, 123456, tzinfo=UTC)


def row(key: str, due: datetime) -> dict[str, object]:
    return {
        "key": key,
        "step_id": "s",
        "occurrence": 3,
        "channel": "sms",
        "message": "m",
        "ask": None,
        "due_at": due,
        "expires_at": due + timedelta(hours=8),
        "remind_after_s": None,
        "missed_after_s": 3600,
        "status": "pending",
        "attempts": 0,
        "urgent": True,
        "created_at": NOW,
        "updated_at": NOW,
    }


def fetch(session: Session, key: str) -> dict[str, object]:
    r = session.scalars(select(OutboxMessage).where(OutboxMessage.key == key)).one()
    return {c.name: getattr(r, c.key) for c in OutboxMessage.__table__.columns if c.name != "id"}


def test_it_writes_exactly_what_an_orm_insert_writes(session: Session) -> None:
    est = timezone(timedelta(hours=-5))
    due = datetime(2026, 3, 8, 9, 30, tzinfo=est)
    session.execute(insert(OutboxMessage), [row("orm", due)])
    insert_outbox_rows(session, [row("bulk", due)])
    session.commit()
    a, b = fetch(session, "orm"), fetch(session, "bulk")
    a.pop("key"), b.pop("key")
    assert a == b
    assert b["due_at"] == due and b["urgent"] is True


def test_it_keeps_time_order_for_queries(session: Session) -> None:
    # SQLite compares stored datetimes as text: the bulk format must sort like the ORM's.
    early = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
    insert_outbox_rows(session, [row("b", early), row("c", early + timedelta(microseconds=1))])
    session.execute(insert(OutboxMessage), [row("a", early + timedelta(seconds=1))])
    session.commit()
    keys = session.scalars(
        select(OutboxMessage.key).where(OutboxMessage.due_at > early).order_by(OutboxMessage.due_at)
    ).all()
    assert keys == ["c", "a"]


def test_it_does_nothing_for_no_rows(session: Session) -> None:
    insert_outbox_rows(session, [])
    assert session.scalars(select(OutboxMessage)).all() == []
