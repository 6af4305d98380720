"""Claiming due rows under a lease, giving them back, and the queries that pick them."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, and_, func, or_, select, update
from sqlalchemy.orm import Session

from checkin.states import OutboxStatus
from checkin.store.db import rowcount
from checkin.store.models import OutboxMessage


def due(now: datetime) -> ColumnElement[bool]:
    """Rows the dispatcher may claim at ``now``."""
    return and_(
        OutboxMessage.status == OutboxStatus.PENDING,
        OutboxMessage.due_at <= now,
        or_(OutboxMessage.next_attempt_at.is_(None), OutboxMessage.next_attempt_at <= now),
    )


def owned(worker_id: str) -> ColumnElement[bool]:
    """The compare-and-set guard of every write to a row this worker claimed for sending."""
    return and_(OutboxMessage.status == OutboxStatus.SENDING, OutboxMessage.claimed_by == worker_id)


def claim(
    session: Session,
    now: datetime,
    *,
    worker_id: str,
    limit: int,
    lease: timedelta,
    where: ColumnElement[bool] | None = None,
    values: Mapping[str, Any] | None = None,
) -> list[int]:
    """Claim up to ``limit`` rows matching ``where`` (default: due for sending), most urgent
    first, then oldest due; returns their ids. The caller commits at once.

    Default ``values`` mark each row ``sending`` by this worker with a lease, count the attempt
    and stamp ``last_attempt_at`` (reconciliation lists the provider from there).

    PostgreSQL: ``SELECT … FOR UPDATE SKIP LOCKED`` in a CTE feeding ``UPDATE … RETURNING``,
    so concurrent workers take disjoint rows without waiting on each other. SQLite: one
    ``UPDATE … WHERE id IN (SELECT …) AND status = <expected> RETURNING`` under the write lock
    ``BEGIN IMMEDIATE`` took: the compare-and-set of all rows in one statement, instead of one
    ``UPDATE … WHERE id=? AND status='pending'`` round trip per row.
    """
    if where is None:
        where = due(now)
    if values is None:
        values = {
            "status": OutboxStatus.SENDING,
            "attempts": OutboxMessage.attempts + 1,
            "last_attempt_at": now,
        }
    values = {"claimed_by": worker_id, "lease_until": now + lease, "updated_at": now, **values}
    candidates = (
        select(OutboxMessage.id)
        .where(where)
        .order_by(OutboxMessage.urgent.desc(), OutboxMessage.due_at, OutboxMessage.id)
        .limit(limit)
    )
    if session.get_bind().dialect.name == "postgresql":
        picked = candidates.with_for_update(skip_locked=True).cte("picked")
        stmt = update(OutboxMessage).where(OutboxMessage.id == picked.c.id)
    else:
        stmt = update(OutboxMessage).where(OutboxMessage.id.in_(candidates.scalar_subquery()), where)
    return list(session.scalars(stmt.values(**values).returning(OutboxMessage.id)))


def release(session: Session, ids: Sequence[int], *, worker_id: str, now: datetime) -> int:
    """Give claimed-but-unsent rows back (shutdown, or a rate wait interrupted): ``pending``,
    no lease, and the claim's attempt uncounted, since no provider call was made."""
    if not ids:
        return 0
    return _give_back(session, now, OutboxMessage.id.in_(ids), owned(worker_id))


def release_stranded(session: Session, *, worker_id: str, now: datetime) -> int:
    """Give back every row this worker holds in ``sending``, when the caller knows none of
    them is in flight: a claim whose commit reached the database but whose answer was lost
    (the server went away mid-commit) leaves rows claimed that no thread is sending. Waiting
    for the lease and dead-worker recovery would strand them for minutes under a live worker.
    Like ``release``, the claim's attempt is uncounted: no provider call was made."""
    return _give_back(session, now, owned(worker_id))


def _give_back(session: Session, now: datetime, *where: ColumnElement[bool]) -> int:
    """Claimed rows matching ``where`` → ``pending``, no lease; how many."""
    result = session.execute(
        update(OutboxMessage)
        .where(*where)
        .values(
            status=OutboxStatus.PENDING,
            claimed_by=None,
            lease_until=None,
            # The claim counted an attempt (so attempts >= 1 here) that never happened.
            attempts=OutboxMessage.attempts - 1,
            updated_at=now,
        )
        .execution_options(synchronize_session=False)
    )
    return rowcount(result)


def renew(session: Session, row_id: int, *, worker_id: str, now: datetime, lease: timedelta) -> bool:
    """Extend this worker's lease on a row just before its provider call; False if the row is
    no longer ours (it was reconciled while we waited)."""
    result = session.execute(
        update(OutboxMessage)
        .where(OutboxMessage.id == row_id, owned(worker_id))
        .values(lease_until=now + lease, updated_at=now)
        .execution_options(synchronize_session=False)
    )
    return bool(rowcount(result))


def in_doubt_reconcilable(now: datetime) -> ColumnElement[bool]:
    """``in_doubt`` rows whose next look is due and that no reconciler holds."""
    return and_(
        OutboxMessage.status == OutboxStatus.IN_DOUBT,
        or_(OutboxMessage.next_attempt_at.is_(None), OutboxMessage.next_attempt_at <= now),
        or_(OutboxMessage.lease_until.is_(None), OutboxMessage.lease_until < now),
    )


def overdue_count(session: Session, now: datetime) -> int:
    """Pending rows already due at ``now`` and not yet expired: what a restarted worker owes."""
    return int(
        session.scalar(
            select(func.count())
            .select_from(OutboxMessage)
            .where(
                OutboxMessage.status == OutboxStatus.PENDING,
                OutboxMessage.due_at <= now,
                OutboxMessage.expires_at > now,
            )
        )
        or 0
    )


__all__ = [
    "claim",
    "due",
    "in_doubt_reconcilable",
    "overdue_count",
    "owned",
    "release",
    "release_stranded",
    "renew",
]
