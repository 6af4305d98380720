"""One dispatch step: claim due outbox rows, re-check each at send time, render, pace, send
once, and record the outcome. The worker calls ``run_once`` every few seconds; tests call it
directly with a ManualClock, no threads and no sleeps.

Order of work for a claimed row (the claim is committed before anything below):

1. Re-check (``recheck``): enrollment still active, not expired (``now >= expires_at`` →
   ``skipped``; never sent late), the patient has not opted out of SMS (→ ``held``), the number
   is not known bad (→ ``skipped``, with an email fallback), and, unless the row is urgent, the
   patient's local clock is inside the send window (else back to ``pending`` at the next
   opening, or ``skipped`` if that is past expiry).
2. Render in the patient's language (rows with a prerendered ``body`` are staff and safety
   messages and go as they are to ``recipient``). A template error dead-letters the row.
3. Pace: reserve the sender's next slot (``checkin.outbound.ratelimit``) and wait for it; if time passed,
   re-check the row and renew the lease in one short transaction.
4. Send once, then record: receipt → ``sent``; transient error → ``pending`` with backoff
   (``dead`` after ``Policy.max_attempts``); ambiguous (5xx, read timeout) → ``in_doubt`` for
   reconciliation; permanent → see ``_permanent`` (21610 opt-out, 21211/21614 bad number with
   email fallback and a contact-problem alert, SMTP 5xx for that recipient).

Logs and audit rows name the outbox id and the patient reference, never a number, an address
or message text.
"""

from __future__ import annotations

import logging
import random
import threading
import time as _time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from typing import TypeVar, cast
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, Table, Update, and_, bindparam, case, or_, select, update
from sqlalchemy.exc import OperationalError, SQLAlchemyError
from sqlalchemy.orm import Session

from checkin.channels import ChannelName, OutgoingMessage, Receipt
from checkin.config import Settings
from checkin.content.catalog import message_context
from checkin.core.window import Window, in_window, next_allowed
from checkin.deps import Services
from checkin.errors import ChannelError, TemplateError
from checkin.outbound.delivery import RANK, open_contact_problem, rank_of
from checkin.outbound.ratelimit import Pacer
from checkin.store import audit, outbox
from checkin.store.models import (
    OUTBOX_CANCELLED,
    OUTBOX_DEAD,
    OUTBOX_HELD,
    OUTBOX_IN_DOUBT,
    OUTBOX_PENDING,
    OUTBOX_SENDING,
    OUTBOX_SENT,
    OUTBOX_SKIPPED,
    Enrollment,
    OutboxMessage,
    Patient,
)
from checkin.store.outbox import DEFAULT_POLICY, Policy
from checkin.tokens import checkin_link, reply_address

log = logging.getLogger(__name__)

DEFAULT_WINDOW: Window = (time(9, 0), time(20, 0))  # DESIGN.md's default send window
OPT_OUT_CODE = "21610"
BAD_NUMBER_CODES = {"21211": "invalid", "21614": "landline"}  # Twilio code → patient.phone_status

T = TypeVar("T")


@dataclass(frozen=True)
class Verdict:
    """Why a claimed row must not go now, and where it goes instead."""

    status: str
    reason: str
    retry_at: datetime | None = None  # for ``pending``: the next allowed instant
    email_fallback: bool = False  # the SMS cannot reach the patient: try email


@dataclass(frozen=True)
class Prepared:
    """A claimed row, rendered and ready for its provider call."""

    row_id: int
    message: OutgoingMessage
    attempts: int  # including this one
    patient_id: int | None  # set when it goes to the patient: permanent errors act on them
    enrollment_id: int | None
    rate_key: str | None
    claimed_at: datetime


