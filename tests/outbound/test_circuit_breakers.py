"""Circuit breakers per channel (docs/adr/0016-circuit-breakers-per-channel.md): a provider
outage or a relay refusing everyone holds the channel's queue, with its attempts unspent,
instead of dead-lettering it and opening an alert per patient; one operations alert per
opening; a probe reopens the channel."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta

import pytest
from sqlalchemy import func, select

from checkin.channels.memory import MemoryChannel
from checkin.deps import Services
from checkin.errors import ChannelError, Refusal
from checkin.outbound.breaker import Breaker, BreakerPolicy, Breakers, open_circuits
from checkin.outbound.dispatch import run_once
from checkin.store.models import Alert, AuditEvent, OutboxMessage
from checkin.store.outbox import DEFAULT_POLICY
from checkin.store.status import collect, status_lines
from tests.outbound.support import NOW, add_patient, add_row, get_row, statuses

W = "worker-a"
POLICY = BreakerPolicy()
REFUSED = ChannelError("could not connect (refused)", permanent=False)
RELAY_550 = ChannelError(
    "SMTP rcpt refused with 550", permanent=True, code="550", refusal=Refusal.UNREACHABLE
)
OPTED_OUT = ChannelError("opted out", permanent=True, code="21610", refusal=Refusal.OPTED_OUT)
SLOW_DOWN = ChannelError("429", permanent=False, code="20429", retry_after=1, refusal=Refusal.RATE_LIMITED)


# ---- one breaker ---------------------------------------------------------------------------


def test_faults_in_a_row_open_it_one_probe_goes_and_a_success_closes_it() -> None:
    b = Breaker("sms")
    judged = [b.failure(REFUSED, f"+1555000{i}", NOW) for i in range(POLICY.faults)]
    assert [j.opened_until for j in judged] == [None] * (POLICY.faults - 1) + [NOW + POLICY.first_open]
    assert not b.allow(NOW + timedelta(seconds=1)) and b.is_open(NOW)

    probe_at = NOW + POLICY.first_open
    assert b.allow(probe_at)  # one probe
    assert not b.allow(probe_at)  # and only one while it is out
    failed = b.failure(REFUSED, "+15550000", probe_at)
    assert (failed.opened_until, failed.reopened) == (probe_at + 2 * POLICY.first_open, True)

    assert b.allow(probe_at + 2 * POLICY.first_open)
    assert b.success() and not b.is_open(probe_at) and b.allow(probe_at)


def test_rate_limits_and_faults_spread_out_in_time_do_not_open_it() -> None:
    b = Breaker("sms")
    for _ in range(20):
        assert b.failure(SLOW_DOWN, "+15550000", NOW).opened_until is None
    for i in range(POLICY.faults):
        assert (
            b.failure(REFUSED, "+15550000", NOW + i * (POLICY.window + timedelta(seconds=1))).opened_until
            is None
        )
    assert b.allow(NOW + timedelta(hours=1))


def test_identical_refusals_to_many_recipients_read_as_a_relay_problem() -> None:
    b = Breaker("email")
    judged = [b.failure(RELAY_550, f"p{i}@example.org", NOW) for i in range(POLICY.burst)]

    assert judged[0].error.permanent  # one refusal is about that recipient
    assert not any(j.error.permanent for j in judged[1:])  # the second on: retried, not dead
    assert judged[-1].opened_until is not None


def test_refusals_with_a_success_between_them_stay_permanent() -> None:
    b = Breaker("email")
    for i in range(10):
        assert b.failure(RELAY_550, f"p{i}@example.org", NOW).error.permanent
        b.success()
    same_person = [b.failure(RELAY_550, "gone@example.org", NOW) for _ in range(10)]
    assert all(j.error.permanent and j.opened_until is None for j in same_person)


def test_a_probe_answered_about_its_own_message_closes_it() -> None:
    bad_number = ChannelError("not a mobile", permanent=True, code="21614", refusal=Refusal.NOT_MOBILE)
    for answer in (bad_number, OPTED_OUT, SLOW_DOWN):
        b = Breaker("sms")
        for i in range(POLICY.faults):
            b.failure(REFUSED, f"+1555000{i}", NOW)
        probe_at = NOW + POLICY.first_open
        assert b.allow(probe_at)

        judged = b.failure(answer, "+15550100", probe_at)

        # The provider is up; without this the probe counted as out for `longest_open`.
        assert judged.closed and judged.opened_until is None and judged.error is answer
        assert not b.is_open(probe_at) and b.allow(probe_at)


def test_a_probe_refused_like_the_run_that_opened_it_reopens_it() -> None:
    b = Breaker("email")
    opened = [b.failure(RELAY_550, f"p{i}@example.org", NOW) for i in range(POLICY.burst)][-1]
    assert opened.opened_until is not None
    probe_at = opened.opened_until
    assert b.allow(probe_at)

    judged = b.failure(RELAY_550, "another@example.org", probe_at)

    assert not judged.closed and judged.reopened and not judged.error.permanent
    assert b.is_open(probe_at)


# ---- through dispatch ----------------------------------------------------------------------


def ops_events(caplog: pytest.LogCaptureFixture, event: str) -> int:
    return sum(1 for r in caplog.records if r.name == "checkin.ops" and getattr(r, "event", None) == event)


def plant(services: Services, n: int, channel: str = "sms") -> list[int]:
    with services.sessions() as s, s.begin():
        ids = []
        for i in range(n):
            p, e = add_patient(s, email=f"p{i}.{channel}@example.org")
            ids.append(add_row(s, p, e, channel=channel, expires=NOW + timedelta(days=1)).id)
    return ids


def attempts(services: Services) -> int:
    with services.sessions() as s:
        return int(s.scalar(select(func.sum(OutboxMessage.attempts))) or 0)


def failing(channel: object, times: int, error: ChannelError) -> MemoryChannel:
    """The services' in-memory ``channel``, failing its next ``times`` sends with ``error``."""
    assert isinstance(channel, MemoryChannel)
    channel.fail_next(times, error)
    return channel


