"""Our answer to a patient's email, queued as an outbox row."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from checkin.states import ChannelName, OutboxStatus
from checkin.store.outbox.unsent import enqueue_new

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
        "channel": ChannelName.EMAIL,
        "message": template[:64],
        "recipient": recipient,
        "subject": subject[:300],
        "body": body,
        "urgent": True,
        "due_at": now,
        "expires_at": now + lifetime,
        "status": OutboxStatus.PENDING,
        "attempts": 0,
        "created_at": now,
        "updated_at": now,
    }
    return enqueue_new(session, values)


__all__ = ["REPLY_STEP", "enqueue_email_reply"]
