"""The outbox's state machine below the dispatcher: claiming due rows, leases, backoff, and
the small shared writes (expiry sweep, email fallback, insert-or-ignore).

States (``checkin.store.models``)::

    pending ─claim─► sending ─receipt──────► sent
       ▲               ├─transient error───► pending (next_attempt_at = backoff), dead after the limit
       │               ├─ambiguous error───► in_doubt ─reconcile─► sent | pending (one resend) | dead
       │               ├─permanent error───► dead | held (21610: the patient texted STOP)
       │               └─re-check at send──► skipped | held | cancelled | pending (send window)
       └──release (stop, worker shutdown)──┘

Every claim is committed before any provider call, and every later write to a claimed row is
a compare-and-set on ``status='sending' AND claimed_by=<this worker>``: a worker that lost its
lease (it was presumed dead and its row reconciled) can never overwrite what another decided.

Functions here take an open ``Session`` and never commit: the caller owns the transaction.
"""

from __future__ import annotations

import os
import random
import socket
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import ColumnElement, Connection, Table, and_, func, insert, or_, select, update
from sqlalchemy.orm import Session

from checkin.store import audit
from checkin.store.models import (
    OUTBOX_IN_DOUBT,
    OUTBOX_PENDING,
    OUTBOX_SENDING,
    OUTBOX_SKIPPED,
    OUTBOX_UNSENT,
    OutboxMessage,
    Patient,
    Worker,
)


@dataclass(frozen=True)
class Policy:
    """Timings of claiming, retrying and reconciling. Tests shorten them; production keeps
    the defaults."""

    lease: timedelta = timedelta(seconds=60)  # a claimed row is ours this long, renewed per send
    max_attempts: int = 8  # provider calls per row before it is dead-lettered
    backoff_base: timedelta = timedelta(seconds=30)
    backoff_cap: timedelta = timedelta(hours=1)
    # A worker whose heartbeat is older than this is presumed dead (procrastinate uses 30 s).
    stale_after: timedelta = timedelta(seconds=30)
    # A lease this far past its end is taken back even from a worker that still beats: its
    # dispatch thread is stuck. (Its own later writes then fail their compare-and-set.)
    orphan_after: timedelta = timedelta(minutes=10)
    # Twilio lists a message only once it has a DateSent; until this long after the attempt,
    # "not in the list" does not yet mean "not sent".
    settle: timedelta = timedelta(seconds=60)
    lookback: timedelta = timedelta(minutes=2)  # list the provider from last attempt minus this
    give_up: timedelta = timedelta(hours=24)  # unresolved in_doubt this long after the attempt: dead


DEFAULT_POLICY = Policy()


def backoff(attempts: int, policy: Policy, rng: random.Random, retry_after: float | None = None) -> timedelta:
    """Delay before the next attempt after ``attempts`` failed ones.

    Exponential with full jitter between ``backoff_base`` and ``base * 2**(attempts-1)``
    (capped at ``backoff_cap``), and never less than the provider's ``retry_after``. The floor
    at ``base`` keeps a burst of failures from retrying within seconds; the jitter spreads a
    9:00 wave that failed together so it does not retry together.
    """
    base = policy.backoff_base.total_seconds()
    ceiling = min(policy.backoff_cap.total_seconds(), base * 2 ** max(attempts - 1, 0))
    delay = rng.uniform(base, max(base, ceiling))
    return timedelta(seconds=max(delay, retry_after or 0.0))


# ---- claiming ------------------------------------------------------------------------------


def due(now: datetime) -> ColumnElement[bool]:
    """Rows the dispatcher may claim at ``now``."""
    return and_(
        OutboxMessage.status == OUTBOX_PENDING,
        OutboxMessage.due_at <= now,
        or_(OutboxMessage.next_attempt_at.is_(None), OutboxMessage.next_attempt_at <= now),
    )


def owned(worker_id: str) -> ColumnElement[bool]:
    """The compare-and-set guard of every write to a row this worker claimed for sending."""
    return and_(OutboxMessage.status == OUTBOX_SENDING, OutboxMessage.claimed_by == worker_id)


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
            "status": OUTBOX_SENDING,
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
    result = session.execute(
        update(OutboxMessage)
        .where(OutboxMessage.id.in_(ids), owned(worker_id))
        .values(
            status=OUTBOX_PENDING,
            claimed_by=None,
            lease_until=None,
            # The claim counted an attempt (so attempts >= 1 here) that never happened.
            attempts=OutboxMessage.attempts - 1,
            updated_at=now,
        )
        .execution_options(synchronize_session=False)
    )
    return int(result.rowcount)  # type: ignore[attr-defined]


