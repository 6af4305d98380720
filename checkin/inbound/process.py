"""Process one inbound reply (SMS, or the email check-in web form): dedupe, keywords, match,
triage, alert, safety reply. The web layer verifies and parses; everything after is here.

Contract of ``process`` (and ``handle_sms``, which wraps it in a transaction):

- **Once per message id.** The row is inserted with ``ON CONFLICT (message_sid) DO NOTHING``
  (both dialects). A replay, sequential or concurrent, finds the conflict and returns
  ``duplicate=True`` with no reply text: it is answered (empty TwiML) but not processed twice,
  and the patient is not texted twice. The insert and all that follows are one transaction, so
  a crash halfway leaves nothing and Twilio's retry processes it afresh.
- **Who sent it.** Patients whose ``phone`` equals the E.164 ``From``. Keywords apply to all of
  them (an opt-out is about the phone). For content: no enrolled patient → generic reply, no
  patient information; two or more → not guessed: stored, a ``contact_problem`` alert on each,
  generic reply.
- **Keywords** (``checkin.core.keywords``): STOP opts out at once and holds pending SMS rows;
  START resumes and releases held rows that have not expired; HELP answers with the clinic's
  name and phone. An opt-out *candidate* ("stop texting me") pauses SMS the same way as STOP and
  opens a ``contact_problem`` alert so a person confirms (fail safe: nothing more is sent until
  START or staff resume).
- **Content**: matched to the latest open question (``checkin.core.replies``), triaged with its
  ``ask`` as context, flags/severity/assessment stored on the row, question ``answered_at``
  set, alert opened or joined (``checkin.alerts.lifecycle``), safety reply chosen. An ambiguous answer
  gets one follow-up question, recorded as an outbox row (step ``followup``, status ``sent``,
  same ``ask``) so the next reply matches it, and so it is never followed up again.
- **Audit**: one ``inbound.received`` and one ``reply.sent`` row per processed message (ids,
  keyword, flags, severity, template; never text or phone).

Raises only what the database raises (``OperationalError`` when it is unreachable or locked
past its busy timeout): the web layer answers 503 so Twilio may retry.
"""

from __future__ import annotations

import logging
from contextlib import AbstractContextManager, nullcontext
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy.orm import Session

from checkin.config import Settings
from checkin.content.render import Renderer
from checkin.inbound import lookup
from checkin.inbound.handling import Handling
from checkin.inbound.message import (
    MAX_BODY_CHARS,
    Assess,
    InboundResult,
    InboundSms,
    default_assess,
    storable,
)
from checkin.inbound.statements import insert_once
from checkin.store.db import again_if_disconnected
from checkin.store.models import InboundMessage

if TYPE_CHECKING:
    from checkin.deps import Services

__all__ = [
    "MAX_BODY_CHARS",
    "Assess",
    "InboundResult",
    "InboundSms",
    "default_assess",
    "handle_sms",
    "insert_once",
    "process",
    "storable",
]

log = logging.getLogger(__name__)


def handle_sms(
    services: Services,
    msg: InboundSms,
    now: datetime,
    *,
    assess: Assess | None = None,
    write_lock: AbstractContextManager[Any] | None = None,
) -> InboundResult:
    """``process`` in its own transaction (committed on return).

    ``write_lock``: on SQLite the web app passes one process-wide lock, so its threads queue
    for the database's single write lock in Python rather than in SQLite's busy handler, which
    sleeps in steps of up to 100 ms and so turns a 2 ms wait into a 100 ms one. Other processes
    (the worker) still meet the busy timeout, as R6b requires.

    A connection found dead (PostgreSQL restarted; the web processes do not ping on checkout,
    ADR 0020) fails the transaction: it is run once more, on a fresh connection. Nothing of the
    first attempt was committed, or, if the connection died while COMMIT was answered, the
    message is stored and the second attempt finds it as a replay (as Twilio's own retry would)."""

    def attempt() -> InboundResult:
        with write_lock or nullcontext(), services.sessions.begin() as session:
            return process(
                session, msg, now=now, settings=services.settings, renderer=services.renderer, assess=assess
            )

    return again_if_disconnected(attempt, message_sid=msg.message_sid)


def process(
    session: Session,
    msg: InboundSms,
    *,
    now: datetime,
    settings: Settings,
    renderer: Renderer,
    assess: Assess | None = None,
) -> InboundResult:
    """Process ``msg`` inside the caller's transaction (see the module docstring)."""
    inbound_id, found = lookup.receive(session, msg, now)
    if inbound_id is None:
        log.info("inbound replay ignored", extra={"message_sid": msg.message_sid})
        return InboundResult(reply_text=None, duplicate=True)
    # The row's outcome is collected on a transient (never added) object and written with one
    # UPDATE in ``_reply``: cheaper than the ORM's unit of work, which matters at 200 replies/s.
    inbound = InboundMessage(
        id=inbound_id,
        message_sid=msg.message_sid,
        channel=msg.channel,
        patient_id=None,
        enrollment_id=None,
        outbox_id=msg.outbox_id,
        keyword=None,
        severity=None,
        flags=[],
        assessment=None,
        processed_at=now,
    )
    ctx = Handling(session, inbound, msg, now, settings, renderer, assess or default_assess())
    if msg.outbox_id is not None:
        return ctx.web_answer(msg.outbox_id)
    return ctx.sms(found)