def run_once(
    services: Services,
    now: datetime,
    *,
    worker_id: str,
    limit: int = 100,
    pacer: Pacer | None = None,
    stop: threading.Event | None = None,
    concurrency: int = 1,
    policy: Policy = DEFAULT_POLICY,
    rng: random.Random | None = None,
) -> int:
    """Claim up to ``limit`` due rows at ``now`` and handle each; returns how many were claimed
    (so a caller can loop while the batch was full).

    ``now`` is the claim instant; after a rate wait the time is read again from
    ``services.clock``. ``pacer`` defaults to ``CHECKIN_SMS_RATE`` per sender, waiting on
    ``stop``; ``Pacer.unlimited()`` turns pacing off. ``concurrency`` > 1 overlaps provider
    latency with that many threads (the pacer still bounds the rate). When ``stop`` is set,
    rows not yet sent are released back to ``pending``; sends in flight finish and are recorded.
    """
    rng = rng or random.Random()
    with services.sessions() as session, session.begin():
        ids = outbox.claim(session, now, worker_id=worker_id, limit=limit, lease=policy.lease)
        if not ids:
            return 0
        ready = _prepare(session, services, ids, now)
    if pacer is None:
        pacer = Pacer(services.sessions, services.clock, services.settings.sms_rate, stop=stop)

    receipts = _Receipts(services)

    def deliver(p: Prepared) -> None:
        _deliver(
            services,
            p,
            worker_id=worker_id,
            pacer=pacer,
            stop=stop,
            policy=policy,
            rng=rng,
            receipts=receipts,
        )

    try:
        if concurrency <= 1 or len(ready) <= 1:
            for p in ready:
                deliver(p)
        else:
            with ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="send") as pool:
                for _ in pool.map(deliver, ready):
                    pass
    finally:
        receipts.close()
    return len(ids)


class _Receipts:
    """Records receipts on one Core connection per sending thread, kept for one ``run_once``.

    Checking a connection out of the pool per message costs a pre-ping round trip on
    PostgreSQL, and an ORM session per message costs more Python than the write itself.
    A connection that failed is dropped, so the retry gets a fresh (pre-pinged) one.
    """

    def __init__(self, services: Services) -> None:
        self._services = services
        self._local = threading.local()
        self._opened: list[Connection] = []
        self._lock = threading.Lock()

    def record(self, p: Prepared, receipt: Receipt, worker_id: str) -> None:
        conn: Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._services.engine.connect()
            self._local.conn = conn
            with self._lock:
                self._opened.append(conn)
        try:
            with conn.begin():
                _sent(conn, p, receipt, self._services.clock.now(), worker_id)
        except OperationalError:
            self._local.conn = None
            conn.invalidate()
            raise

    def close(self) -> None:
        with self._lock:
            for conn in self._opened:
                conn.close()
            self._opened.clear()


# ---- re-check and render -------------------------------------------------------------------


def recheck(
    row: OutboxMessage, patient: Patient | None, enrollment: Enrollment | None, window: Window, now: datetime
) -> Verdict | None:
    """None if ``row`` may be sent at ``now``; else what to do with it instead. Pure."""
    if enrollment is not None and enrollment.status != "active":
        return Verdict(OUTBOX_CANCELLED, "enrollment withdrawn")
    if now >= row.expires_at:
        return Verdict(OUTBOX_SKIPPED, "expired")
    if _to_patient(row, patient):
        assert patient is not None
        if row.channel == "sms":
            if patient.sms_opted_out:
                return Verdict(OUTBOX_HELD, "patient opted out of SMS")
            if patient.phone_status != "ok":
                return Verdict(OUTBOX_SKIPPED, f"phone number {patient.phone_status}", email_fallback=True)
            if not patient.phone:
                return Verdict(OUTBOX_SKIPPED, "no phone number", email_fallback=True)
        else:
            if not patient.email:
                return Verdict(OUTBOX_SKIPPED, "no email address")
            if not patient.email_consent:
                return Verdict(OUTBOX_SKIPPED, "no consent to email")
    elif not row.recipient:
        return Verdict(OUTBOX_DEAD, "no recipient")
    if not row.urgent and _to_patient(row, patient):
        assert patient is not None  # the window is the patient's, not a nurse's
        tz = ZoneInfo(patient.timezone)
        if not in_window(now, window, tz):
            opens = next_allowed(now, window, tz)
            if opens >= row.expires_at:
                return Verdict(OUTBOX_SKIPPED, "expired (send window closed)")
            return Verdict(OUTBOX_PENDING, "outside the send window", retry_at=opens)
    return None


