"""Nothing claimed stays stranded under a live worker: a database error on one row does not
take the rest of the batch with it, a row whose pre-send step failed is given back at once,
and a claim whose answer was lost is released by the worker's next dispatch step."""

from __future__ import annotations

import random
import threading
from datetime import timedelta

from sqlalchemy.exc import OperationalError

from checkin.deps import Services
from checkin.outbound.dispatch import InFlight, run_once
from checkin.outbound.ratelimit import Pacer
from checkin.store import outbox
from checkin.store.outbox import DEFAULT_POLICY, backoff
from tests.outbound.support import NOW, add_patient, add_row, get_row, statuses

W = "worker-a"


class FailingPacer(Pacer):
    """No pacing, but ``wait_for_slot`` raises for the n-th call (``error``), as a rate-limit
    reservation does when the database goes away in the middle of a batch."""

    def __init__(self, fail_on: int, error: Exception) -> None:
        super().__init__(sessions=None, clock=None, rate=None)
        self.calls = 0
        self.fail_on = fail_on
        self.error = error
        self._lock = threading.Lock()

    def wait_for_slot(self, key: str) -> tuple[bool, bool]:
        with self._lock:
            self.calls += 1
            n = self.calls
        if n == self.fail_on:
            raise self.error
        return True, False


def plant(services: Services, n: int) -> list[int]:
    with services.sessions() as s, s.begin():
        ids = []
        for _ in range(n):
            p, e = add_patient(s)
            ids.append(add_row(s, p, e).id)
    return ids


def test_one_rows_unexpected_error_releases_that_row_and_the_batch_goes_on(services: Services) -> None:
    ids = plant(services, 12)
    pacer = FailingPacer(fail_on=2, error=RuntimeError("boom"))

    assert run_once(services, NOW, worker_id=W, pacer=pacer, concurrency=4) == 12

    assert statuses(services) == {"sent": 11, "pending": 1}
    released = [get_row(services, i) for i in ids if get_row(services, i).status == "pending"]
    assert released[0].claimed_by is None and released[0].attempts == 0  # no provider call made


def test_a_database_blip_in_the_pacer_is_waited_out_and_every_row_goes(services: Services) -> None:
    plant(services, 8)
    pacer = FailingPacer(fail_on=3, error=OperationalError("reserve", {}, Exception("server closed")))

    run_once(services, NOW, worker_id=W, pacer=pacer, concurrency=3)

    assert statuses(services) == {"sent": 8}
    assert pacer.calls == 9  # the failed reservation was tried again


def test_rows_stranded_by_a_lost_claim_are_released_and_sent_on_the_next_step(services: Services) -> None:
    ids = plant(services, 3)
    with services.sessions() as s, s.begin():  # committed, but the worker never heard back
        assert sorted(outbox.claim(s, NOW, worker_id=W, limit=10, lease=DEFAULT_POLICY.lease)) == sorted(ids)

    later = NOW + timedelta(seconds=2)  # well inside the lease: only the worker itself can tell
    assert run_once(services, later, worker_id=W, pacer=Pacer.unlimited()) == 3

    assert statuses(services) == {"sent": 3}
    assert {get_row(services, i).attempts for i in ids} == {1}  # the lost claim was uncounted


def test_another_workers_claims_are_not_released(services: Services) -> None:
    ids = plant(services, 2)
    with services.sessions() as s, s.begin():
        outbox.claim(s, NOW, worker_id="worker-b", limit=10, lease=DEFAULT_POLICY.lease)

    assert run_once(services, NOW, worker_id=W, pacer=Pacer.unlimited()) == 0
    assert {get_row(services, i).claimed_by for i in ids} == {"worker-b"}


def test_in_flight_is_sized_from_the_rate_and_the_observed_latency() -> None:
    sizing = InFlight(100.0)
    for _ in range(50):
        sizing.observe(0.150)
    assert 16 <= sizing.size() <= 30  # 100 msg/s x 0.15 s = 15 in flight, with a margin
    slow = InFlight(1.0)
    slow.observe(0.150)
    assert slow.size() == 4  # never below the floor
    assert InFlight(None).size() == 64  # no rate: the ceiling


def test_the_first_retry_is_already_jittered() -> None:
    rng = random.Random(1)
    delays = {backoff(1, DEFAULT_POLICY, rng).total_seconds() for _ in range(20)}
    base = DEFAULT_POLICY.backoff_base.total_seconds()
    assert len(delays) > 10  # not one instant for a whole failed wave
    assert all(base <= d <= 2 * base for d in delays)
