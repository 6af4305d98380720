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
import time as _time
from collections.abc import Callable
from contextlib import AbstractContextManager
from datetime import datetime
from functools import partial
from typing import Protocol, TypeVar

from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from checkin.channels import Receipt
from checkin.deps import Services
from checkin.errors import ChannelError
from checkin.outbound import receipts
from checkin.outbound.batches import Claims, apply_verdict, claim_batch
from checkin.outbound.breaker import Breaker, Breakers, close_circuit, open_circuit, tell_closed, tell_opened
from checkin.outbound.inflight import InFlight, Kept, pool_room
from checkin.outbound.pipeline import Refill, pump
from checkin.outbound.ratelimit import Pacer
from checkin.outbound.receipts import record_sent_unrecorded
from checkin.outbound.recheck import (
    DEFAULT_WINDOW,
    Prepared,
    Verdict,
    build_message,
    load,
    recheck,
    sender_key,
    window_for,
)
from checkin.outbound.refusals import record_failure
from checkin.outbound.retry import until_stored
from checkin.states import OutboxStatus
from checkin.store import outbox
from checkin.store.models import OutboxMessage
from checkin.store.outbox import DEFAULT_POLICY, Policy

log = logging.getLogger(__name__)
ops = logging.getLogger("checkin.ops")

T = TypeVar("T")


class Store(Protocol):
    """``until_stored`` with the run's outage sleep bound in."""

    def __call__(self, fn: Callable[[], T], *, give_up: Callable[[], bool] = ...) -> T: ...


def run_once(
    services: Services,
    now: datetime,
    *,
    worker_id: str,
    limit: int = 100,
    pacer: Pacer | None = None,
    stop: threading.Event | None = None,
    concurrency: int | InFlight = 1,
    policy: Policy = DEFAULT_POLICY,
    rng: random.Random | None = None,
    outage_sleep: Callable[[float], None] | None = None,
    breakers: Breakers | None = None,
    refill: Refill | None = None,
) -> int:
    """Claim up to ``limit`` due rows at ``now`` and handle each; returns how many were claimed
    (so a caller can loop while batches are full).

    ``now`` is the claim instant; after a rate wait the time is read again from
    ``services.clock``. ``pacer`` defaults to ``CHECKIN_SMS_RATE`` per sender, waiting on
    ``stop``; ``Pacer.unlimited()`` turns pacing off. ``concurrency`` > 1 (or an ``InFlight``
    sized from the rate and the provider's latency) overlaps provider latency with that many
    threads (the pacer still bounds the rate), at most ``pool_room`` of them, each keeping one
    database connection. With ``refill``, while a full batch is being sent the next one is
    claimed and prepared (``checkin.outbound.pipeline``), within ``refill``'s bounds; later
    claims are at ``now`` plus the time that passed on ``services.clock``. When ``stop`` is set,
    rows not yet sent are released back to ``pending``; sends in flight finish and are
    recorded. ``outage_sleep`` is how the send path waits between tries while the database is
    away (``time.sleep``). ``breakers`` (kept by the worker across steps) holds back a channel
    whose provider is failing (``checkin.outbound.breaker``): its rows are not claimed, or
    deferred untouched.

    One worker runs one ``run_once`` at a time, so when it starts no row of this worker can
    be in flight: any row still ``sending`` under ``worker_id`` is a claim whose answer was
    lost to a database outage, and is given back first. Every row claimed here is settled
    before it returns (sent, retried, in doubt, or released), whatever a single row raised.
    """
    rng = rng or random.Random()
    breakers = breakers or Breakers()
    with services.sessions() as session, session.begin():
        stranded = outbox.release_stranded(session, worker_id=worker_id, now=now)
        ids, ready = claim_batch(session, services, now, worker_id, limit, policy, breakers)
    if stranded:
        ops.warning(
            "released rows stranded by a lost claim",
            extra={"event": "outbox.stranded_released", "worker_id": worker_id, "rows": stranded},
        )
    if not ids:
        return 0
    inflight = concurrency if isinstance(concurrency, InFlight) else None
    threads = concurrency.size() if isinstance(concurrency, InFlight) else concurrency
    threads = min(threads, pool_room(services))
    kept = Kept(services.engine)
    if pacer is None:
        pacer = Pacer(
            services.sessions, services.clock, services.settings.sms_rate, stop=stop, begin=kept.session
        )
    stopping = (lambda: stop.is_set()) if stop is not None else (lambda: False)
    store: Store = partial(until_stored, sleep=outage_sleep)
    more = Claims(services, now, worker_id, limit, policy, breakers, refill or Refill(rows=0), stopping)
    more.count(len(ids))

    def deliver(p: Prepared) -> None:
        try:
            _deliver(
                services,
                p,
                worker_id=worker_id,
                pacer=pacer,
                stopping=stopping,
                policy=policy,
                rng=rng,
                kept=kept,
                inflight=inflight,
                store=store,
                breaker=breakers[p.message.channel],
            )
        except Exception:  # noqa: BLE001 - logged with its traceback; the batch goes on
            # One row's failure must not take the rest of the batch with it.
            ops.exception(
                "unexpected error handling a claimed row",
                extra={"event": "outbox.deliver_error", "outbox_id": p.row_id, "patient_ref": p.patient_ref},
            )

    def give_back(rows: list[Prepared]) -> None:
        store(
            lambda: _release(
                services.sessions.begin, [p.row_id for p in rows], worker_id, services.clock.now()
            )
        )

    try:
        pump(ready, deliver, threads=threads, more=more, give_back=give_back, stopping=stopping)
    finally:
        kept.close()
    return more.claimed


