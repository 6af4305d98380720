"""A dispatch step keeps sends in flight across batches (docs/adr/0021): the next batch is
claimed while the last one is sent, every row claimed is still settled before the step
returns, a stop gives back what has not started, a sending thread holds one connection, and
the pacer reserves slots a block at a time."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from types import SimpleNamespace
from typing import Any, cast

import pytest
from sqlalchemy import event, select
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session
from sqlalchemy.pool import QueuePool

from checkin.app.bootstrap import build_engine
from checkin.channels import OutgoingMessage, Receipt
from checkin.channels.memory import MemoryChannel
from checkin.config import Settings
from checkin.deps import Services
from checkin.outbound import batches
from checkin.outbound.dispatch import Refill, run_once
from checkin.outbound.inflight import SPARE, pool_room
from checkin.outbound.pipeline import pump
from checkin.outbound.ratelimit import BLOCK, Pacer, hold_sender
from checkin.store import outbox
from checkin.store.models import AuditEvent
from tests.outbound.support import NOW, add_patient, add_row, get_row, statuses

W = "worker-a"
REFILL = Refill(rows=1_000, seconds=30.0)
KEY = "sms:+15005550001"


def plant(services: Services, n: int) -> list[int]:
    with services.sessions() as s, s.begin():
        return [add_row(s, *add_patient(s)).id for _ in range(n)]


class Gate:
    """A channel whose send of ``held`` waits (up to 10 s) until a send of one of ``awaited``
    has started, and records the order sends started and finished in."""

    def __init__(self, inner: MemoryChannel, held: int, awaited: set[int]) -> None:
        self.inner, self.held, self.awaited = inner, held, awaited
        self.opened = threading.Event()
        self.events: list[tuple[str, int]] = []
        self._lock = threading.Lock()

    def send(self, message: OutgoingMessage) -> Receipt:
        with self._lock:
            self.events.append(("start", message.outbox_id))
        if message.outbox_id in self.awaited:
            self.opened.set()
        if message.outbox_id == self.held:
            self.opened.wait(10)
        receipt = self.inner.send(message)
        with self._lock:
            self.events.append(("end", message.outbox_id))
        return receipt


def test_the_next_batch_starts_before_the_last_send_of_the_first_ends(services: Services) -> None:
    ids = plant(services, 12)
    first, later = ids[:4], set(ids[4:])
    assert isinstance(services.sms, MemoryChannel)
    gate = Gate(services.sms, held=first[-1], awaited=later)
    services.sms = gate

    claimed = run_once(services, NOW, worker_id=W, limit=4, concurrency=4, refill=REFILL)

    assert claimed == 12
    assert statuses(services) == {"sent": 12}
    assert gate.opened.is_set()  # a row of a later claim started while the first batch sent
    assert gate.events.index(("end", first[-1])) > min(gate.events.index(("start", i)) for i in later)


def test_without_refill_a_step_claims_one_batch(services: Services) -> None:
    plant(services, 6)
    assert run_once(services, NOW, worker_id=W, limit=4, concurrency=2) == 4
    assert statuses(services) == {"sent": 4, "pending": 2}


def test_a_step_stops_claiming_at_its_row_bound_and_when_a_claim_comes_back_short(
    services: Services,
) -> None:
    plant(services, 25)
    assert run_once(services, NOW, worker_id=W, limit=5, concurrency=2, refill=Refill(rows=10)) == 10
    assert statuses(services) == {"sent": 10, "pending": 15}
    assert run_once(services, NOW, worker_id=W, limit=4, concurrency=2, refill=REFILL) == 15
    assert statuses(services) == {"sent": 25}


def test_a_stop_gives_back_every_row_not_started_of_every_batch(services: Services) -> None:
    ids = plant(services, 30)
    stop = threading.Event()
    inner = services.sms
    assert isinstance(inner, MemoryChannel)
    started: list[int] = []

    class StopAfterFive:
        def send(self, message: OutgoingMessage) -> Receipt:
            started.append(message.outbox_id)
            if len(started) == 5:
                stop.set()  # SIGTERM while the step is on its second batch
            return inner.send(message)

    services.sms = StopAfterFive()
    run_once(services, NOW, worker_id=W, limit=3, concurrency=2, stop=stop, refill=REFILL)

    counts = statuses(services)
    assert counts["sent"] == len(started) and 5 <= len(started) <= 6
    assert "sending" not in counts
    for row_id in set(ids) - set(started):
        row = get_row(services, row_id)
        assert (row.status, row.claimed_by, row.lease_until, row.attempts) == ("pending", None, None, 0)


class FailingPacer(Pacer):
    """No pacing; the ``fail_on``-th reservation raises an unexpected error."""

    def __init__(self, fail_on: int) -> None:
        super().__init__(sessions=None, clock=None, rate=None)
        self.calls, self.fail_on = 0, fail_on
        self._calls_lock = threading.Lock()

    def wait_for_slot(self, key: str) -> tuple[bool, bool]:
        with self._calls_lock:
            self.calls += 1
            n = self.calls
        if n == self.fail_on:
            raise RuntimeError("boom")
        return True, False


def test_one_rows_error_in_a_later_batch_strands_nothing(services: Services) -> None:
    ids = plant(services, 20)
    pacer = FailingPacer(fail_on=9)
    run_once(services, NOW, worker_id=W, limit=4, concurrency=3, pacer=pacer, refill=REFILL)
    # The failed row went back to `pending` at once; a later claim of the same step may have
    # taken it again.
    counts = statuses(services)
    assert set(counts) <= {"sent", "pending"} and counts["sent"] >= 19
    assert pacer.calls == counts["sent"] + 1
    for row in (get_row(services, i) for i in ids):
        assert row.status == "sent" or (row.claimed_by, row.attempts) == (None, 0)


def test_a_failed_refill_claim_still_sends_the_rows_already_claimed(
    services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    plant(services, 12)
    real = outbox.claim
    calls = 0

    def claim(session: Session, *args: Any, **kw: Any) -> list[int]:
        nonlocal calls
        calls += 1
        if calls == 2:
            raise OperationalError("claim", {}, Exception("server closed the connection"))
        return real(session, *args, **kw)

    monkeypatch.setattr(batches.outbox, "claim", claim)
    assert run_once(services, NOW, worker_id=W, limit=4, concurrency=2, refill=REFILL) == 4
    assert statuses(services) == {"sent": 4, "pending": 8}  # nothing left `sending`


def test_a_sending_thread_holds_one_database_connection(services: Services) -> None:
    plant(services, 40)
    out = held = 0
    lock = threading.Lock()

    def checkout(*_: object) -> None:
        nonlocal out, held
        with lock:
            out += 1
            held = max(held, out)

    def checkin(*_: object) -> None:
        nonlocal out
        with lock:
            out -= 1

    event.listen(services.engine, "checkout", checkout)
    event.listen(services.engine, "checkin", checkin)
    threads = 6
    assert pool_room(services) >= threads
    assert services.settings.sms_rate is not None  # the dispatcher's own pacer reserves slots
    run_once(services, NOW, worker_id=W, limit=10, concurrency=threads, refill=REFILL)
    assert statuses(services) == {"sent": 40}
    assert held <= threads + 1  # one per sending thread, and the claim of the next batch


PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"  # never connected to


@pytest.mark.parametrize("cap", [4, 12, 40, 200])
def test_the_pool_and_the_send_threads_follow_the_connection_setting(cap: int) -> None:
    settings = Settings.from_env({"CHECKIN_DATABASE_URL": PG_URL, "CHECKIN_DB_MAX_CONNECTIONS": str(cap)})
    engine = build_engine(settings)
    try:
        pool = cast(QueuePool, engine.pool)
        assert pool.size() == min(10, cap)
        assert pool.size() + pool._max_overflow == cap
        # Each sending thread keeps one connection; SPARE stay for the rest of the worker.
        assert pool_room(cast(Services, SimpleNamespace(engine=engine))) == max(1, cap - SPARE)
    finally:
        engine.dispose()


def test_the_default_pool_is_40_and_a_callers_pool_arguments_win() -> None:
    settings = Settings.from_env({"CHECKIN_DATABASE_URL": PG_URL, "CHECKIN_DB_MAX_CONNECTIONS": "20"})
    for engine, size, overflow in (
        (build_engine(Settings.from_env({"CHECKIN_DATABASE_URL": PG_URL})), 10, 30),
        (build_engine(settings, max_overflow=2), 10, 2),
        (build_engine(settings, pool_size=3), 3, 10),
    ):
        pool = cast(QueuePool, engine.pool)
        assert (pool.size(), pool._max_overflow) == (size, overflow)
        engine.dispose()


def test_the_pacer_reserves_a_block_of_slots_per_transaction(services: Services) -> None:
    clock = services.clock
    rate = 1000.0
    reservations = 0

    @contextmanager
    def begin() -> Iterator[Session]:
        nonlocal reservations
        reservations += 1
        with services.sessions() as session, session.begin():
            yield session

    def sleep(seconds: float) -> bool:
        clock.advance(timedelta(seconds=seconds))  # type: ignore[attr-defined]
        return True

    pacer = Pacer(services.sessions, clock, rate=rate, sleep=sleep, begin=begin)
    block = int(rate * BLOCK)
    for _ in range(2 * block):
        assert pacer.wait_for_slot(KEY)[0]
    assert reservations == 2
    # Slots are still 1/rate apart: the last of 2 blocks is (2 x block - 1) intervals away.
    assert clock.now() - NOW == timedelta(seconds=(2 * block - 1) / rate)


def test_a_provider_hold_drops_the_slots_a_worker_reserved_ahead(services: Services) -> None:
    clock = services.clock

    def sleep(seconds: float) -> bool:
        clock.advance(timedelta(seconds=seconds))  # type: ignore[attr-defined]
        return True

    pacer = Pacer(services.sessions, clock, rate=1000.0, sleep=sleep)
    assert pacer.wait_for_slot(KEY) == (True, False)  # took a block; the rest is kept
    with services.sessions() as s, s.begin():
        hold_sender(s, KEY, NOW + timedelta(seconds=120))  # a 429 with Retry-After: 120
    pacer.forget(KEY)
    assert pacer.wait_for_slot(KEY) == (True, True)
    assert clock.now() == NOW + timedelta(seconds=120)


def test_a_receipt_and_its_audit_row_are_one_statement_on_postgresql(services: Services) -> None:
    row_id = plant(services, 1)[0]
    statements: list[str] = []

    def seen(conn: object, cursor: object, statement: str, *args: object) -> None:
        statements.append(" ".join(statement.split()).upper())

    event.listen(services.engine, "before_cursor_execute", seen)
    run_once(services, NOW, worker_id=W)
    event.remove(services.engine, "before_cursor_execute", seen)

    assert get_row(services, row_id).status == "sent"
    writes = [s for s in statements if ("UPDATE OUTBOX" in s and "PROVIDER_ID" in s) or "INTO AUDIT_LOG" in s]
    if services.is_sqlite:  # no UPDATE inside WITH
        assert [w.split()[0] for w in writes] == ["UPDATE", "INSERT"]
    else:
        assert len(writes) == 1 and writes[0].startswith("WITH SENT AS (UPDATE OUTBOX")
        assert "INSERT INTO AUDIT_LOG" in writes[0]
    with services.sessions() as s:
        audits = s.scalars(select(AuditEvent).where(AuditEvent.action == "outbox.sent")).all()
    assert [(a.actor, a.patient_ref is not None, a.subject) for a in audits] == [
        ("system", True, f"outbox:{row_id}")
    ]
    assert audits[0].detail == {
        "channel": "sms",
        "provider_id": get_row(services, row_id).provider_id,
        "attempt": 1,
    }


@pytest.mark.parametrize("threads", [1, 3])
def test_pump_raises_what_a_send_raised_after_every_other_row_is_sent(threads: int) -> None:
    sent: list[int] = []
    batches = [[4, 5, 6], [7, 8]]
    lock = threading.Lock()

    def send(item: int) -> None:
        if item == 2:
            raise RuntimeError("boom")
        with lock:
            sent.append(item)

    with pytest.raises(RuntimeError, match="boom"):
        pump(
            [1, 2, 3],
            send,
            threads=threads,
            more=lambda: batches.pop(0) if batches else None,
            give_back=lambda rows: pytest.fail(f"gave back {rows}"),
            stopping=lambda: False,
        )
    assert sorted(sent) == [1, 3, 4, 5, 6, 7, 8]
