"""One dispatch step: claim due outbox rows, re-check each at send time, render, pace, send
once, and record the outcome. The worker calls ``run_once`` every few seconds; tests call it
directly with a ManualClock, no threads and no sleeps.

Order of work for a claimed row (the claim is committed before anything below):

1. Re-check and render (``checkin.outbound.recheck``): a row that must not go now is moved
   at once (skipped, held, cancelled, or deferred to the next send-window opening); a
   template error dead-letters it.
2. Pace: reserve the sender's next slot (``checkin.outbound.ratelimit``) and wait for it; if
   time passed, re-check the row and renew the lease in one short transaction.
3. Send once, then record: a receipt through ``checkin.outbound.receipts``, a refusal through
   ``checkin.outbound.refusals``. Every row write is a ``checkin.store.outbox`` transition.

Logs and audit rows name the outbox id and the patient reference, never a number, an address
or message text.
"""

from __future__ import annotations

import logging
import random
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime

from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from checkin.channels import Receipt
from checkin.deps import Services
from checkin.errors import ChannelError, TemplateError
from checkin.outbound.ratelimit import Pacer
from checkin.outbound.receipts import Receipts, record_sent_unrecorded
from checkin.outbound.recheck import (
    DEFAULT_WINDOW,
    Prepared,
    Verdict,
    build_message,
    load,
    recheck,
    sender_key,
    to_patient,
    window_for,
)
from checkin.outbound.refusals import record_failure
from checkin.outbound.retry import with_retry
from checkin.states import ChannelName, OutboxStatus
from checkin.store import outbox
from checkin.store.models import OutboxMessage, Patient
from checkin.store.outbox import DEFAULT_POLICY, Policy

log = logging.getLogger(__name__)
ops = logging.getLogger("checkin.ops")


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

    receipts = Receipts(services)

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
            ref = patient.reference if patient else None
            ops.error(
                "template error; row dead",
                extra={
                    "event": "outbox.template_error",
                    "outbox_id": row.id,
                    "patient_ref": ref,
                    "error": str(exc),
                },
            )
            outbox.reject(
                session, row, reason=f"template error: {exc}"[:200], now=now, patient_ref=ref, uncount=False
            )
            continue
        ready.append(
            Prepared(
                row_id=row.id,
                message=message,
                attempts=row.attempts,
                patient_id=row.patient_id if to_patient(row, patient) else None,
                enrollment_id=row.enrollment_id,
                rate_key=sender_key(services.settings, row.channel),
                claimed_at=now,
            )
        )
    return ready


_SETTLE = {
    OutboxStatus.SKIPPED: outbox.skip,
    OutboxStatus.HELD: outbox.hold,
    OutboxStatus.CANCELLED: outbox.cancel,
    OutboxStatus.DEAD: outbox.reject,
}


def _apply(
    session: Session,
    services: Services,
    row: OutboxMessage,
    patient: Patient | None,
    verdict: Verdict,
    now: datetime,
) -> None:
    """Move a claimed row that must not go now to ``verdict``'s status (no provider call was
    made, so the claim's attempt is uncounted)."""
    ref = patient.reference if patient else None
    if verdict.status == OutboxStatus.PENDING:
        outbox.defer(session, row, until=verdict.retry_at, reason=verdict.reason, now=now, patient_ref=ref)
    else:
        _SETTLE[verdict.status](session, row, reason=verdict.reason, now=now, patient_ref=ref)
    log.info(
        "row not sent now",
        extra={
            "event": f"outbox.{verdict.status}",
            "outbox_id": row.id,
            "patient_ref": ref,
            "reason": verdict.reason,
        },
    )
    if verdict.email_fallback and patient is not None:
        outbox.plan_email_fallback(
            session,
            row,
            patient,
            now=now,
            email_template_exists=services.renderer.exists(row.message, patient.language, ChannelName.EMAIL),
        )


def _deliver(
    services: Services,
    p: Prepared,
    *,
    worker_id: str,
    pacer: Pacer,
    stop: threading.Event | None,
    policy: Policy,
    rng: random.Random,
    receipts: Receipts,
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
    if stale and not with_retry(lambda: _confirm(services, p, current, worker_id, policy)):
        return
    outcome = _send(services, p)

    def record() -> None:
        if isinstance(outcome, Receipt):
            receipts.record(p, outcome, worker_id)
            return
        with services.sessions() as session, session.begin():
            record_failure(session, services, p, outcome, services.clock.now(), worker_id, policy, rng)

    # The provider call happened: losing its outcome to a brief database outage would turn a
    # clean send into an in-doubt one, so the write is retried a few times.
    try:
        with_retry(record)
    except SQLAlchemyError as exc:
        if not isinstance(outcome, Receipt):
            raise
        why = type(exc).__name__
        with_retry(lambda: record_sent_unrecorded(services, p, outcome, worker_id, why))


def _send(services: Services, p: Prepared) -> Receipt | ChannelError:
    """The one provider call; any failure comes back as a ``ChannelError``."""
    try:
        return services.channel(p.message.channel).send(p.message)
    except ChannelError as exc:
        return exc
    except Exception as exc:
        log.exception(
            "unexpected error from the channel",
            extra={
                "event": "channel.unexpected_error",
                "outbox_id": p.row_id,
                "patient_ref": p.message.reference,
                "channel": p.message.channel,
            },
        )
        return ChannelError(
            f"unexpected {type(exc).__name__} from the channel", permanent=False, ambiguous=True
        )


def _confirm(services: Services, p: Prepared, now: datetime, worker_id: str, policy: Policy) -> bool:
    """Just before a send that waited: is the row still ours and still valid? Renews the
    lease. Rows that must no longer go are moved as at claim time."""
    with services.sessions() as session, session.begin():
        loaded = load(session, [p.row_id])
        if not loaded:
            return False
        row, patient, enrollment = loaded[0]
        if row.status != OutboxStatus.SENDING or row.claimed_by != worker_id:
            log.warning(
                "lease lost while waiting; not sending",
                extra={
                    "event": "outbox.lost_lease",
                    "outbox_id": p.row_id,
                    "patient_ref": p.message.reference,
                    "status": row.status,
                },
            )
            return False
        verdict = recheck(row, patient, enrollment, window_for(services, enrollment), now)
        if verdict is not None:
            _apply(session, services, row, patient, verdict, now)
            return False
        return outbox.renew(session, p.row_id, worker_id=worker_id, now=now, lease=policy.lease)


def _release(services: Services, p: Prepared, worker_id: str) -> None:
    with services.sessions() as session, session.begin():
        outbox.release(session, [p.row_id], worker_id=worker_id, now=services.clock.now())


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
