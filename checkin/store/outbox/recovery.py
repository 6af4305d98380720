"""Rows whose send outcome is unknown: a worker that stopped or vanished mid-send, the
reconciler's verdicts on ``in_doubt`` rows, and provider callbacks that prove a send."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from checkin.states import OutboxStatus
from checkin.store import audit
from checkin.store.db import rowcount
from checkin.store.models import OutboxMessage, Patient
from checkin.store.outbox.claims import owned
from checkin.store.outbox.sending import first_status, rank_below

STRANDED = "worker stopped before recording the outcome"


def strand(session: Session, worker_id: str, now: datetime) -> int:
    """A stopping worker's rows: those still ``sending`` (an outcome it could not record) go
    to ``in_doubt``, never back to ``pending``, since they may have gone out; audited
    ``outbox.in_doubt``. Its reconciliation holds are dropped. Returns how many were stranded."""
    stranded = session.execute(
        update(OutboxMessage)
        .where(owned(worker_id))
        .values(
            status=OutboxStatus.IN_DOUBT,
            claimed_by=None,
            lease_until=None,
            status_reason=STRANDED,
            updated_at=now,
        )
        .returning(OutboxMessage.id, OutboxMessage.patient_id)
        .execution_options(synchronize_session=False)
    ).all()
    if stranded:
        refs = dict(
            session.execute(
                select(Patient.id, Patient.reference).where(
                    Patient.id.in_([pid for _, pid in stranded if pid is not None])
                )
            ).all()
        )
        audit.record_outbox_many(
            session.connection(),
            now,
            "outbox.in_doubt",
            [(refs.get(pid) if pid is not None else None, oid) for oid, pid in stranded],
            reason=STRANDED,
        )
    session.execute(  # reconciliation holds
        update(OutboxMessage)
        .where(OutboxMessage.status == OutboxStatus.IN_DOUBT, OutboxMessage.claimed_by == worker_id)
        .values(claimed_by=None, lease_until=None)
        .execution_options(synchronize_session=False)
    )
    return len(stranded)


def mark_lost(
    session: Session, row_id: int, *, worker: str | None, now: datetime, patient_ref: str | None
) -> bool:
    """``sending`` → ``in_doubt`` for a row whose worker's lease ran out mid-send (the worker
    is dead or stuck); audited ``outbox.in_doubt``. False if the worker recorded it meanwhile."""
    changed = rowcount(
        session.execute(
            update(OutboxMessage)
            .where(OutboxMessage.id == row_id, owned(worker or ""), OutboxMessage.lease_until < now)
            .values(
                status=OutboxStatus.IN_DOUBT,
                claimed_by=None,
                lease_until=None,
                next_attempt_at=None,
                status_reason=f"worker {worker} lost during the send"[:200],
                updated_at=now,
            )
            .execution_options(synchronize_session=False)
        )
    )
    if changed:
        audit.record_outbox(
            session, now, "outbox.in_doubt", patient_ref, row_id, worker=worker, reason="lease expired"
        )
    return bool(changed)


# ---- the reconciler's verdicts on in_doubt rows it holds -------------------------------------


def confirm_sent(
    session: Session,
    row_id: int,
    *,
    reconciler: str,
    now: datetime,
    provider_id: str,
    provider_status: str,
    patient_ref: str | None = None,
) -> bool:
    """``in_doubt`` → ``sent``: the provider lists the message; audited ``outbox.sent``."""
    return _resolve(
        session,
        row_id,
        reconciler,
        now,
        "outbox.sent",
        patient_ref,
        detail={"provider_id": provider_id, "via": "reconciliation"},
        status=OutboxStatus.SENT,
        provider_id=provider_id,
        sent_at=now,
        delivery_status=first_status(provider_status),
        status_reason=None,
        next_attempt_at=None,
    )


def resend(
    session: Session,
    row_id: int,
    *,
    reconciler: str,
    now: datetime,
    reason: str,
    patient_ref: str | None = None,
) -> bool:
    """``in_doubt`` → ``pending``: it did not go out (or cannot be known); audited
    ``outbox.resend``."""
    return _resolve(
        session,
        row_id,
        reconciler,
        now,
        "outbox.resend",
        patient_ref,
        status=OutboxStatus.PENDING,
        status_reason=reason[:200],
        next_attempt_at=None,
    )


def abandon(
    session: Session,
    row_id: int,
    *,
    reconciler: str,
    now: datetime,
    reason: str,
    patient_ref: str | None = None,
) -> bool:
    """``in_doubt`` → ``dead``: unconfirmed for too long or too often; audited ``outbox.dead``."""
    return _resolve(
        session,
        row_id,
        reconciler,
        now,
        "outbox.dead",
        patient_ref,
        status=OutboxStatus.DEAD,
        status_reason=reason[:200],
    )


def look_again(session: Session, row_id: int, *, reconciler: str, now: datetime, at: datetime) -> bool:
    """Stay ``in_doubt``; drop the hold and look at the provider again from ``at`` on."""
    return _resolve(session, row_id, reconciler, now, None, None, next_attempt_at=at)


def _resolve(
    session: Session,
    row_id: int,
    reconciler: str,
    now: datetime,
    action: str | None,
    patient_ref: str | None,
    *,
    detail: dict[str, Any] | None = None,
    **values: object,
) -> bool:
    """Compare-and-set an ``in_doubt`` row this reconciler holds, drop the hold, audit."""
    changed = rowcount(
        session.execute(
            update(OutboxMessage)
            .where(
                OutboxMessage.id == row_id,
                OutboxMessage.status == OutboxStatus.IN_DOUBT,
                OutboxMessage.claimed_by == reconciler,
            )
            .values(claimed_by=None, lease_until=None, updated_at=now, **values)
            .execution_options(synchronize_session=False)
        )
    )
    if changed and action is not None:
        ref = patient_ref or _reference(session, row_id)
        reason = values.get("status_reason")
        audit.record_outbox(
            session, now, action, ref, row_id, **({"reason": reason} if reason else {}), **(detail or {})
        )
    return bool(changed)


def _reference(session: Session, row_id: int) -> str | None:
    return session.scalar(
        select(Patient.reference)
        .join(OutboxMessage, OutboxMessage.patient_id == Patient.id)
        .where(OutboxMessage.id == row_id)
    )


# ---- provider status callbacks -------------------------------------------------------------


def sent_via_callback(
    session: Session, row_id: int, *, provider_id: str, now: datetime, patient_ref: str | None
) -> bool:
    """A callback for a row not yet recorded as sent (its worker died before storing the
    receipt) proves the provider took it: ``sent`` with that id, so it is never resent;
    audited ``outbox.sent``."""
    unresolved = (OutboxStatus.SENDING, OutboxStatus.IN_DOUBT, OutboxStatus.PENDING)
    resolved = rowcount(
        session.execute(
            update(OutboxMessage)
            .where(
                OutboxMessage.id == row_id,
                OutboxMessage.provider_id.is_(None),
                OutboxMessage.status.in_(unresolved),
            )
            .values(
                status=OutboxStatus.SENT,
                provider_id=provider_id,
                sent_at=now,
                claimed_by=None,
                lease_until=None,
                next_attempt_at=None,
                status_reason=None,
                updated_at=now,
            )
            .execution_options(synchronize_session=False)
        )
    )
    if resolved:
        audit.record_outbox(
            session, now, "outbox.sent", patient_ref, row_id, provider_id=provider_id, via="status callback"
        )
    return bool(resolved)


def raise_delivery_status(session: Session, row_id: int, status: str, now: datetime) -> None:
    """Move ``delivery_status`` up to ``status`` if it ranks higher (never down: callbacks
    arrive out of order). Not audited: ``delivery_events`` keeps every callback."""
    session.execute(
        update(OutboxMessage)
        .where(OutboxMessage.id == row_id, rank_below(status))
        .values(delivery_status=status, updated_at=now)
        .execution_options(synchronize_session=False)
    )


__all__ = [
    "STRANDED",
    "abandon",
    "confirm_sent",
    "look_again",
    "mark_lost",
    "raise_delivery_status",
    "resend",
    "sent_via_callback",
    "strand",
]