def build_message(
    services: Services, row: OutboxMessage, patient: Patient | None, enrollment: Enrollment | None
) -> OutgoingMessage:
    """The message exactly as it goes to the provider. Raises ``TemplateError``.

    Reconciliation calls it again to recognise the message in the provider's list, so it must
    stay a function of the row, the patient and the templates only (no clock, no randomness).
    """
    reference = patient.reference if patient is not None else "staff"
    to = row.recipient or _patient_address(row.channel, patient) or ""
    channel: ChannelName = "sms" if row.channel == "sms" else "email"
    settings = services.settings
    reply_to = None
    if channel == "email" and settings.email_reply_to and _to_patient(row, patient):
        # Replies to this email come back to `checkin mail receive` carrying the row's token.
        reply_to = reply_address(settings.email_reply_to, settings.secret_key, row.id)
    if row.body is not None:
        return OutgoingMessage(
            outbox_id=row.id,
            to=to,
            channel=channel,
            text=row.body,
            reference=reference,
            subject=row.subject,
            html=row.html,
            reply_to=reply_to,
        )
    if patient is None:
        raise TemplateError(row.message, "a timeline row without a patient cannot be rendered")
    link = ""
    if channel == "email" and row.ask:
        link = checkin_link(settings.public_url, settings.secret_key, row.id, now=services.clock.now())
    context = message_context(
        settings,
        first_name=patient.first_name,
        language=patient.language,
        day=row.occurrence,
        care_team=enrollment.care_team if enrollment is not None else None,
        checkin_link=link,
    )
    if channel == "sms":
        sms = services.renderer.render_sms(row.message, patient.language, context)
        return OutgoingMessage(outbox_id=row.id, to=to, channel="sms", text=sms.text, reference=reference)
    mail = services.renderer.render_email(row.message, patient.language, context)
    return OutgoingMessage(
        outbox_id=row.id,
        to=to,
        channel="email",
        text=mail.text,
        reference=reference,
        subject=mail.subject,
        html=mail.html,
        reply_to=reply_to,
    )


def load(
    session: Session, ids: Sequence[int]
) -> list[tuple[OutboxMessage, Patient | None, Enrollment | None]]:
    """Rows with their patient and enrollment, most urgent first, then oldest due."""
    return [
        (r, p, e)
        for r, p, e in session.execute(
            select(OutboxMessage, Patient, Enrollment)
            .outerjoin(Patient, Patient.id == OutboxMessage.patient_id)
            .outerjoin(Enrollment, Enrollment.id == OutboxMessage.enrollment_id)
            .where(OutboxMessage.id.in_(ids))
            .order_by(OutboxMessage.urgent.desc(), OutboxMessage.due_at, OutboxMessage.id)
        )
    ]


def window_for(services: Services, enrollment: Enrollment | None) -> Window:
    schedule = services.schedules.get(enrollment.procedure) if enrollment is not None else None
    return schedule.send_window if schedule is not None else DEFAULT_WINDOW


def sender_key(settings: Settings, channel: str) -> str | None:
    """The rate-limit key of the sender a message goes out from (SMS only: an SMTP relay
    takes what it is given, and Twilio's limit is per sending number or service)."""
    if channel != "sms":
        return None
    twilio = settings.twilio
    if twilio is None:
        return "sms:console"
    return "sms:" + (twilio.messaging_service_sid or twilio.from_number or twilio.account_sid)


def _prepare(session: Session, services: Services, ids: Sequence[int], now: datetime) -> list[Prepared]:
    ready: list[Prepared] = []
    for row, patient, enrollment in load(session, ids):
        verdict = recheck(row, patient, enrollment, window_for(services, enrollment), now)
        if verdict is not None:
            _apply(session, services, row, patient, verdict, now)
            continue
        try:
            message = build_message(services, row, patient, enrollment)
        except TemplateError as exc:
            # An admin's template broke: retrying cannot help, and ops must hear of it.
            log.error(
                "ops: outbox=%s ref=%s dead: template error: %s",
                row.id,
                patient.reference if patient else "-",
                exc,
            )
            _finish(session, row, patient, OUTBOX_DEAD, f"template error: {exc}"[:200], now)
            continue
        ready.append(
            Prepared(
                row_id=row.id,
                message=message,
                attempts=row.attempts,
                patient_id=row.patient_id if _to_patient(row, patient) else None,
                enrollment_id=row.enrollment_id,
                rate_key=sender_key(services.settings, row.channel),
                claimed_at=now,
            )
        )
    return ready


