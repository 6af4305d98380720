"""``checkin worker``: an APScheduler 3.x clock that runs the single-step functions.

APScheduler only fires ticks (docs/adr/0002-apscheduler-only-ticks.md): a ``BackgroundScheduler`` with the default
in-memory job store, timezone UTC, and one job per step, each a thin wrapper that calls the step
with ``services.clock.now()``:

=============  ===========  =====================================================
job id         every        step
=============  ===========  =====================================================
dispatch       1 s          ``sweeps.escalate_once`` (alert ladder steps due now), then
                            ``dispatch.run_once`` (both repeated while batches are full;
                            each step claims more while it sends, for up to 5 s)
reconcile      30 s         ``reconcile.reconcile_once``
heartbeat      10 s         this worker's ``workers.heartbeat_at``
expire_stale   60 s         ``outbox.expire_stale`` (unsent rows past expiry → skipped)
missed         60 s         ``sweeps.missed_once`` (unanswered check-ins, opt-outs)
remind         60 s         ``sweeps.remind_once`` (one nudge per unanswered question)
digest         300 s        ``sweeps.digest_once`` (acts once a day, at 07:00 local)
reprocess      60 s         ``reprocess.reprocess_once`` (replies stored but not processed)
=============  ===========  =====================================================

The dispatch tick is 1 s because a nurse alert's first email waits for it: an emergency reply
should reach the care team's mailbox within a couple of seconds, and an idle tick is one
indexed query.

All jobs: ``replace_existing=True``, ``max_instances=1``, ``coalesce=True``,
``misfire_grace_time=None`` (a late tick still runs, once; every step is idempotent).

Start-up registers the worker, refuses to run beside a live worker on the same SQLite file
(``CheckinError``), skips what expired while nobody was running, and logs what it owes
(``startup_report``). SIGTERM/SIGINT or ``stop``: nothing new is claimed, sends in flight
finish and are recorded, claimed rows not yet sent go back to ``pending``, the worker is marked
stopped, and ``run`` returns.
"""

from __future__ import annotations

import logging
import os
import secrets
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import FrameType
from typing import Any

from apscheduler.schedulers.background import BackgroundScheduler  # type: ignore[import-untyped]
from sqlalchemy import update
from sqlalchemy.orm import Session

from checkin.alerts import sweeps
from checkin.deps import Services
from checkin.errors import CheckinError
from checkin.inbound import reprocess
from checkin.outbound import dispatch, reconcile
from checkin.outbound.breaker import Breakers
from checkin.store import outbox, workers
from checkin.store.models import Worker
from checkin.store.outbox import DEFAULT_POLICY, Policy

log = logging.getLogger(__name__)
ops = logging.getLogger("checkin.ops")


@dataclass(frozen=True)
class Tuning:
    """Job intervals (seconds) and batch sizes. Tests shorten them."""

    dispatch_every: float = 1.0
    reconcile_every: float = 30.0
    heartbeat_every: float = 10.0
    expire_every: float = 60.0
    sweep_every: float = 60.0
    digest_every: float = 300.0
    batch: int = 100
    # One dispatch step claims the next batch while it sends the last (``dispatch.Refill``):
    # at most this many rows, and no claim after this many seconds, then the tick comes round.
    step_rows: int = 1_000
    step_seconds: float = 5.0
    # Provider calls in flight per worker; None sizes it from the SMS rate and the provider's
    # observed latency (``dispatch.InFlight``). The rate limit still applies.
    concurrency: int | None = None
    policy: Policy = field(default_factory=lambda: DEFAULT_POLICY)


@dataclass(frozen=True)
class StartupReport:
    overdue: int  # pending, due, still valid: will go out now (window and opt-out permitting)
    expired_skipped: int  # expired while no worker ran: skipped, never sent late

    def __str__(self) -> str:
        return (
            f"start-up: {self.overdue} overdue message(s) still valid will go out now; "
            f"{self.expired_skipped} expired message(s) skipped"
        )


def startup_report(services: Services, now: datetime) -> StartupReport:
    """Skip what expired while no worker ran, and count what is overdue but still valid."""
    with services.sessions() as session, session.begin():
        skipped = outbox.skip_expired(session, now)
        overdue = outbox.overdue_count(session, now)
    return StartupReport(overdue=overdue, expired_skipped=skipped)


def tell_expired(skipped: int, *, at_startup: bool) -> None:
    """Operations hear of every message that expired unsent (``outbox.expired_skipped`` on
    ``checkin.ops``): each was a reminder or question a patient never got."""
    if skipped:
        ops.warning(
            "messages expired unsent and were skipped",
            extra={"event": "outbox.expired_skipped", "rows": skipped, "at_startup": at_startup},
        )


def default_worker_id() -> str:
    return f"{workers.this_host()[:40]}:{os.getpid()}:{secrets.token_hex(3)}"


