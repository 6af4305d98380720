"""Replies stored but not processed (a bug or an outage mid-way) get processed later.

The webhook keeps such a text with ``processed_at`` NULL and answers with the generic
"call 911 if this is an emergency" reply, so nothing is lost; this sweep runs it through
triage, matching and alerts once things work again. Each row is retried in its own
transaction: one that fails again stays as it was, for the next pass (and shows in the log).
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from sqlalchemy import delete, select, update

from checkin.deps import Services
from checkin.inbound import process as inbound
from checkin.store.db import rowcount
from checkin.store.models import InboundMessage

log = logging.getLogger(__name__)

# Leave a reply alone while its own webhook may still be finishing.
SETTLE = timedelta(seconds=30)


def reprocess_once(services: Services, now: datetime, *, limit: int = 50) -> int:
    """Process up to ``limit`` unprocessed replies received before ``now - SETTLE``; returns
    how many were processed. Safe with two workers: the delete-then-insert of each row runs
    under its unique ``message_sid``, so only one transaction can re-create it."""
    with services.sessions() as session:
        rows = session.execute(
            select(
                InboundMessage.id,
                InboundMessage.message_sid,
                InboundMessage.from_phone,
                InboundMessage.body,
                InboundMessage.channel,
                InboundMessage.outbox_id,
                InboundMessage.received_at,
            )
            .where(InboundMessage.processed_at.is_(None), InboundMessage.received_at <= now - SETTLE)
            .order_by(InboundMessage.received_at)
            .limit(limit)
        ).all()
    done = 0
    for row_id, sid, phone, body, channel, outbox_id, received_at in rows:
        msg = inbound.InboundSms(
            message_sid=sid, from_phone=phone, body=body, channel=channel, outbox_id=outbox_id
        )
        try:
            with services.sessions.begin() as session:
                gone = rowcount(
                    session.execute(
                        delete(InboundMessage).where(
                            InboundMessage.id == row_id, InboundMessage.processed_at.is_(None)
                        )
                    )
                )
                if not gone:
                    continue  # another worker took it
                result = inbound.process(
                    session, msg, now=now, settings=services.settings, renderer=services.renderer
                )
                if result.inbound_id is not None:
                    session.execute(
                        update(InboundMessage)
                        .where(InboundMessage.id == result.inbound_id)
                        .values(received_at=received_at)
                    )
            done += 1
        except Exception as exc:  # noqa: BLE001 - keep it for the next pass, keep going
            log.error(
                "reprocessing a stored reply failed",
                extra={
                    "event": "inbound.reprocess_failed",
                    "inbound_id": row_id,
                    "error": type(exc).__name__,
                },
            )
    return done
