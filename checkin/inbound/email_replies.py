"""Process one email a patient sent in reply to a check-in email: match, triage, answer.

Contract of ``handle_email`` (one transaction, committed on return):

- **Matched only by what we issued.** The reply token of the plus-address the email was sent
  to (an HMAC of the outbox id, ``checkin.tokens``), else an ``In-Reply-To``/``References``
  Message-ID equal to one we sent (stored as the row's ``provider_id``). The ``From`` address is
  never used to pick a patient: it is trivially forged.
- **The question.** The emailed row itself when it asked something still open; else the
  patient's latest open question (a follow-up we asked in an earlier answer, say), as for SMS;
  else none (a reply to a reminder is still triaged and reaches the care team).
- **Triaged and answered like SMS**: ``checkin.inbound.process`` does the rest (dedupe, alert,
  follow-up, audit). Our answer is queued as an urgent outbox row to the patient's address on
  file, never to ``From``.
- **Unknown senders** (no valid token, no Message-ID of ours): the text is stored and triaged;
  they get an answer with no patient information, and only when the text reads urgent or
  emergency (call the clinic / 911): answering every unmatched email would send mail to
  whoever a spammer forged.
- **Once per Message-ID** (the inbound row's ``message_sid`` is ``email:<sha256>``): a relay
  that delivers the same email twice gets ``duplicate``; nothing is triaged or answered again.
- **Automatic mail** (out-of-office, bounces, lists) is ignored: no row, no answer.

Raises what the database raises (``OperationalError``): the SMTP receiver then answers 451 so
the relay keeps the email and retries.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import select
from sqlalchemy.orm import Session

from checkin.core import replies
from checkin.inbound.email_parse import ParsedReply, parse_reply
from checkin.inbound.process import Assess, InboundResult, InboundSms, process
from checkin.states import ChannelName, OutboxStatus
from checkin.store import outbox
from checkin.store.models import InboundMessage, OutboxMessage
from checkin.tokens import read_reply_token

if TYPE_CHECKING:
    from checkin.deps import Services

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class EmailOutcome:
    status: str  # processed | duplicate | ignored
    matched: str = "none"  # patient | unknown | none
    result: InboundResult | None = None
    reply_outbox_id: int | None = None
    reason: str | None = None  # why it was ignored


def handle_email(
    services: Services,
    raw: bytes,
    *,
    envelope_to: Sequence[str] = (),
    now: datetime,
    assess: Assess | None = None,
) -> EmailOutcome:
    """Parse, match, process and queue the answer to one inbound email (see the module doc)."""
    settings = services.settings
    parsed = parse_reply(raw, envelope_to=tuple(envelope_to), reply_base=settings.email_reply_to)
    if parsed.automatic:
        log.info("automatic email ignored", extra={"event": "email.ignored", "why": parsed.automatic})
        return EmailOutcome("ignored", reason=parsed.automatic)
    with services.sessions.begin() as session:
        row = _our_message(session, parsed, settings.secret_key)
        question_id = _question_for(session, row, now) if row is not None else None
        msg = InboundSms(
            message_sid=parsed.dedupe_key,
            from_phone=None,
            body=parsed.text or _attachment_note(parsed),
            channel=ChannelName.EMAIL,
            outbox_id=question_id,
        )
        result = process(session, msg, now=now, settings=settings, renderer=services.renderer, assess=assess)
        if result.duplicate:
            return EmailOutcome("duplicate")
        matched = "patient" if row is not None and result.patient_ref else "unknown"
        reply_id = _queue_answer(session, parsed, result, row, now)
    log.info(
        "email reply processed",
        extra={
            "event": "email.processed",
            "patient_ref": result.patient_ref,
            "inbound_id": result.inbound_id,
            "reply_outbox_id": reply_id,
        },
    )
    return EmailOutcome("processed", matched=matched, result=result, reply_outbox_id=reply_id)


def _attachment_note(parsed: ParsedReply) -> str:
    """What the record shows for an email with no text: a photo alone must not look empty."""
    if not parsed.attachments:
        return ""
    return f"[no text; {parsed.attachments} attachment(s) not kept: ask the patient to describe it]"


def _our_message(session: Session, parsed: ParsedReply, secret: str) -> OutboxMessage | None:
    """The patient email this one replies to: by a verified token, else by our Message-ID."""
    for token in parsed.tokens:
        outbox_id = read_reply_token(secret, token)
        row = session.get(OutboxMessage, outbox_id) if outbox_id is not None else None
        if row is not None and row.patient_id is not None and row.channel == ChannelName.EMAIL:
            return row
    for message_id in parsed.replied_to:
        row = session.scalar(
            select(OutboxMessage).where(
                OutboxMessage.provider_id == outbox.fit_provider_id(message_id),
                OutboxMessage.channel == ChannelName.EMAIL,
                OutboxMessage.patient_id.is_not(None),
                OutboxMessage.recipient.is_(None),  # sent to the patient, not to a nurse
            )
        )
        if row is not None:
            return row
    return None


def _question_for(session: Session, row: OutboxMessage, now: datetime) -> int:
    """The row whose question the reply answers (``row`` itself when it is one still open),
    else ``row``: ``process`` then matches the patient with no question."""
    if row.ask and row.answered_at is None:
        return row.id
    since = now - replies.QUESTION_WINDOW
    open_rows = session.execute(
        select(OutboxMessage.id, OutboxMessage.ask, OutboxMessage.sent_at, OutboxMessage.step_id).where(
            OutboxMessage.patient_id == row.patient_id,
            OutboxMessage.ask.is_not(None),
            OutboxMessage.status == OutboxStatus.SENT,
            OutboxMessage.answered_at.is_(None),
            OutboxMessage.sent_at >= since,
        )
    ).all()
    picked = replies.pick_question(
        (
            replies.OpenQuestion(r.id, r.ask or "general", r.sent_at, r.step_id == replies.FOLLOWUP_STEP)
            for r in open_rows
        ),
        now=now,
    )
    return picked.outbox_id if picked is not None else row.id


def _queue_answer(
    session: Session,
    parsed: ParsedReply,
    result: InboundResult,
    row: OutboxMessage | None,
    now: datetime,
) -> int | None:
    if not result.reply_text or result.inbound_id is None:
        return None
    key = f"email-reply:{result.inbound_id}"
    template = result.reply_template or "reply"
    if row is not None and result.patient_ref:
        inbound = session.get(InboundMessage, result.inbound_id)
        subject = parsed.subject if parsed.subject.lower().startswith("re:") else f"Re: {parsed.subject}"
        return outbox.enqueue_email_reply(
            session,
            key=key,
            patient_id=inbound.patient_id if inbound is not None else row.patient_id,
            recipient=None,
            subject=subject.strip() or "Re:",
            body=result.reply_text,
            template=template,
            now=now,
        )
    alarming = template in (replies.REPLY_EMERGENCY, replies.REPLY_SELF_HARM) or (
        template == replies.REPLY_UNKNOWN and result.severity == "urgent"
    )
    if not alarming or not parsed.sender:
        return None
    return outbox.enqueue_email_reply(
        session,
        key=key,
        patient_id=None,
        recipient=parsed.sender,
        subject="Re: your message",
        body=result.reply_text,
        template=template,
        now=now,
    )


__all__ = ["EmailOutcome", "handle_email"]