def _deliver(
    services: Services,
    p: Prepared,
    *,
    worker_id: str,
    pacer: Pacer,
    stopping: Callable[[], bool],
    policy: Policy,
    rng: random.Random,
    kept: Kept,
    store: Store,
    breaker: Breaker,
    inflight: InFlight | None = None,
) -> None:
    try:
        go = _ready_to_send(
            services,
            p,
            worker_id=worker_id,
            pacer=pacer,
            stopping=stopping,
            policy=policy,
            store=store,
            kept=kept,
        )
    except Exception:
        # Nothing was sent: give the row back now rather than after lease and orphan recovery.
        store(lambda: _release(kept.session, [p.row_id], worker_id, services.clock.now()), give_up=stopping)
        raise
    if not go:
        return
    if not breaker.allow(services.clock.now()):
        store(lambda: _hold_back(services, p, worker_id, breaker))
        return
    started = _time.monotonic()
    outcome = _send(services, p)
    if inflight is not None:
        inflight.observe(_time.monotonic() - started)
    judged = None
    if isinstance(outcome, ChannelError):
        judged = breaker.failure(outcome, p.message.to, services.clock.now())
    if judged.closed if judged is not None else breaker.success():
        store(lambda: _circuit_closed(services, breaker.channel))
    first_to_open = False

    def record() -> None:
        nonlocal first_to_open
        if judged is None:
            assert isinstance(outcome, Receipt)
            receipts.record(kept, p, outcome, worker_id, services)
            return
        now = services.clock.now()
        with kept.session() as session:
            if judged.opened_until is not None:  # tell the other workers; ops once for all
                shared = open_circuit(session, breaker.channel, judged.opened_until, now)
                first_to_open = shared and not judged.reopened
            record_failure(session, services, p, judged.error, now, worker_id, policy, rng)

    # The provider call happened: its outcome is written however long the database is away
    # (a receipt lost to an outage would turn a clean send into a reconciliation, or worse a
    # `sent` row without its provider id).
    try:
        store(record)
    except SQLAlchemyError as exc:
        if not isinstance(outcome, Receipt):
            raise
        # Not an outage (``store`` waits those out): the schema refuses this receipt.
        why = type(exc).__name__
        store(lambda: record_sent_unrecorded(services, p, outcome, worker_id, why))
    if judged is not None and judged.error.retry_after is not None and p.rate_key is not None:
        pacer.forget(p.rate_key)  # the provider's hold (just stored) applies to the next slot
    if first_to_open and judged is not None:
        tell_opened(breaker.channel, judged)


def _ready_to_send(
    services: Services,
    p: Prepared,
    *,
    worker_id: str,
    pacer: Pacer,
    stopping: Callable[[], bool],
    policy: Policy,
    store: Store,
    kept: Kept,
) -> bool:
    """Pace and re-confirm the row; False if it must not go now (it was released or moved).
    Database calls here wait out an outage (the row stays claimed by this live worker)."""
    release = partial(_release, kept.session, [p.row_id], worker_id)
    if stopping():
        store(lambda: release(services.clock.now()))
        return False
    waited = False
    if p.rate_key is not None:
        key = p.rate_key
        go, waited = store(lambda: pacer.wait_for_slot(key), give_up=stopping)
        if not go or stopping():
            store(lambda: release(services.clock.now()))
            return False
    current = services.clock.now()
    stale = waited or current - p.claimed_at > policy.lease / 2
    if not stale:
        return True
    return store(lambda: _confirm(services, kept, p, current, worker_id, policy), give_up=stopping)


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


def _confirm(
    services: Services, kept: Kept, p: Prepared, now: datetime, worker_id: str, policy: Policy
) -> bool:
    """Just before a send that waited: is the row still ours and still valid? Renews the
    lease. Rows that must no longer go are moved as at claim time."""
    with kept.session() as session:
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
            apply_verdict(session, services, row, patient, verdict, now)
            return False
        return outbox.renew(session, p.row_id, worker_id=worker_id, now=now, lease=policy.lease)


def _hold_back(services: Services, p: Prepared, worker_id: str, breaker: Breaker) -> None:
    """The channel's circuit is open: give the row back untouched until the next probe."""
    now = services.clock.now()
    with services.sessions() as session, session.begin():
        row = session.get(OutboxMessage, p.row_id)
        if row is None or row.status != OutboxStatus.SENDING or row.claimed_by != worker_id:
            return
        reason = f"{breaker.channel} provider failing (circuit open)"
        outbox.defer(
            session, row, until=breaker.retry_at(now), reason=reason, now=now, patient_ref=p.patient_ref
        )


def _circuit_closed(services: Services, channel: str) -> None:
    with services.sessions() as session, session.begin():
        first = close_circuit(session, channel, services.clock.now())
    if first:  # the other workers' probes may close it too; ops hear it once
        tell_closed(channel)


def _release(
    begin: Callable[[], AbstractContextManager[Session]], ids: list[int], worker_id: str, now: datetime
) -> None:
    with begin() as session:
        outbox.release(session, ids, worker_id=worker_id, now=now)


__all__ = [
    "DEFAULT_WINDOW",
    "InFlight",
    "Prepared",
    "Refill",
    "Verdict",
    "build_message",
    "load",
    "pool_room",
    "recheck",
    "run_once",
    "sender_key",
    "window_for",
]
