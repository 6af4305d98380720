"""Send slots per sender, shared by every worker through the ``rate_limits`` table.

A long code may send 1 SMS/s (``CHECKIN_SMS_RATE``); Twilio queues the excess and, past its
queue limit, refuses with 429. So a 9:00 wave for thousands of patients is paced here, before
the provider call: each send first reserves the sender's next free instant and waits until it.

``reserve`` is one short transaction that locks the sender's row (``SELECT … FOR UPDATE`` on
PostgreSQL; SQLite's ``BEGIN IMMEDIATE`` already holds the database's write lock), moves
``next_free_at`` to ``max(next_free_at, now) + count/rate`` and returns the first slot it took.
N workers on one database therefore send at ``rate`` together, not ``N × rate``.

At a high rate a worker takes ``BLOCK`` seconds' worth of slots per reservation and hands them
to its sending threads itself (one locked transaction per 50 messages at 1000/s rather than
per message, and no queue of threads on the sender's row lock). A slot handed out late is used
at once, so beyond ``rate`` over any window a worker may send at most one block's worth; at
``rate × BLOCK < 2`` (a long code's 1/s) a reservation is one slot, as before.

A provider's "slow down" (a 429 with ``Retry-After``) is kept apart, in a ``hold:<key>`` row:
a queue far ahead of ``now`` means the clock jumped and is reset, but a hold is an explicit
instant and is honoured however long it is (up to ``MAX_HOLD``).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from checkin.clock import Clock
from checkin.store.db import insert_ignore
from checkin.store.models import RateLimit

# The longest provider hold honoured. Twilio's Retry-After is seconds to minutes; a hold more
# than a day ahead can only come from a clock that was set back, and is ignored.
MAX_HOLD = timedelta(days=1)


# Seconds of slots a worker reserves at once (see the module docstring).
BLOCK = 0.05
# A wait for a slot shorter than this is not a reason to re-check the row before sending: it
# is shorter than the provider call itself, and a re-check is a transaction per message.
SHORT_WAIT = 0.05


def reserve(session: Session, key: str, now: datetime, interval: timedelta, count: int = 1) -> datetime:
    """Take the next ``count`` send slots of ``key``, ``interval`` apart: the returned instant
    is the first (``now`` or later). The caller commits at once.

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
    session.execute(
        update(RateLimit).where(RateLimit.key == key).values(next_free_at=slot + interval * count)
    )
    return slot


@dataclass
class Pacer:
    """Paces provider calls per sender key. Thread-safe: a worker's sending threads share one.

    ``rate`` is messages per second for every key (None: no pacing). ``sleep(seconds)`` waits
    and returns False if it was interrupted (the worker is stopping); the default waits on
    ``stop`` so SIGTERM cuts a long wait short. Tests pass a ``sleep`` that advances a
    ManualClock, so pacing is exercised without real waiting. ``begin`` opens the transaction a
    reservation runs in (the dispatcher passes its sending thread's kept connection,
    ``inflight.Kept.session``); by default a new session from ``sessions``.
    """

    sessions: sessionmaker[Session] | None
    clock: Clock | None
    rate: float | None
    stop: threading.Event | None = None
    sleep: Callable[[float], bool] | None = None
    begin: Callable[[], AbstractContextManager[Session]] | None = None
    # Slots reserved but not handed out yet, per key: the next one and how many are left.
    _book: dict[str, tuple[datetime, int]] = field(default_factory=dict, init=False, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)

    @classmethod
    def unlimited(cls) -> Pacer:
        return cls(sessions=None, clock=None, rate=None)

    @property
    def active(self) -> bool:
        return self.rate is not None and self.sessions is not None and self.clock is not None

    def wait_for_slot(self, key: str) -> tuple[bool, bool]:
        """Take a slot for ``key`` and wait until it. Returns ``(go, waited)``: ``go`` is
        False when the wait was interrupted; ``waited`` whether it waited ``SHORT_WAIT`` or
        longer (the caller then re-checks the row, since the world may have moved on)."""
        if not self.active:
            return True, False
        assert self.clock is not None
        slot = self._take(key)
        delay = (slot - self.clock.now()).total_seconds()
        if delay <= 0:
            return True, False
        return self._sleep(delay), delay >= SHORT_WAIT

    def _take(self, key: str) -> datetime:
        """The next slot of ``key``: from this worker's block, else from a new reservation
        (under the lock, so a worker holds one block per key at a time)."""
        assert self.clock is not None and self.rate is not None
        interval = timedelta(seconds=1.0 / self.rate)
        with self._lock:
            slot, left = self._book.get(key, (self.clock.now(), 0))
            if left <= 0:
                count = max(1, int(self.rate * BLOCK))
                with self._transaction() as session:
                    slot = reserve(session, key, self.clock.now(), interval, count)
                left = count
            self._book[key] = (slot + interval, left - 1)
            return slot

    def _transaction(self) -> AbstractContextManager[Session]:
        if self.begin is not None:
            return self.begin()
        assert self.sessions is not None
        return _committed(self.sessions)

    def forget(self, key: str) -> None:
        """Drop the slots of ``key`` not handed out yet (the provider asked to slow down:
        the next send reserves again and meets the hold)."""
        with self._lock:
            self._book.pop(key, None)

    def _sleep(self, seconds: float) -> bool:
        if self.sleep is not None:
            return self.sleep(seconds)
        if self.stop is not None:
            return not self.stop.wait(seconds)
        time.sleep(seconds)
        return True


@contextmanager
def _committed(sessions: sessionmaker[Session]) -> Iterator[Session]:
    with sessions() as session, session.begin():
        yield session


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


__all__ = ["BLOCK", "MAX_HOLD", "SHORT_WAIT", "Pacer", "held_until", "hold_sender", "reserve"]
