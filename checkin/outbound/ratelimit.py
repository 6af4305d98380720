"""Send slots per sender, shared by every worker through the ``rate_limits`` table.

A long code may send 1 SMS/s (``CHECKIN_SMS_RATE``); Twilio queues the excess and, past its
queue limit, refuses with 429. So a 9:00 wave for thousands of patients is paced here, before
the provider call: each send first reserves the sender's next free instant and waits until it.

``reserve`` is one short transaction that locks the sender's row (``SELECT … FOR UPDATE`` on
PostgreSQL; SQLite's ``BEGIN IMMEDIATE`` already holds the database's write lock), moves
``next_free_at`` to ``max(next_free_at, now) + 1/rate`` and returns the slot it took. N workers
on one database therefore send at ``rate`` together, not ``N × rate``.

A provider's "slow down" (a 429 with ``Retry-After``) is kept apart, in a ``hold:<key>`` row:
a queue far ahead of ``now`` means the clock jumped and is reset, but a hold is an explicit
instant and is honoured however long it is (up to ``MAX_HOLD``).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from checkin.clock import Clock
from checkin.store.db import insert_ignore
from checkin.store.models import RateLimit

# The longest provider hold honoured. Twilio's Retry-After is seconds to minutes; a hold more
# than a day ahead can only come from a clock that was set back, and is ignored.
MAX_HOLD = timedelta(days=1)


def reserve(session: Session, key: str, now: datetime, interval: timedelta) -> datetime:
    """Take the next send slot of ``key``: the returned instant is when the caller may send
    (``now`` or later). The caller commits at once.

    A stored ``next_free_at`` further ahead than any real queue could be (the clock was set
    back, or a worker's clock ran fast) is reset to ``now``: otherwise a -1 h clock jump would
    silence the sender for an hour.
    """
    locked = select(RateLimit.next_free_at).where(RateLimit.key == key).with_for_update()
    stored = session.scalar(locked)
    if stored is None:  # first send from this sender: create its row (another worker may race)
        insert_ignore(session, RateLimit, {"key": key, "next_free_at": now}, ["key"])
        stored = session.scalar(locked)
        assert stored is not None
    start = held_until(session, key, now) or now  # a provider hold moves the queue's start
    horizon = max(timedelta(seconds=60), interval * 100)
    slot = start if stored > start + horizon else max(stored, start)
    session.execute(update(RateLimit).where(RateLimit.key == key).values(next_free_at=slot + interval))
    return slot


@dataclass
class Pacer:
    """Paces provider calls per sender key.

    ``rate`` is messages per second for every key (None: no pacing). ``sleep(seconds)`` waits
    and returns False if it was interrupted (the worker is stopping); the default waits on
    ``stop`` so SIGTERM cuts a long wait short. Tests pass a ``sleep`` that advances a
    ManualClock, so pacing is exercised without real waiting.
    """

    sessions: sessionmaker[Session] | None
    clock: Clock | None
    rate: float | None
    stop: threading.Event | None = None
    sleep: Callable[[float], bool] | None = None

    @classmethod
    def unlimited(cls) -> Pacer:
        return cls(sessions=None, clock=None, rate=None)

    @property
    def active(self) -> bool:
        return self.rate is not None and self.sessions is not None and self.clock is not None

    def wait_for_slot(self, key: str) -> tuple[bool, bool]:
        """Reserve a slot for ``key`` and wait until it. Returns ``(go, waited)``: ``go`` is
        False when the wait was interrupted; ``waited`` whether any time passed (the caller
        then re-checks the row, since the world may have moved on)."""
        if not self.active:
            return True, False
        assert self.sessions is not None and self.clock is not None and self.rate is not None
        interval = timedelta(seconds=1.0 / self.rate)
        with self.sessions() as session, session.begin():
            slot = reserve(session, key, self.clock.now(), interval)
        delay = (slot - self.clock.now()).total_seconds()
        if delay <= 0:
            return True, False
        return self._sleep(delay), True

    def _sleep(self, seconds: float) -> bool:
        if self.sleep is not None:
            return self.sleep(seconds)
        if self.stop is not None:
            return not self.stop.wait(seconds)
        time.sleep(seconds)
        return True


def hold_sender(session: Session, key: str, until: datetime) -> None:
    """Let no send of ``key`` go before ``until``: a 429 speaks for the whole sender, so the
    other workers stop hitting the limit too instead of each finding out on its own. A later
    hold only ever extends an earlier one."""
    hold = _hold_key(key)
    insert_ignore(session, RateLimit, {"key": hold, "next_free_at": until}, ["key"])
    session.execute(
        update(RateLimit)
        .where(RateLimit.key == hold, RateLimit.next_free_at < until)
        .values(next_free_at=until)
    )


def held_until(session: Session, key: str, now: datetime) -> datetime | None:
    """When the provider's hold on ``key`` ends, or None if none is in force at ``now``."""
    held = session.scalar(select(RateLimit.next_free_at).where(RateLimit.key == _hold_key(key)))
    return held if held is not None and now < held <= now + MAX_HOLD else None


def _hold_key(key: str) -> str:
    return f"hold:{key}"


__all__ = ["MAX_HOLD", "Pacer", "held_until", "hold_sender", "reserve"]