def register(services: Services, worker_id: str, now: datetime, policy: Policy = DEFAULT_POLICY) -> None:
    """Record this worker. On SQLite, raise ``CheckinError`` if another live worker uses the
    same database: SQLite has no ``SKIP LOCKED``, so this deployment runs one worker."""
    with services.sessions() as session, session.begin():
        if services.is_sqlite:
            others = [
                w
                for w in workers.live_workers(session, now, policy.stale_after).values()
                if w.id != worker_id
            ]
            if others:
                w = others[0]
                age = (now - w.heartbeat_at).total_seconds()
                raise CheckinError(
                    f"another worker ({w.id}, pid {w.pid} on {w.host}) is running on this SQLite "
                    f"database (last heartbeat {age:.0f}s ago). SQLite supports one worker: stop "
                    "that one first, or use PostgreSQL (CHECKIN_DATABASE_URL) to run several."
                )
        session.merge(
            Worker(
                id=worker_id,
                host=workers.this_host(),
                pid=os.getpid(),
                started_at=now,
                heartbeat_at=now,
                stopped_at=None,
            )
        )


def heartbeat(session: Session, worker_id: str, now: datetime) -> None:
    session.execute(update(Worker).where(Worker.id == worker_id).values(heartbeat_at=now))


def unregister(services: Services, worker_id: str, now: datetime) -> None:
    """Mark the worker stopped. Rows it still holds as ``sending`` (a send whose outcome could
    not be recorded) go to ``in_doubt``, never back to ``pending``: they may have gone out."""
    with services.sessions() as session, session.begin():
        left = outbox.strand(session, worker_id, now)
        session.execute(update(Worker).where(Worker.id == worker_id).values(stopped_at=now, heartbeat_at=now))
    if left:
        log.warning(
            "rows left in doubt at shutdown; reconciliation will settle them",
            extra={"event": "worker.stranded", "rows": left, "worker_id": worker_id},
        )


def run(
    services: Services,
    *,
    worker_id: str | None = None,
    stop: threading.Event | None = None,
    install_signal_handlers: bool = True,
    tuning: Tuning | None = None,
) -> None:
    """Run until SIGTERM/SIGINT (when ``install_signal_handlers`` and on the main thread) or
    until ``stop`` is set. Raises ``CheckinError`` at start-up (see ``register``)."""
    _configure_logging(services.settings.log_level)
    tuning = tuning or Tuning()
    stop = stop or threading.Event()
    worker_id = worker_id or default_worker_id()
    for note in services.notes:
        log.info(note, extra={"event": "worker.note"})
    register(services, worker_id, services.clock.now(), tuning.policy)
    log.info(
        "worker started",
        extra={"event": "worker.started", "worker_id": worker_id, "database": services.engine.dialect.name},
    )
    signalled: list[int] = []
    restore = _install_handlers(signalled) if install_signal_handlers else None
    scheduler = make_scheduler(services, worker_id=worker_id, stop=stop, tuning=tuning)
    try:
        report = startup_report(services, services.clock.now())
        log.info(report, extra={"event": "worker.startup_report"})
        tell_expired(report.expired_skipped, at_startup=True)
        scheduler.start()
        _wait(stop, signalled if restore is not None else None)
        log.info(
            "worker stopping: finishing sends in flight, claiming nothing new",
            extra={"event": "worker.stopping", "worker_id": worker_id},
        )
    finally:
        stop.set()
        if scheduler.running:
            scheduler.shutdown(wait=True)  # running jobs see `stop` and wind down
        unregister(services, worker_id, services.clock.now())
        if restore is not None:
            restore()
        log.info("worker stopped", extra={"event": "worker.stopped", "worker_id": worker_id})