def renew(session: Session, row_id: int, *, worker_id: str, now: datetime, lease: timedelta) -> bool:
    """Extend this worker's lease on a row just before its provider call; False if the row is
    no longer ours (it was reconciled while we waited)."""
    result = session.execute(
        update(OutboxMessage)
        .where(OutboxMessage.id == row_id, owned(worker_id))
        .values(lease_until=now + lease, updated_at=now)
        .execution_options(synchronize_session=False)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


# ---- workers -------------------------------------------------------------------------------


def this_host() -> str:
    return socket.gethostname()[:128]


def pid_alive(pid: int) -> bool:
    """Whether a process with this pid exists on this machine."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, owned by someone else
    return True


def live_workers(session: Session, now: datetime, stale_after: timedelta) -> dict[str, Worker]:
    """Workers presumed alive: not stopped, heartbeat fresher than ``stale_after``, and, for
    workers on this machine, a process with their pid still exists (a worker killed with
    SIGKILL and restarted at once need not wait for its old heartbeat to go stale)."""
    host = this_host()
    alive: dict[str, Worker] = {}
    for w in session.scalars(
        select(Worker).where(Worker.stopped_at.is_(None), Worker.heartbeat_at > now - stale_after)
    ):
        if w.host == host and w.pid != os.getpid() and not pid_alive(w.pid):
            continue
        alive[w.id] = w
    return alive


# ---- sweeps --------------------------------------------------------------------------------


def expire_stale(session: Session, now: datetime) -> int:
    """Mark unsent rows whose ``expires_at`` has passed ``skipped`` ("expired"), with one
    audit row each; returns how many. Never sends: a late reminder is worse than none."""
    rows = session.execute(
        select(OutboxMessage.id, Patient.reference)
        .outerjoin(Patient, Patient.id == OutboxMessage.patient_id)
        .where(OutboxMessage.status.in_(OUTBOX_UNSENT), OutboxMessage.expires_at <= now)
    ).all()
    if not rows:
        return 0
    ids = [r[0] for r in rows]
    for chunk in _chunks(ids, 500):
        session.execute(
            update(OutboxMessage)
            .where(OutboxMessage.id.in_(chunk), OutboxMessage.status.in_(OUTBOX_UNSENT))
            .values(
                status=OUTBOX_SKIPPED,
                status_reason="expired",
                claimed_by=None,
                lease_until=None,
                updated_at=now,
            )
            .execution_options(synchronize_session=False)
        )
    audit_many(
        session.connection(), now, "outbox.skipped", [(ref, oid) for oid, ref in rows], reason="expired"
    )
    return len(ids)


def audit_many(
    conn: Connection, now: datetime, action: str, subjects: Iterable[tuple[str | None, int]], **detail: Any
) -> None:
    """One audit row per (patient reference, outbox id), inserted in one Core statement (the
    same rows ``audit.record`` writes, without an ORM flush: the dispatcher's hot path)."""
    from checkin.store.models import AuditEvent

    values = [
        {
            "at": now,
            "actor": "system",
            "action": action,
            "patient_ref": ref,
            "subject": f"outbox:{oid}",
            "detail": detail,
        }
        for ref, oid in subjects
    ]
    if values:
        conn.execute(insert(cast(Table, AuditEvent.__table__)), values)


def overdue_count(session: Session, now: datetime) -> int:
    """Pending rows already due at ``now`` and not yet expired: what a restarted worker owes."""
    return int(
        session.scalar(
            select(func.count())
            .select_from(OutboxMessage)
            .where(
                OutboxMessage.status == OUTBOX_PENDING,
                OutboxMessage.due_at <= now,
                OutboxMessage.expires_at > now,
            )
        )
        or 0
    )


# ---- shared writes -------------------------------------------------------------------------

PROVIDER_ID_LENGTH = 64  # outbox.provider_id and delivery_events.provider_id are String(64)


def fit_provider_id(provider_id: str) -> str:
    """``provider_id`` as stored: unchanged when it fits the column, else its first 51
    characters, ``~`` and 12 hex digits of its SHA-256 (still unique and stable).

    Twilio SIDs are 34 characters; our email Message-IDs (``<time.pid.random.outbox-N@domain>``)
    often exceed 64, and PostgreSQL refuses an over-long value, which would leave a message
    that did go out looking unsent. The full id goes to the audit log.
    """
    if len(provider_id) <= PROVIDER_ID_LENGTH:
        return provider_id
    import hashlib

    digest = hashlib.sha256(provider_id.encode()).hexdigest()[:12]
    return f"{provider_id[: PROVIDER_ID_LENGTH - 13]}~{digest}"


def insert_ignore(session: Session, model: Any, values: Mapping[str, Any], conflict: Sequence[str]) -> bool:
    """``INSERT … ON CONFLICT (conflict) DO NOTHING`` on SQLite and PostgreSQL; True if a row
    was inserted. Never check-then-insert: two workers (or two webhook deliveries) racing on
    the same key would both pass the check."""
    if session.get_bind().dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as dialect_insert
    else:
        from sqlalchemy.dialects.sqlite import insert as dialect_insert  # type: ignore[assignment]
    stmt = dialect_insert(model).values(**values).on_conflict_do_nothing(index_elements=list(conflict))
    # RETURNING, not rowcount: SQLAlchemy 2.1 adds RETURNING <pk> to this insert on PostgreSQL
    # by itself, and then rowcount is -1 whether or not a row went in.
    returning = stmt.returning(*model.__table__.primary_key.columns)
    return session.execute(returning).first() is not None


def plan_email_fallback(
    session: Session, row: OutboxMessage, patient: Patient, *, now: datetime, email_template_exists: bool
) -> int | None:
    """When an SMS cannot reach the patient (bad or landline number), plan the same step and
    occurrence by email, if the patient has an address and consented, the email template
    exists, the row is a timeline step and it has not expired. Returns the new row's id, or
    None (also when the email row already exists: its key is unique)."""
    if (
        row.channel != "sms"
        or row.enrollment_id is None
        or row.body is not None
        or not patient.email
        or not patient.email_consent
        or not email_template_exists
        or now >= row.expires_at
    ):
        return None
    key = f"{row.enrollment_id}:{row.step_id}:{row.occurrence}:email"
    values = {
        "key": key,
        "enrollment_id": row.enrollment_id,
        "patient_id": row.patient_id,
        "step_id": row.step_id,
        "occurrence": row.occurrence,
        "channel": "email",
        "message": row.message,
        "ask": row.ask,
        "urgent": row.urgent,
        "due_at": now,
        "expires_at": row.expires_at,
        "remind_after_s": row.remind_after_s,
        "missed_after_s": row.missed_after_s,
        "status": OUTBOX_PENDING,
        "attempts": 0,
        "created_at": now,
        "updated_at": now,
    }
    if not insert_ignore(session, OutboxMessage, values, ["key"]):
        return None
    new_id = session.scalar(select(OutboxMessage.id).where(OutboxMessage.key == key))
    audit.record(
        session,
        at=now,
        actor="system",
        action="outbox.fallback_planned",
        patient_ref=patient.reference,
        subject=f"outbox:{new_id}",
        instead_of=f"outbox:{row.id}",
        channel="email",
    )
    return new_id


REPLY_STEP = "reply"  # outbox step_id of an answer to a patient's email


def enqueue_email_reply(
    session: Session,
    *,
    key: str,
    patient_id: int | None,
    recipient: str | None,
    subject: str,
    body: str,
    template: str,
    now: datetime,
    lifetime: timedelta = timedelta(hours=24),
) -> int | None:
    """Queue our answer to an inbound email as a pre-rendered, urgent row (it goes out whatever
    the hour, like a safety reply by SMS). ``key`` makes it once per inbound message; the new
    row's id, or None when it was already queued. ``recipient`` None means the patient's
    address, checked again at send time (consent, address change)."""
    values = {
        "key": key,
        "enrollment_id": None,  # a withdrawn patient who writes "I can't breathe" is still answered
        "patient_id": patient_id,
        "step_id": REPLY_STEP,
        "occurrence": 0,
        "channel": "email",
        "message": template[:64],
        "recipient": recipient,
        "subject": subject[:300],
        "body": body,
        "urgent": True,
        "due_at": now,
        "expires_at": now + lifetime,
        "status": OUTBOX_PENDING,
        "attempts": 0,
        "created_at": now,
        "updated_at": now,
    }
    if not insert_ignore(session, OutboxMessage, values, ["key"]):
        return None
    return session.scalar(select(OutboxMessage.id).where(OutboxMessage.key == key))


def in_doubt_reconcilable(now: datetime) -> ColumnElement[bool]:
    """``in_doubt`` rows whose next look is due and that no reconciler holds."""
    return and_(
        OutboxMessage.status == OUTBOX_IN_DOUBT,
        or_(OutboxMessage.next_attempt_at.is_(None), OutboxMessage.next_attempt_at <= now),
        or_(OutboxMessage.lease_until.is_(None), OutboxMessage.lease_until < now),
    )


def _chunks(items: Sequence[Any], size: int) -> Iterable[Sequence[Any]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


__all__ = [
    "DEFAULT_POLICY",
    "Policy",
    "audit_many",
    "backoff",
    "claim",
    "due",
    "enqueue_email_reply",
    "expire_stale",
    "fit_provider_id",
    "in_doubt_reconcilable",
    "insert_ignore",
    "live_workers",
    "overdue_count",
    "owned",
    "plan_email_fallback",
    "release",
    "renew",
]
