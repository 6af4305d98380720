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

from sqlalchemy import select
from sqlalchemy.orm import Session

from checkin.alerts import lifecycle as alerts
from checkin.errors import Refusal
from checkin.states import OutboxStatus
from checkin.store import outbox
from checkin.store.db import insert_ignore
from checkin.store.models import (
    DeliveryEvent,
    OutboxMessage,
    Patient,
)

log = logging.getLogger(__name__)

FAILED = frozenset({"failed", "undelivered"})


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
    ``failed``/``undelivered`` with a code the SMS channel reads as ``Refusal.UNREACHABLE`` opens a
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
        log.info(
            "status callback for an unknown message",
            extra={"event": "delivery.unknown_message", "provider_id": provider_id, "status": status},
        )
        return StatusRecorded(new=new, outbox_id=None, delivery_status=None)

    unresolved = (OutboxStatus.SENDING, OutboxStatus.IN_DOUBT, OutboxStatus.PENDING)
    if row.provider_id is None and row.status in unresolved:
        outbox.sent_via_callback(
            session, row.id, provider_id=provider_id, now=now, patient_ref=_ref(session, row.patient_id)
        )
    if status in outbox.RANK:
        outbox.raise_delivery_status(session, row.id, status, now)
    current = session.scalar(select(OutboxMessage.delivery_status).where(OutboxMessage.id == row.id))

    alert_id = None
    if new and status in FAILED and _unreachable(code) and row.patient_id is not None:
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
    log.warning(
        "contact problem alert opened",
        extra={
            "event": "alert.contact_problem",
            "alert_id": change.alert.id,
            "patient_ref": _ref(session, patient_id),
            "reason": reason,
        },
    )
    return change.alert.id


def _unreachable(error_code: str | None) -> bool:
    # Only the SMS channel knows what its provider's codes mean (and only SMS gets status
    # callbacks); imported here so that importing this module does not load the Twilio library.
    from checkin.channels.twilio_errors import delivery_refusal

    return delivery_refusal(error_code) is Refusal.UNREACHABLE


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
    "StatusRecorded",
    "open_contact_problem",
    "record_status",
]