def _apply(
    session: Session,
    services: Services,
    row: OutboxMessage,
    patient: Patient | None,
    verdict: Verdict,
    now: datetime,
) -> None:
    """Move a claimed row that must not go now to ``verdict``'s status. No provider call was
    made, so the claim's attempt is uncounted."""
    row.attempts = max(row.attempts - 1, 0)
    if verdict.status == OUTBOX_PENDING:
        row.next_attempt_at = verdict.retry_at
    _finish(
        session,
        row,
        patient,
        verdict.status,
        verdict.reason,
        now,
        action="outbox.deferred" if verdict.status == OUTBOX_PENDING else None,
    )
    if verdict.email_fallback and patient is not None:
        outbox.plan_email_fallback(
            session,
            row,
            patient,
            now=now,
            email_template_exists=services.renderer.exists(row.message, patient.language, "email"),
        )


def _finish(
    session: Session,
    row: OutboxMessage,
    patient: Patient | None,
    status: str,
    reason: str,
    now: datetime,
    *,
    action: str | None = None,
) -> None:
    row.status, row.status_reason, row.updated_at = status, reason, now
    row.claimed_by, row.lease_until = None, None
    audit.record(
        session,
        at=now,
        actor="system",
        action=action or f"outbox.{status}",
        patient_ref=patient.reference if patient else None,
        subject=f"outbox:{row.id}",
        reason=reason,
    )
    log.info("outbox=%s ref=%s %s: %s", row.id, patient.reference if patient else "-", status, reason)


# ---- send and record -----------------------------------------------------------------------


def _deliver(
    services: Services,
    p: Prepared,
    *,
    worker_id: str,
    pacer: Pacer,
    stop: threading.Event | None,
    policy: Policy,
    rng: random.Random,
    receipts: _Receipts,
) -> None:
    if stop is not None and stop.is_set():
        _release(services, p, worker_id)
        return
    waited = False
    if p.rate_key is not None:
        go, waited = pacer.wait_for_slot(p.rate_key)
        if not go or (stop is not None and stop.is_set()):
            _release(services, p, worker_id)
            return
    current = services.clock.now()
    stale = waited or current - p.claimed_at > policy.lease / 2
    if stale and not _with_retry(lambda: _confirm(services, p, current, worker_id, policy)):
        return
    channel = services.channel(p.message.channel)
    outcome: Receipt | ChannelError
    try:
        outcome = channel.send(p.message)
    except ChannelError as exc:
        outcome = exc
    except Exception as exc:
        log.exception(
            "outbox=%s ref=%s: unexpected error from the %s channel",
            p.row_id,
            p.message.reference,
            p.message.channel,
        )
        outcome = ChannelError(
            f"unexpected {type(exc).__name__} from the channel", permanent=False, ambiguous=True
        )

    def record() -> None:
        if isinstance(outcome, Receipt):
            receipts.record(p, outcome, worker_id)
            return
        with services.sessions() as session, session.begin():
            _record(session, services, p, outcome, services.clock.now(), worker_id, policy, rng)

    # The provider call happened: losing its outcome to a brief database outage would turn a
    # clean send into an in-doubt one, so the write is retried a few times.
    try:
        _with_retry(record)
    except SQLAlchemyError as exc:
        if not isinstance(outcome, Receipt):
            raise
        # The message went out but its receipt cannot be stored (a bug or a value the schema
        # refuses). Left `sending`, the row would be reconciled and an email resent; record
        # the bare fact instead, and tell ops.
        why = type(exc).__name__
        log.error(
            "ops: outbox=%s ref=%s sent (provider_id=%s) but the receipt could not be "
            "stored (%s); marking it sent without it",
            p.row_id,
            p.message.reference,
            outcome.provider_id,
            why,
        )
        _with_retry(lambda: _sent_without_receipt(services, p, worker_id, why))


