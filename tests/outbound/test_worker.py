"""The worker in-process: its APScheduler jobs, registration, start and stop, and the takeover
of rows whose worker died (the reconciliation half of R1, without processes)."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from sqlalchemy import select

from checkin.app.worker import Tuning, make_scheduler, register, run
from checkin.channels.memory import MemoryChannel
from checkin.deps import Services
from checkin.errors import CheckinError
from checkin.outbound.reconcile import reconcile_once
from checkin.store.models import OutboxMessage, Worker
from checkin.store.outbox import DEFAULT_POLICY
from tests.outbound.support import NOW, add_patient, add_row, get_row, wait_for


def test_it_schedules_idempotent_interval_jobs_in_utc(services: Services) -> None:
    scheduler = make_scheduler(services, worker_id="w", stop=threading.Event(), tuning=Tuning())
    jobs = {j.id: j for j in scheduler.get_jobs()}
    assert str(scheduler.timezone) == "UTC"
    assert {k: j.trigger.interval.total_seconds() for k, j in jobs.items()} == {
        "dispatch": 1,
        "reconcile": 30,
        "heartbeat": 10,
        "expire_stale": 60,
        "missed": 60,
        "remind": 60,
        "digest": 300,
        "reprocess": 60,
    }
    for job in jobs.values():
        assert (job.max_instances, job.coalesce, job.misfire_grace_time) == (1, True, None)


def test_it_refuses_a_second_worker_on_sqlite_but_not_on_postgresql(services: Services, db_url: str) -> None:
    register(services, "first", NOW)
    if services.is_sqlite:
        with pytest.raises(CheckinError, match=r"another worker \(first, pid \d+"):
            register(services, "second", NOW + timedelta(seconds=5))
        # A heartbeat older than 30 s is a dead worker: no longer in the way.
        register(services, "third", NOW + timedelta(seconds=31))
    else:
        register(services, "second", NOW + timedelta(seconds=5))


def test_it_runs_sends_due_rows_and_stops_cleanly_when_told(
    services: Services, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("INFO", logger="checkin.ops")
    with services.sessions() as s, s.begin():
        p, e = add_patient(s)
        row_id = add_row(s, p, e).id
        add_row(s, p, e, step="old", due=NOW - timedelta(hours=8), expires=NOW - timedelta(hours=2))
    stop = threading.Event()
    thread = threading.Thread(
        target=run,
        args=(services,),
        kwargs={"worker_id": "inproc", "stop": stop, "install_signal_handlers": False},
    )
    thread.start()
    try:
        wait_for(lambda: get_row(services, row_id).status == "sent", what="the row to go")
    finally:
        stop.set()
        thread.join(20)
    assert not thread.is_alive()
    assert isinstance(services.sms, MemoryChannel) and len(services.sms.sent) == 1
    with services.sessions() as s:
        worker = s.get(Worker, "inproc")
        assert worker is not None and worker.stopped_at is not None
        assert s.scalar(select(OutboxMessage.status).where(OutboxMessage.step_id == "old")) == "skipped"
    told = [
        r
        for r in caplog.records
        if r.name == "checkin.ops" and getattr(r, "event", "") == "outbox.expired_skipped"
    ]
    assert [(r.rows, r.at_startup) for r in told] == [(1, True)]  # type: ignore[attr-defined]


def _claimed(services: Services, worker: str, heartbeat_age: timedelta, lease_age: timedelta) -> int:
    with services.sessions() as s, s.begin():
        s.add(
            Worker(
                id=worker,
                host="elsewhere",
                pid=1,
                started_at=NOW - timedelta(hours=1),
                heartbeat_at=NOW - heartbeat_age,
            )
        )
        p, e = add_patient(s)
        return add_row(
            s,
            p,
            e,
            status="sending",
            claimed_by=worker,
            attempts=1,
            last_attempt_at=NOW - lease_age - DEFAULT_POLICY.lease,
            lease_until=NOW - lease_age,
        ).id


def test_it_reconciles_a_row_held_by_a_worker_that_died(services: Services) -> None:
    row_id = _claimed(services, "ghost", heartbeat_age=timedelta(minutes=2), lease_age=timedelta(seconds=1))
    reconcile_once(services, NOW, worker_id="me")
    row = get_row(services, row_id)
    # Not found at the provider (the memory channel never saw it): one resend.
    assert (row.status, row.claimed_by, row.status_reason) == (
        "pending",
        None,
        "not found at the provider; resending",
    )


def test_it_leaves_a_live_workers_row_until_its_lease_is_far_gone(services: Services) -> None:
    waiting = _claimed(services, "busy", heartbeat_age=timedelta(seconds=5), lease_age=timedelta(seconds=20))
    reconcile_once(services, NOW, worker_id="me")
    assert get_row(services, waiting).status == "sending"

    later = NOW + DEFAULT_POLICY.orphan_after
    with services.sessions() as s, s.begin():
        worker = s.get(Worker, "busy")
        assert worker is not None
        worker.heartbeat_at = later  # still beating, but the send has hung for 10 minutes
    reconcile_once(services, later, worker_id="me")
    assert get_row(services, waiting).status != "sending"


def test_it_puts_rows_held_at_shutdown_in_doubt_not_back_to_pending(services: Services) -> None:
    from checkin.app.worker import unregister
    from checkin.store.models import AuditEvent

    row_id = _claimed(services, "leaving", heartbeat_age=timedelta(0), lease_age=-timedelta(30))
    unregister(services, "leaving", NOW)
    row = get_row(services, row_id)
    assert (row.status, row.claimed_by) == ("in_doubt", None)  # it may have gone out
    with services.sessions() as s:
        assert (
            s.scalar(select(AuditEvent.action).where(AuditEvent.subject == f"outbox:{row_id}"))
            == "outbox.in_doubt"
        )
