"""Recording a provider's receipt: the dispatcher's hot path, one UPDATE and one audit row
per message on the connection its sending thread keeps (``inflight.Kept``: a pool checkout per
message costs a pre-ping round trip on PostgreSQL, and an ORM session more Python than the
write itself)."""

from __future__ import annotations

import logging

from sqlalchemy import Connection

from checkin.channels import Receipt
from checkin.deps import Services
from checkin.outbound.inflight import Kept
from checkin.outbound.recheck import Prepared
from checkin.store import outbox

log = logging.getLogger(__name__)
ops = logging.getLogger("checkin.ops")


def record(kept: Kept, p: Prepared, receipt: Receipt, worker_id: str, services: Services) -> None:
    """Record ``receipt`` in one transaction on the sending thread's kept connection."""
    with kept.begin() as conn:
        record_sent(conn, p, receipt, worker_id, services)


def record_sent(conn: Connection, p: Prepared, receipt: Receipt, worker_id: str, services: Services) -> None:
    fields = {
        "outbox_id": p.row_id,
        "patient_ref": p.message.reference,
        "channel": p.message.channel,
        "provider_id": receipt.provider_id,
        "attempt": p.attempts,
    }
    recorded = outbox.mark_sent(
        conn,
        p.row_id,
        worker_id=worker_id,
        provider_id=receipt.provider_id,
        provider_status=receipt.status,
        now=services.clock.now(),
        patient_ref=p.patient_ref,
        channel=p.message.channel,
        attempt=p.attempts,
    )
    if recorded is outbox.SentRecord.ALREADY:
        return  # its status callback beat this receipt and already recorded the send
    if recorded is outbox.SentRecord.CONFLICT:
        ops.error(
            "sent, but another worker holds the row; a duplicate is possible",
            extra={"event": "outbox.sent_conflict", **fields},
        )
    log.info("outbox row sent", extra={"event": "outbox.sent", **fields})


def record_sent_unrecorded(
    services: Services, p: Prepared, receipt: Receipt, worker_id: str, why: str
) -> None:
    """The message went out but its receipt cannot be stored: record the bare fact (left
    ``sending``, the row would be reconciled and an email resent), and tell ops."""
    ops.error(
        "sent, but the receipt could not be stored; marking it sent without it",
        extra={
            "event": "outbox.receipt_lost",
            "outbox_id": p.row_id,
            "patient_ref": p.message.reference,
            "provider_id": receipt.provider_id,
            "error": why,
        },
    )
    with services.sessions() as session, session.begin():
        outbox.mark_sent_unrecorded(session, p.row_id, worker_id=worker_id, now=services.clock.now(), why=why)


__all__ = ["record", "record_sent", "record_sent_unrecorded"]