def _confirm(services: Services, p: Prepared, now: datetime, worker_id: str, policy: Policy) -> bool:
    """Just before a send that waited: is the row still ours and still valid? Renews the
    lease. Rows that must no longer go are moved as at claim time."""
    with services.sessions() as session, session.begin():
        loaded = load(session, [p.row_id])
        if not loaded:
            return False
        row, patient, enrollment = loaded[0]
        if row.status != OUTBOX_SENDING or row.claimed_by != worker_id:
            log.warning(
                "outbox=%s ref=%s: lease lost while waiting (now %s); not sending",
                p.row_id,
                p.message.reference,
                row.status,
            )
            return False
        verdict = recheck(row, patient, enrollment, window_for(services, enrollment), now)
        if verdict is not None:
            _apply(session, services, row, patient, verdict, now)
            return False
        row.lease_until = now + policy.lease
        return True


def _release(services: Services, p: Prepared, worker_id: str) -> None:
    with services.sessions() as session, session.begin():
        outbox.release(session, [p.row_id], worker_id=worker_id, now=services.clock.now())


def _record(
    session: Session,
    services: Services,
    p: Prepared,
    outcome: ChannelError,
    now: datetime,
    worker_id: str,
    policy: Policy,
    rng: random.Random,
) -> None:
    """Record a failed send (a receipt goes through ``_sent``)."""
    if outcome.ambiguous:
        _set(
            session,
            p,
            worker_id,
            now,
            "outbox.in_doubt",
            status=OUTBOX_IN_DOUBT,
            status_reason=outcome.reason[:200],
            last_error_code=outcome.code,
            next_attempt_at=None,
        )
        log.warning(
            "outbox=%s ref=%s in doubt (code=%s): %s; reconciling before any resend",
            p.row_id,
            p.message.reference,
            outcome.code,
            outcome.reason,
        )
    elif outcome.permanent:
        _permanent(session, services, p, outcome, now, worker_id)
    elif p.attempts >= policy.max_attempts:
        reason = f"gave up after {p.attempts} attempts: {outcome.reason}"[:200]
        _set(
            session,
            p,
            worker_id,
            now,
            "outbox.dead",
            status=OUTBOX_DEAD,
            status_reason=reason,
            last_error_code=outcome.code,
        )
        log.error(
            "ops: outbox=%s ref=%s dead after %d attempts (last code=%s): %s",
            p.row_id,
            p.message.reference,
            p.attempts,
            outcome.code,
            outcome.reason,
        )
    else:
        delay = outbox.backoff(p.attempts, policy, rng, outcome.retry_after)
        _set(
            session,
            p,
            worker_id,
            now,
            "outbox.retry",
            status=OUTBOX_PENDING,
            status_reason=outcome.reason[:200],
            last_error_code=outcome.code,
            next_attempt_at=now + delay,
        )
        if outcome.retry_after and p.rate_key is not None:
            _hold_sender(session, p.rate_key, now + timedelta(seconds=outcome.retry_after))
        log.info(
            "outbox=%s ref=%s retry in %.0fs (attempt %d, code=%s)",
            p.row_id,
            p.message.reference,
            delay.total_seconds(),
            p.attempts,
            outcome.code,
        )


def _sent_statement() -> Update:
    """The hot path's one UPDATE, built once on the Core table (an ORM-enabled update and a
    freshly built CASE per message cost more than the database write itself)."""
    t = cast(Table, OutboxMessage.__table__)
    when = OutboxMessage.sent_at.type
    return (
        update(t)
        .where(
            t.c.id == bindparam("b_row"),
            or_(
                # Ours as claimed; or, if reconciliation took the row while we were sending, any
                # state that still has no provider id: we *know* it went, so no resend may follow.
                and_(t.c.status == OUTBOX_SENDING, t.c.claimed_by == bindparam("b_worker")),
                and_(t.c.status.in_((OUTBOX_IN_DOUBT, OUTBOX_PENDING)), t.c.provider_id.is_(None)),
            ),
        )
        .values(
            status=OUTBOX_SENT,
            provider_id=bindparam("b_pid"),
            sent_at=bindparam("b_now", type_=when),
            claimed_by=None,
            lease_until=None,
            next_attempt_at=None,
            status_reason=None,
            last_error_code=None,
            updated_at=bindparam("b_now", type_=when),
            # A "delivered" callback may already have arrived: never step back from it.
            delivery_status=case(
                (
                    or_(t.c.delivery_status.is_(None), rank_of(t.c.delivery_status) < bindparam("b_rank")),
                    bindparam("b_status", type_=t.c.delivery_status.type),
                ),
                else_=t.c.delivery_status,
            ),
        )
    )