def advance_to(services: Services, when: object) -> None:
    services.clock.set(when)  # type: ignore[attr-defined]


def ticks(
    services: Services, start: datetime, end: datetime, workers: dict[str, Breakers]
) -> Iterator[datetime]:
    """Every 5 s from ``start`` until ``end``: each of ``workers`` runs a dispatch step; yields
    the next instant after each round."""
    now = start
    while now < end:
        advance_to(services, now)
        for name, breakers in workers.items():
            run_once(services, now, worker_id=name, breakers=breakers)
        now += timedelta(seconds=5)
        yield now


def test_a_provider_outage_holds_the_queue_with_its_attempts_unspent(
    services: Services, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("INFO", logger="checkin.ops")
    plant(services, 40)
    channel = failing(services.sms, 10_000, REFUSED)
    breakers = Breakers()

    run_once(services, NOW, worker_id=W, breakers=breakers)

    assert len(channel.attempts) == POLICY.faults  # then the circuit opened
    assert statuses(services) == {"pending": 40}
    assert attempts(services) == POLICY.faults  # the 35 held back kept their budget
    assert ops_events(caplog, "channel.circuit_open") == 1
    with services.sessions() as s:
        assert set(open_circuits(s, NOW)) == {"sms"}
        told = [line for line in status_lines(collect(s, NOW)) if line.startswith("circuits")]
        assert told == ["circuits    sms OPEN (provider failing; next probe 15:00:05 UTC)"]
    # Open: nothing is claimed at all, by this worker or another.
    assert run_once(services, NOW + timedelta(seconds=1), worker_id=W, breakers=breakers) == 0
    assert run_once(services, NOW + timedelta(seconds=1), worker_id="worker-b", breakers=Breakers()) == 0

    # Still down at the first probe: one attempt, open twice as long, no second ops alert.
    probe = NOW + POLICY.first_open
    advance_to(services, probe)
    run_once(services, probe, worker_id=W, breakers=breakers)
    assert len(channel.attempts) == POLICY.faults + 1
    assert ops_events(caplog, "channel.circuit_open") == 1

    # Back: the next probe closes it and the queue drains.
    channel.clear_failures()
    later = NOW + timedelta(hours=1)
    advance_to(services, later)
    for _ in range(3):
        run_once(services, later, worker_id=W, breakers=breakers)
    assert statuses(services) == {"sent": 40}
    assert ops_events(caplog, "channel.circuit_closed") == 1
    with services.sessions() as s:
        assert open_circuits(s, later) == {}


def test_a_probe_refused_for_its_own_recipient_reopens_the_channel_at_once(
    services: Services, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("INFO", logger="checkin.ops")
    plant(services, 20)
    channel = failing(services.sms, POLICY.faults, REFUSED)
    breakers = Breakers()
    run_once(services, NOW, worker_id=W, breakers=breakers)
    assert ops_events(caplog, "channel.circuit_open") == 1

    # Twilio is back, and the probe's number happens to be a landline.
    channel.fail_next(1, ChannelError("landline", permanent=True, code="21614", refusal=Refusal.NOT_MOBILE))
    probe = NOW + POLICY.first_open
    advance_to(services, probe)
    run_once(services, probe, worker_id=W, breakers=breakers)
    run_once(services, probe, worker_id=W, breakers=breakers)

    # The rest went at once, not after `longest_open`; pending: the landline (asked again
    # later) and the rows the outage failed (in their backoff).
    assert statuses(services) == {"sent": 20 - POLICY.faults - 1, "pending": POLICY.faults + 1}
    assert ops_events(caplog, "channel.circuit_closed") == 1
    with services.sessions() as s:
        assert open_circuits(s, probe) == {}


def test_a_relay_refusing_everyone_dead_letters_nothing_and_opens_no_alert_storm(
    services: Services, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("INFO", logger="checkin.ops")
    ids = plant(services, 30, channel="email")
    channel = failing(services.email, 12, RELAY_550)  # a relay-wide 550 for a while
    breakers = Breakers()

    now = NOW
    for _ in range(40):
        advance_to(services, now)
        run_once(services, now, worker_id=W, breakers=breakers)
        now += timedelta(minutes=5)

    # Not even the first refusal: it was asked again, and by then the relay was sending.
    assert statuses(services) == {"sent": 30}
    assert sorted(m.outbox_id for m in channel.sent) == ids  # each once
    with services.sessions() as s:
        assert s.scalar(select(func.count()).select_from(Alert)) == 0
    assert ops_events(caplog, "channel.circuit_open") == 1


def test_a_refusal_asked_again_is_final_and_the_memory_is_the_rows(
    services: Services, caplog: pytest.LogCaptureFixture
) -> None:
    """A genuine bad address: refused, asked again a little later (by a restarted worker, so
    with a new breaker), refused again: dead, and the nurses' contact-problem alert opens."""
    [row_id] = plant(services, 1, channel="email")
    channel = failing(services.email, 2, RELAY_550)

    run_once(services, NOW, worker_id=W, breakers=Breakers())
    row = get_row(services, row_id)
    assert (row.status, row.attempts, row.last_error_code) == ("pending", 0, "?550")
    assert row.next_attempt_at == NOW + DEFAULT_POLICY.confirm_refusal
    with services.sessions() as s:
        assert s.scalar(select(func.count()).select_from(Alert)) == 0

    again = NOW + DEFAULT_POLICY.confirm_refusal
    advance_to(services, again)
    run_once(services, again, worker_id="worker-b", breakers=Breakers())
    row = get_row(services, row_id)
    assert (row.status, row.attempts, row.last_error_code) == ("dead", 1, "550")
    with services.sessions() as s:
        assert [a.kind for a in s.scalars(select(Alert))] == ["contact_problem"]
    assert len(channel.attempts) == 2


def test_a_different_answer_between_two_refusals_starts_the_confirmation_again(
    services: Services,
) -> None:
    [row_id] = plant(services, 1, channel="email")
    channel = failing(services.email, 1, RELAY_550)
    channel.fail_next(1, REFUSED)
    channel.fail_next(1, RELAY_550)

    now = NOW
    for _ in range(3):
        advance_to(services, now)
        run_once(services, now, worker_id=W, breakers=Breakers())
        now += timedelta(hours=2)
    row = get_row(services, row_id)
    # 550, a connection refused, 550: not twice in a row, so still pending, once more to ask
    assert (row.status, row.last_error_code) == ("pending", "?550")
    assert row.attempts == 1  # only the transient failure spent one


def test_an_opt_out_is_acted_on_at_once(services: Services) -> None:
    [row_id] = plant(services, 1)
    failing(services.sms, 1, OPTED_OUT)

    run_once(services, NOW, worker_id=W, breakers=Breakers())
    row = get_row(services, row_id)
    assert (row.status, row.last_error_code) == ("held", "21610")


def test_another_worker_holds_back_too_and_probes_with_one_send(
    services: Services, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("INFO", logger="checkin.ops")
    plant(services, 30)
    channel = failing(services.sms, 10_000, REFUSED)
    run_once(services, NOW, worker_id=W, breakers=Breakers())  # worker-a opens the circuit
    other = Breakers()
    assert run_once(services, NOW + timedelta(seconds=1), worker_id="worker-b", breakers=other) == 0

    probe = NOW + POLICY.first_open
    advance_to(services, probe)
    tried = len(channel.attempts)
    run_once(services, probe, worker_id="worker-b", breakers=other)

    assert len(channel.attempts) == tried + 1  # one probe, not a batch
    assert ops_events(caplog, "channel.circuit_open") == 1  # its failed probe is no new opening
    channel.clear_failures()
    later = probe + timedelta(minutes=5)
    advance_to(services, later)
    for _ in range(3):
        run_once(services, later, worker_id="worker-b", breakers=other)
    assert statuses(services) == {"sent": 30}
    assert ops_events(caplog, "channel.circuit_closed") == 1


# ---- operations hear of a long outage ------------------------------------------------------


def test_a_circuit_open_for_minutes_is_told_to_operations_once_by_one_of_the_workers(
    services: Services, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("INFO", logger="checkin.ops")
    plant(services, 20)
    channel = failing(services.sms, 10_000, REFUSED)
    workers = {"worker-a": Breakers(), "worker-b": Breakers()}

    for now in ticks(services, NOW, NOW + 3 * POLICY.still_open, workers):  # both, every 5 s
        if now <= NOW + POLICY.still_open:
            assert ops_events(caplog, "channel.circuit_still_open") == 0

    told = [r for r in caplog.records if getattr(r, "event", None) == "channel.circuit_still_open"]
    assert len(told) == 1 and told[0].channel == "sms"  # type: ignore[attr-defined]
    assert told[0].open_since == NOW.isoformat()  # type: ignore[attr-defined]
    with services.sessions() as s:
        audited = s.scalars(select(AuditEvent).where(AuditEvent.action.like("channel.circuit%"))).all()
    assert [(a.action, a.detail["channel"]) for a in audited] == [
        ("channel.circuit_opened", "sms"),
        ("channel.circuit_still_open", "sms"),
    ]

    # It closes, and a later opening that lasts is a new outage: told again.
    channel.clear_failures()
    *_, now = ticks(
        services, now, now + POLICY.longest_open, {"worker-a": workers["worker-a"]}
    )  # a probe goes
    assert ops_events(caplog, "channel.circuit_closed") == 1
    with services.sessions() as s:
        closed = s.scalars(select(AuditEvent).where(AuditEvent.action == "channel.circuit_closed")).all()
    assert [(a.subject, a.detail["channel"]) for a in closed] == [("circuit:sms", "sms")]  # when it ended
    channel.fail_next(10_000, REFUSED)
    plant(services, 10)
    list(ticks(services, now, now + 2 * POLICY.still_open, {"worker-b": workers["worker-b"]}))
    assert ops_events(caplog, "channel.circuit_still_open") == 2


def test_a_circuit_closed_within_minutes_is_no_long_outage(
    services: Services, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("INFO", logger="checkin.ops")
    plant(services, 20)
    failing(services.sms, POLICY.faults + 3, REFUSED)  # five faults open it, three probes fail
    breakers = Breakers()

    list(ticks(services, NOW, NOW + 3 * POLICY.still_open, {W: breakers}))

    assert statuses(services) == {"sent": 20}
    assert ops_events(caplog, "channel.circuit_open") == 1
    assert ops_events(caplog, "channel.circuit_closed") == 1
    assert ops_events(caplog, "channel.circuit_still_open") == 0
