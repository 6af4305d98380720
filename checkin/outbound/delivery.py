"""Provider status callbacks (Twilio's StatusCallback), recorded append-only, and the
contact-problem alert both they and the dispatcher open.

Twilio posts several callbacks per message (queued, sent, delivered …), may repeat them and
does not send them in order. So each (provider id, status) is stored once
(``INSERT … ON CONFLICT DO NOTHING``) and ``outbox.delivery_status`` only ever moves up one
total order::

    queued/accepted/scheduled < sending < sent < delivered/read < undelivered/canceled < failed

The order makes the result a function of the *set* of callbacks, not of their arrival order:
``delivered`` before ``sent`` ends ``delivered``; a failure is terminal and never overwritten by
a late ``sent``; ``failed`` and ``delivered`` for one multi-segment message end ``failed``
(every failure is also kept in ``delivery_events``). The update is a single conditional
``UPDATE … WHERE rank(current) < rank(new)``, so two callbacks racing cannot lose the higher.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import ColumnElement, case, or_, select, update
from sqlalchemy.orm import InstrumentedAttribute, Session

from checkin.alerts import lifecycle as alerts
from checkin.store import audit
from checkin.store.models import (
    OUTBOX_IN_DOUBT,
    OUTBOX_PENDING,
    OUTBOX_SENDING,
    OUTBOX_SENT,
    DeliveryEvent,
    OutboxMessage,
    Patient,
)
from checkin.store.outbox import insert_ignore

log = logging.getLogger(__name__)

RANK: dict[str, int] = {
    "accepted": 0,
    "scheduled": 0,
    "queued": 0,
    "printed": 0,
    "sending": 1,
    "sent": 2,
    "delivered": 3,
    "read": 3,
    "partially_delivered": 3,
    "undelivered": 4,
    "canceled": 4,
    "failed": 5,
}
FAILED = frozenset({"failed", "undelivered"})
# Delivery errors that mean the number itself does not work: unreachable handset, unknown
# destination, landline or unreachable carrier. A nurse should confirm the patient's number.
CONTACT_PROBLEM_CODES = frozenset({"30003", "30005", "30006"})


def rank_of(status: ColumnElement[str | None] | InstrumentedAttribute[str | None]) -> ColumnElement[int]:
    """SQL for the rank of a status column (-1 for statuses not in ``RANK``)."""
    return case(RANK, value=status, else_=-1)


def rank_below(new_status: str) -> ColumnElement[bool]:
    """True for rows whose ``delivery_status`` ranks below ``new_status`` (or is unset)."""
    return or_(
        OutboxMessage.delivery_status.is_(None), rank_of(OutboxMessage.delivery_status) < RANK[new_status]
    )


@dataclass(frozen=True)
class StatusRecorded:
    new: bool  # False: this (provider id, status) was already recorded
    outbox_id: int | None  # the row it belongs to, if known
    delivery_status: str | None  # the row's status after this callback
    alert_id: int | None = None  # a contact-problem alert opened by it


def record_status(
    session: Session,
    provider_id: str,
    outbox_id: int | None,
    status: str,
    error_code: str | None,
    now: datetime,
) -> StatusRecorded:
    """Record one status callback in the caller's transaction (the caller commits).

    ``outbox_id`` comes from our callback URL and may be None (or wrong: it is caller input);
    the row is found by it only when the row's provider id is unset or matches, else by
    ``provider_id``. A callback for a row still ``sending``/``in_doubt`` without a provider id
    proves the provider took the message (a worker died before recording the receipt): the row
    becomes ``sent`` with that id, so reconciliation will not resend it.
    ``failed``/``undelivered`` with a code in ``CONTACT_PROBLEM_CODES`` opens a
    ``contact_problem`` alert for the patient unless one is open.
    """
    status = status.strip().lower()
    code = (error_code or "").strip() or None
    row = _find_row(session, provider_id, outbox_id)
    new = insert_ignore(
        session,
        DeliveryEvent,
        {
            "provider_id": provider_id,
            "outbox_id": row.id if row is not None else None,
            "status": status[:16],
            "error_code": code,
            "received_at": now,
        },
        ["provider_id", "status"],
    )
    if row is None:
        log.info("status callback for an unknown message provider_id=%s status=%s", provider_id, status)
        return StatusRecorded(new=new, outbox_id=None, delivery_status=None)

    if row.provider_id is None and row.status in (OUTBOX_SENDING, OUTBOX_IN_DOUBT, OUTBOX_PENDING):
        resolved = session.execute(
            update(OutboxMessage)
            .where(
                OutboxMessage.id == row.id,
                OutboxMessage.provider_id.is_(None),
                OutboxMessage.status.in_((OUTBOX_SENDING, OUTBOX_IN_DOUBT, OUTBOX_PENDING)),
            )
            .values(
                status=OUTBOX_SENT,
                provider_id=provider_id,
                sent_at=now,
                claimed_by=None,
                lease_until=None,
                next_attempt_at=None,
                status_reason=None,
                updated_at=now,
            )
            .execution_options(synchronize_session=False)
        ).rowcount  # type: ignore[attr-defined]
        if resolved:
            audit.record(
                session,
                at=now,
                actor="system",
                action="outbox.sent",
                patient_ref=_ref(session, row.patient_id),
                subject=f"outbox:{row.id}",
                provider_id=provider_id,
                via="status callback",
            )

    if status in RANK:
        session.execute(
            update(OutboxMessage)
            .where(OutboxMessage.id == row.id, rank_below(status))
            .values(delivery_status=status, updated_at=now)
            .execution_options(synchronize_session=False)
        )
    current = session.scalar(select(OutboxMessage.delivery_status).where(OutboxMessage.id == row.id))

    alert_id = None
    if new and status in FAILED and code in CONTACT_PROBLEM_CODES and row.patient_id is not None:
        alert_id = open_contact_problem(
            session, row.patient_id, row.enrollment_id, now=now, reason=f"SMS {status} with error {code}"
        )
    return StatusRecorded(new=new, outbox_id=row.id, delivery_status=current, alert_id=alert_id)


def open_contact_problem(
    session: Session, patient_id: int, enrollment_id: int | None, *, now: datetime, reason: str
) -> int | None:
    """Open a ``contact_problem`` alert (severity ``watch``) for the patient, or join the
    unresolved one (``checkin.alerts.lifecycle``, which owns alerts); returns the new alert's id, or None
    when it joined one. ``reason`` goes to the audit log and must hold no phone number or
    message text. The escalation sweep sends its notification (this caller has no renderer)."""
    change = alerts.open_contact_problem_for(
        session, patient_id, enrollment_id, now=now, reason="undeliverable", detail=reason
    )
    if change is None or not change.opened:
        return None
    log.warning("contact problem alert=%s ref=%s: %s", change.alert.id, _ref(session, patient_id), reason)
    return change.alert.id


def _find_row(session: Session, provider_id: str, outbox_id: int | None) -> OutboxMessage | None:
    if outbox_id is not None:
        row = session.get(OutboxMessage, outbox_id)
        if row is not None and row.provider_id in (None, provider_id):
            return row
    return session.scalar(select(OutboxMessage).where(OutboxMessage.provider_id == provider_id).limit(1))


def _ref(session: Session, patient_id: int | None) -> str | None:
    if patient_id is None:
        return None
    return session.scalar(select(Patient.reference).where(Patient.id == patient_id))


__all__ = [
    "CONTACT_PROBLEM_CODES",
    "RANK",
    "StatusRecorded",
    "open_contact_problem",
    "rank_below",
    "rank_of",
    "record_status",
]
