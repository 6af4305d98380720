"""A provider's "slow down" holds the whole sender for as long as it says, even when that is
longer than the clock-jump horizon of the rate limiter (issue 15: a ``Retry-After: 120`` was
dropped as a clock jump and 266 more 429s followed in 15 s)."""

from __future__ import annotations

from datetime import timedelta

from checkin.channels.memory import MemoryChannel
from checkin.deps import Services
from checkin.errors import ChannelError, Refusal
from checkin.outbound.dispatch import run_once
from checkin.outbound.ratelimit import Pacer, held_until, hold_sender, reserve
from checkin.store.models import Patient
from tests.outbound.support import NOW, add_patient, add_row, statuses

W = "worker-a"
KEY = "sms:+15005550001"
SECOND = timedelta(seconds=1)


def test_a_hold_longer_than_the_clock_jump_horizon_is_honoured(services: Services) -> None:
    with services.sessions() as s, s.begin():
        assert reserve(s, KEY, NOW, SECOND) == NOW
        hold_sender(s, KEY, NOW + timedelta(seconds=120))
        hold_sender(s, KEY, NOW + timedelta(seconds=30))  # a shorter, later 429 does not shorten it
    with services.sessions() as s, s.begin():
        assert reserve(s, KEY, NOW + SECOND, SECOND) == NOW + timedelta(seconds=120)
        assert reserve(s, KEY, NOW + 2 * SECOND, SECOND) == NOW + timedelta(seconds=121)
        assert held_until(s, KEY, NOW) == NOW + timedelta(seconds=120)
        assert held_until(s, KEY, NOW + timedelta(seconds=120)) is None  # over


def test_a_queue_far_ahead_is_still_read_as_a_clock_jump(services: Services) -> None:
    with services.sessions() as s, s.begin():
        reserve(s, KEY, NOW + timedelta(hours=1), SECOND)  # a worker whose clock ran an hour fast
    with services.sessions() as s, s.begin():
        assert reserve(s, KEY, NOW, SECOND) == NOW


def test_a_hold_from_a_clock_set_far_back_is_ignored(services: Services) -> None:
    with services.sessions() as s, s.begin():
        hold_sender(s, KEY, NOW + timedelta(days=2))
    with services.sessions() as s, s.begin():
        assert reserve(s, KEY, NOW, SECOND) == NOW
        assert held_until(s, KEY, NOW) is None


def test_after_a_429_with_retry_after_120_no_other_row_goes_for_120_s(services: Services) -> None:
    with services.sessions() as s, s.begin():
        rows = [add_row(s, *add_patient(s)).id for _ in range(3)]
        phones = [p.phone for p in s.query(Patient).order_by(Patient.id)]
    channel = services.sms
    assert isinstance(channel, MemoryChannel)
    slow_down = ChannelError(
        "429", permanent=False, code="20429", retry_after=120, refusal=Refusal.RATE_LIMITED
    )
    channel.fail_next(1, slow_down)
    clock = services.clock

    def sleep(seconds: float) -> bool:
        clock.advance(timedelta(seconds=seconds))  # type: ignore[attr-defined]
        return True

    pacer = Pacer(services.sessions, clock, rate=1.0, sleep=sleep)
    assert run_once(services, NOW, worker_id=W, pacer=pacer) == len(rows)

    assert statuses(services) == {"sent": 2, "pending": 1}
    assert len(channel.attempts) == 3  # one 429, then nothing until the hold ended
    sent_to = {m.to for m in channel.sent}
    assert all(channel.list_recent(to, NOW + timedelta(seconds=120)) for to in sent_to)
    assert sent_to < set(phones)