_SENT = _sent_statement()


def _sent(conn: Connection, p: Prepared, receipt: Receipt, now: datetime, worker_id: str) -> None:
    status = receipt.status if receipt.status in RANK else "queued"
    provider_id = outbox.fit_provider_id(receipt.provider_id)
    updated = conn.execute(
        _SENT,
        {
            "b_row": p.row_id,
            "b_worker": worker_id,
            "b_pid": provider_id,
            "b_now": now,
            "b_rank": RANK[status],
            "b_status": status,
        },
    ).rowcount
    if not updated:
        recorded = conn.scalar(select(OutboxMessage.provider_id).where(OutboxMessage.id == p.row_id))
        if recorded == provider_id:
            return  # its status callback beat this receipt and already recorded the send
        log.error(
            "ops: outbox=%s ref=%s was sent (provider_id=%s) but another worker holds "
            "the row; a duplicate is possible",
            p.row_id,
            p.message.reference,
            receipt.provider_id,
        )
    outbox.audit_many(
        conn,
        now,
        "outbox.sent",
        [(_ref(p), p.row_id)],
        channel=p.message.channel,
        provider_id=receipt.provider_id,
        attempt=p.attempts,
    )
    log.info(
        "outbox=%s ref=%s sent channel=%s provider_id=%s attempt=%d",
        p.row_id,
        p.message.reference,
        p.message.channel,
        receipt.provider_id,
        p.attempts,
    )


def _sent_without_receipt(services: Services, p: Prepared, worker_id: str, why: str) -> None:
    now = services.clock.now()
    with services.sessions() as session, session.begin():
        session.execute(
            update(OutboxMessage)
            .where(OutboxMessage.id == p.row_id, outbox.owned(worker_id))
            .values(
                status=OUTBOX_SENT,
                sent_at=now,
                claimed_by=None,
                lease_until=None,
                status_reason=f"sent; receipt not stored ({why})",
                updated_at=now,
            )
            .execution_options(synchronize_session=False)
        )