def make_scheduler(
    services: Services, *, worker_id: str, stop: threading.Event, tuning: Tuning
) -> BackgroundScheduler:
    """The worker's scheduler with its jobs added, not started (see the module table)."""
    policy = tuning.policy
    inflight: int | dispatch.InFlight = (
        tuning.concurrency
        if tuning.concurrency is not None
        else dispatch.InFlight(services.settings.sms_rate)
    )
    breakers = Breakers()  # per channel, kept across dispatch steps
    refill = dispatch.Refill(rows=tuning.step_rows, seconds=tuning.step_seconds)

    def dispatch_tick() -> None:
        while not stop.is_set():
            # New alerts are saved with ladder step 0 due now: compose those messages first, so
            # a nurse's email leaves on this tick, not the next escalation sweep; and between
            # steps, so a long backlog does not hold an alert's next step back.
            sweeps.escalate_once(services, services.clock.now())
            if stop.is_set():
                return
            claimed = dispatch.run_once(
                services,
                services.clock.now(),
                worker_id=worker_id,
                limit=tuning.batch,
                stop=stop,
                concurrency=inflight,
                policy=policy,
                breakers=breakers,
                refill=refill,
            )
            if claimed < tuning.batch:
                return  # drained; a full batch means more may be due right now

    def reconcile_tick() -> None:
        if not stop.is_set():
            reconcile.reconcile_once(services, services.clock.now(), worker_id=worker_id, policy=policy)

    def heartbeat_tick() -> None:
        with services.sessions() as session, session.begin():
            heartbeat(session, worker_id, services.clock.now())

    def sweep(step: Callable[[Services, datetime], int]) -> Callable[[], None]:
        def tick() -> None:
            if not stop.is_set():
                step(services, services.clock.now())

        tick.__name__ = step.__name__
        return tick

    def expire_tick() -> None:
        with services.sessions() as session, session.begin():
            skipped = outbox.skip_expired(session, services.clock.now())
        tell_expired(skipped, at_startup=False)

    scheduler = BackgroundScheduler(timezone=UTC)
    started = datetime.now(UTC)  # APScheduler's own clock, not the service clock
    jobs: list[tuple[str, Callable[[], None], float, bool]] = [
        ("dispatch", dispatch_tick, tuning.dispatch_every, True),
        ("reconcile", reconcile_tick, tuning.reconcile_every, True),  # settle a crash at once
        ("heartbeat", heartbeat_tick, tuning.heartbeat_every, False),
        ("expire_stale", expire_tick, tuning.expire_every, False),
        ("missed", sweep(sweeps.missed_once), tuning.sweep_every, False),
        ("remind", sweep(sweeps.remind_once), tuning.sweep_every, False),
        ("digest", sweep(sweeps.digest_once), tuning.digest_every, False),
        ("reprocess", sweep(reprocess.reprocess_once), tuning.sweep_every, False),
    ]
    for job_id, fn, every, at_once in jobs:
        extra: dict[str, Any] = {"next_run_time": started} if at_once else {}
        scheduler.add_job(
            _guarded(job_id, fn),
            "interval",
            seconds=every,
            id=job_id,
            name=job_id,
            replace_existing=True,
            max_instances=1,
            coalesce=True,
            misfire_grace_time=None,
            **extra,
        )
    return scheduler


def _guarded(name: str, fn: Callable[[], None]) -> Callable[[], None]:
    def job() -> None:
        try:
            fn()
        except Exception as exc:
            # Only the type at ERROR: database errors quote statement parameters (phone
            # numbers, names). The full text goes to DEBUG for a developer's machine.
            log.error(
                "job failed; will retry on the next tick",
                extra={"event": "worker.job_failed", "job": name, "error": type(exc).__name__},
            )
            log.debug("job failure detail", extra={"event": "worker.job_failed", "job": name}, exc_info=True)

    job.__name__ = f"{name}_job"
    return job


def _install_handlers(signalled: list[int]) -> Callable[[], None] | None:
    """SIGTERM/SIGINT append to ``signalled``; returns a function restoring the old handlers.

    The handler only appends to a list: setting a ``threading.Event`` from a signal handler
    can deadlock if the signal lands while the main thread holds the event's lock.
    """
    if threading.current_thread() is not threading.main_thread():
        return None

    def handler(signum: int, _frame: FrameType | None) -> None:
        signalled.append(signum)

    previous = {s: signal.signal(s, handler) for s in (signal.SIGTERM, signal.SIGINT)}

    def restore() -> None:
        for s, h in previous.items():
            signal.signal(s, h)

    return restore


def _wait(stop: threading.Event, signalled: list[int] | None) -> None:
    if signalled is None:
        stop.wait()
        return
    while not stop.is_set():
        if signalled:
            log.info(
                "signal received",
                extra={"event": "worker.signal", "signal": signal.Signals(signalled[0]).name},
            )
            stop.set()
            return
        time.sleep(0.1)  # a signal interrupts the sleep; the loop then sees it


def _configure_logging(level: str) -> None:
    # JSON lines through the redaction filter, like the web process (checkin.logs). In-process
    # callers that already set up logging (tests, `checkin serve`) keep theirs.
    if not logging.getLogger().handlers:
        from checkin.logs import configure

        configure(level)
    # APScheduler logs every run at INFO and, while a rate-paced dispatch outlasts its 2 s
    # interval (a 9:00 wave at 1 SMS/s), "skipped: maximum number of running instances" at
    # WARNING every tick: both expected here. Our jobs log their own failures (``_guarded``).
    logging.getLogger("apscheduler").setLevel(logging.ERROR)


__all__ = [
    "StartupReport",
    "Tuning",
    "default_worker_id",
    "heartbeat",
    "make_scheduler",
    "register",
    "run",
    "startup_report",
    "tell_expired",
    "unregister",
]
