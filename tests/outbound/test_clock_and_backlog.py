"""docs/reliability.md R8 (DST and clock jumps) and R12 (a backlog after an outage), plus the
start-up report, on a ManualClock: "time passes" only when a test or the pacer's sleep says."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from checkin.app.worker import startup_report
from checkin.channels import OutgoingMessage, Receipt
from checkin.channels.memory import MemoryChannel
from checkin.clock import ManualClock
from checkin.deps import Services
from checkin.outbound.dispatch import run_once
from checkin.outbound.ratelimit import Pacer
from checkin.outbound.reconcile import reconcile_once
from checkin.store.models import OutboxMessage
from tests.outbound.support import NOW, add_many, add_patient, add_row, get_row, statuses

W = "worker-a"


def clock_of(services: Services) -> ManualClock:
    assert isinstance(services.clock, ManualClock)
    return services.clock


def sms(services: Services) -> MemoryChannel:
    assert isinstance(services.sms, MemoryChannel)
    return services.sms


def test_it_reports_overdue_and_skips_expired_at_start(services: Services) -> None:
    with services.sessions() as s, s.begin():
        p, e = add_patient(s)
        add_row(s, p, e, step="a", due=NOW - timedelta(hours=1))  # still valid
        add_row(s, p, e, step="b", due=NOW - timedelta(hours=7))  # expired an hour ago
        add_row(s, p, e, step="c", due=NOW - timedelta(hours=8), status="held")  # expired too
        add_row(s, p, e, step="d", due=NOW + timedelta(hours=1))  # not due yet
    report = startup_report(services, NOW)
    assert (report.overdue, report.expired_skipped) == (1, 2)
    assert str(report) == (
        "start-up: 1 overdue message(s) still valid will go out now; 2 expired message(s) skipped"
    )
    assert statuses(services) == {"pending": 2, "skipped": 2}


def test_it_sends_the_valid_once_and_skips_the_expired_after_a_3_hour_jump(services: Services) -> None:
    with services.sessions() as s, s.begin():
        p, e = add_patient(s)
        overdue_valid = add_row(s, p, e, step="a", due=NOW - timedelta(minutes=10)).id
        overdue_gone = add_row(
            s, p, e, step="b", due=NOW - timedelta(minutes=10), expires=NOW + timedelta(hours=1)
        ).id
        due_gone = add_row(
            s, p, e, step="c", due=NOW + timedelta(hours=1), expires=NOW + timedelta(hours=2)
        ).id
        due_valid = add_row(s, p, e, step="d", due=NOW + timedelta(hours=2)).id
    jumped = NOW + timedelta(hours=3)  # 13:00 in New York: inside the window
    clock_of(services).set(jumped)

    assert (startup_report(services, jumped).overdue, statuses(services)["skipped"]) == (2, 2)
    run_once(services, jumped, worker_id=W)
    run_once(services, jumped + timedelta(seconds=2), worker_id=W)
    assert sorted(m.outbox_id for m in sms(services).sent) == [overdue_valid, due_valid]
    assert get_row(services, overdue_gone).status_reason == "expired"
    assert get_row(services, due_gone).status == "skipped"


def test_it_resends_nothing_and_does_not_stall_when_the_clock_goes_back_an_hour(services: Services) -> None:
    with services.sessions() as s, s.begin():
        p, e = add_patient(s)
        sent = add_row(s, p, e, step="a").id
    slept: list[float] = []

    def sleep(seconds: float) -> bool:
        slept.append(seconds)
        clock_of(services).advance(timedelta(seconds=seconds))
        return True

    pacer = Pacer(services.sessions, services.clock, rate=1.0, sleep=sleep)
    run_once(services, NOW, worker_id=W, pacer=pacer)
    back = NOW - timedelta(hours=1)
    clock_of(services).set(back)
    with services.sessions() as s, s.begin():
        p, e = add_patient(s)
        fresh = add_row(s, p, e, step="a", due=back - timedelta(minutes=1)).id

    run_once(services, back, worker_id=W, pacer=pacer)
    reconcile_once(services, back, worker_id=W)
    run_once(services, back + timedelta(seconds=5), worker_id=W, pacer=pacer)
    assert [m.outbox_id for m in sms(services).sent] == [sent, fresh]
    assert sum(slept) < 2  # the slot reserved "an hour ahead" was not waited for


def test_it_rechecks_the_window_in_the_patients_zone_across_spring_forward(services: Services) -> None:
    # 2026-03-08 06:30 UTC is 01:30 EST; at 02:00 New York springs to 03:00 EDT, so the
    # window opens at 09:00 EDT = 13:00 UTC, not 14:00 UTC.
    night = datetime(2026, 3, 8, 6, 30, tzinfo=UTC)
    clock_of(services).set(night)
    with services.sessions() as s, s.begin():
        p, e = add_patient(s)
        row_id = add_row(
            s, p, e, due=night - timedelta(hours=12), expires=night + timedelta(hours=12), now=night
        ).id
    run_once(services, night, worker_id=W)
    row = get_row(services, row_id)
    assert (row.status, row.next_attempt_at) == ("pending", datetime(2026, 3, 8, 13, tzinfo=UTC))
    assert sms(services).attempts == []


def test_it_drains_a_backlog_of_2000_at_the_rate_and_skips_what_went_stale(services: Services) -> None:
    rate = 50.0
    # 2,000 rows overdue after an outage: 400 expired before it ended, 100 expire 10 s into
    # the drain (due latest, so they are reached last), 1,500 stay valid for hours.
    expired = add_many(services, 400, due=lambda i: NOW - timedelta(hours=7, seconds=i))
    valid = add_many(services, 1500, due=lambda i: NOW - timedelta(hours=2, seconds=-i))
    short = add_many(
        services, 100, due=lambda i: NOW - timedelta(minutes=5), expires=lambda i: NOW + timedelta(seconds=10)
    )
    clock = clock_of(services)

    def sleep(seconds: float) -> bool:
        clock.advance(timedelta(seconds=seconds))
        return True

    report = startup_report(services, NOW)
    assert (report.expired_skipped, report.overdue) == (400, 1600)
    pacer = Pacer(services.sessions, clock, rate=rate, sleep=sleep)
    times: list[datetime] = []
    inner = sms(services)

    class Timed:
        def send(self, message: OutgoingMessage) -> Receipt:
            times.append(clock.now())
            return inner.send(message)

    services.sms = Timed()
    while run_once(services, clock.now(), worker_id=W, pacer=pacer, limit=200):
        pass

    sent_ids = [m.outbox_id for m in inner.sent]
    assert sorted(sent_ids) == sorted(valid)  # each valid one exactly once, in due order
    assert sent_ids[:3] == valid[:3]
    start = times[0]
    for n, t in enumerate(times):
        assert n <= rate * (t - start).total_seconds() + 1  # never faster than the rate
    assert (times[-1] - start).total_seconds() < len(times) / rate + 1  # and not much slower
    with services.sessions() as s:
        reasons = dict(
            s.execute(
                select(OutboxMessage.id, OutboxMessage.status_reason).where(
                    OutboxMessage.id.in_(short + expired)
                )
            ).all()
        )
    assert all(reasons[i] == "expired" for i in short + expired)