def _permanent(
    session: Session, services: Services, p: Prepared, error: ChannelError, now: datetime, worker_id: str
) -> None:
    """A permanent refusal: stop retrying and act on what it says about the patient."""
    code = error.code or ""
    patient = session.get(Patient, p.patient_id) if p.patient_id is not None else None
    if p.message.channel == "sms" and code == OPT_OUT_CODE and patient is not None:
        # The patient texted STOP to our number: Twilio refuses every SMS until START.
        if not patient.sms_opted_out:
            patient.sms_opted_out, patient.sms_opted_out_at = True, now
        _set(
            session,
            p,
            worker_id,
            now,
            "outbox.held",
            status=OUTBOX_HELD,
            status_reason="patient opted out of SMS (21610)",
            last_error_code=code,
        )
        held = session.execute(
            update(OutboxMessage)
            .where(
                OutboxMessage.patient_id == patient.id,
                OutboxMessage.channel == "sms",
                OutboxMessage.status == OUTBOX_PENDING,
            )
            .values(status=OUTBOX_HELD, status_reason="patient opted out of SMS", updated_at=now)
            .execution_options(synchronize_session=False)
        ).rowcount  # type: ignore[attr-defined]
        audit.record(
            session,
            at=now,
            actor="system",
            action="patient.sms_opted_out",
            patient_ref=patient.reference,
            subject=f"outbox:{p.row_id}",
            source="twilio 21610",
            held=int(held),
        )
        log.warning(
            "outbox=%s ref=%s: patient opted out of SMS (21610); %d pending SMS held",
            p.row_id,
            patient.reference,
            held,
        )
        return

    reason = error.reason[:200]
    _set(
        session,
        p,
        worker_id,
        now,
        "outbox.dead",
        status=OUTBOX_DEAD,
        status_reason=reason,
        last_error_code=code or None,
    )
    log.warning("outbox=%s ref=%s dead: permanent error code=%s", p.row_id, p.message.reference, code)
    if patient is None:
        log.error("ops: outbox=%s to staff refused permanently (code=%s): %s", p.row_id, code, error.reason)
        return
    if p.message.channel == "sms" and code in BAD_NUMBER_CODES:
        patient.phone_status = BAD_NUMBER_CODES[code]
        audit.record(
            session,
            at=now,
            actor="system",
            action="patient.phone_flagged",
            patient_ref=patient.reference,
            subject=f"outbox:{p.row_id}",
            phone_status=patient.phone_status,
            code=code,
        )
        row = session.get(OutboxMessage, p.row_id)
        if row is not None:
            outbox.plan_email_fallback(
                session,
                row,
                patient,
                now=now,
                email_template_exists=services.renderer.exists(row.message, patient.language, "email"),
            )
        open_contact_problem(
            session,
            patient.id,
            p.enrollment_id,
            now=now,
            reason=f"SMS refused: {code} (number {patient.phone_status})",
        )
    elif p.message.channel == "email" and code.startswith("5"):
        open_contact_problem(
            session, patient.id, p.enrollment_id, now=now, reason=f"email refused by the relay with {code}"
        )


def _set(session: Session, p: Prepared, worker_id: str, now: datetime, action: str, **values: object) -> bool:
    """Compare-and-set a row this worker claimed; audit it. False if the row is not ours."""
    changed = session.execute(
        update(OutboxMessage)
        .where(OutboxMessage.id == p.row_id, outbox.owned(worker_id))
        .values(claimed_by=None, lease_until=None, updated_at=now, **values)
        .execution_options(synchronize_session=False)
    ).rowcount  # type: ignore[attr-defined]
    if not changed:
        log.warning(
            "outbox=%s ref=%s: not ours any more; outcome %s not recorded",
            p.row_id,
            p.message.reference,
            action,
        )
        return False
    detail = {k: v for k, v in values.items() if k in ("status_reason", "last_error_code")}
    audit.record(
        session,
        at=now,
        actor="system",
        action=action,
        patient_ref=_ref(p),
        subject=f"outbox:{p.row_id}",
        attempt=p.attempts,
        **detail,
    )
    return True


def _hold_sender(session: Session, key: str, until: datetime) -> None:
    # A 429 speaks for the whole sender: push its next slot past Retry-After so the other
    # workers do not keep hitting the limit either.
    from checkin.store.models import RateLimit

    session.execute(
        update(RateLimit)
        .where(RateLimit.key == key, RateLimit.next_free_at < until)
        .values(next_free_at=until)
    )


def _ref(p: Prepared) -> str | None:
    return None if p.message.reference == "staff" else p.message.reference


def _to_patient(row: OutboxMessage, patient: Patient | None) -> bool:
    """Whether the row is addressed to its patient (not to staff)."""
    if patient is None:
        return False
    return row.recipient is None or row.recipient in (patient.phone, patient.email)


def _patient_address(channel: str, patient: Patient | None) -> str | None:
    if patient is None:
        return None
    return patient.phone if channel == "sms" else patient.email


def _with_retry(fn: Callable[[], T], tries: int = 4, pause: float = 0.5) -> T:
    for attempt in range(tries):
        try:
            return fn()
        except OperationalError:
            if attempt == tries - 1:
                raise
            log.warning("database unavailable; retrying in %.1fs", pause * 2**attempt)
            _time.sleep(pause * 2**attempt)
    raise AssertionError("unreachable")


__all__ = [
    "DEFAULT_WINDOW",
    "Prepared",
    "Verdict",
    "build_message",
    "load",
    "recheck",
    "run_once",
    "sender_key",
    "window_for",
]
