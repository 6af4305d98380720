"""How many provider calls one worker keeps in flight, how many the database pool can serve,
and the one connection each sending thread keeps (docs/adr/0021-a-dispatch-step-keeps-sends-in-flight.md)."""

from __future__ import annotations

import math
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Connection, Engine
from sqlalchemy.orm import Session

from checkin.deps import Services
from checkin.outbound.retry import is_outage

# Connections of the pool no sending thread may keep: the dispatch step's own claims, the
# worker's other jobs (reconcile, heartbeat, sweeps run beside dispatch) and the rare per-row
# writes that take a pooled connection while their thread keeps its own (circuit changes, a
# receipt the schema refuses).
SPARE = 8


class InFlight:
    """How many provider calls one worker keeps in flight: enough that the sender's rate is
    reached at the provider's observed latency (``rate x latency``, with a margin), never
    fewer than ``floor`` nor more than ``ceiling``. With Twilio answering in 150 ms, 4 calls
    in flight cap a worker near 25 msg/s whatever the configured rate; 100 msg/s needs ~16.
    The pacer still bounds the rate across workers."""

    def __init__(self, rate: float | None, *, floor: int = 4, ceiling: int = 64) -> None:
        self.rate = rate
        self.floor, self.ceiling = floor, ceiling
        self.latency = 0.25  # seconds; a first guess until calls are timed
        self._lock = threading.Lock()

    def observe(self, seconds: float) -> None:
        with self._lock:  # an exponential moving average: follows a provider that slows down
            self.latency += 0.2 * (seconds - self.latency)

    def size(self) -> int:
        if self.rate is None:
            return self.ceiling
        return max(self.floor, min(self.ceiling, math.ceil(self.rate * self.latency * 1.5) + 1))


def pool_room(services: Services) -> int:
    """Sending threads the engine's connection pool can serve: each keeps one connection
    (``Kept``) for pacing, re-confirming and recording its rows, and ``SPARE`` are left to the
    rest of the worker; at least one, however small the pool. With CHECKIN_DB_MAX_CONNECTIONS'
    default of 40 (10 + 30 overflow) that is 32 threads, and a worker never holds more than the
    pool's connections. A pool without a fixed size (e.g. SQLite's) is not a limit."""
    pool = services.engine.pool
    size, overflow = getattr(pool, "size", None), getattr(pool, "_max_overflow", None)
    if not callable(size) or not isinstance(overflow, int) or overflow < 0:
        return 1_000
    return max(1, int(size()) + overflow - SPARE)


class Kept:
    """One Core connection per sending thread, kept for one dispatch step and closed by
    ``close``: every write a thread makes for its rows on the hot path goes through it, so a
    thread never holds two pooled connections (and never pays a pool checkout's pre-ping per
    message). A connection that failed with an outage is dropped, so the retry gets a fresh
    (pre-pinged) one from the pool."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._local = threading.local()
        self._opened: list[Connection] = []
        self._lock = threading.Lock()

    @contextmanager
    def begin(self) -> Iterator[Connection]:
        """A transaction on this thread's connection, committed when the block ends."""
        with self._held() as conn, conn.begin():
            yield conn

    @contextmanager
    def session(self) -> Iterator[Session]:
        """An ORM session in a transaction on this thread's connection, committed when the
        block ends (for the writes that go through ``checkin.store``'s session functions)."""
        with self._held() as conn, Session(bind=conn, expire_on_commit=False) as session, session.begin():
            yield session

    def close(self) -> None:
        with self._lock:
            for conn in self._opened:
                conn.close()
            self._opened.clear()

    def _connection(self) -> Connection:
        conn: Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._engine.connect()
            self._local.conn = conn
            with self._lock:
                self._opened.append(conn)
        return conn

    @contextmanager
    def _held(self) -> Iterator[Connection]:
        """This thread's connection, dropped if the block fails with an outage."""
        conn = self._connection()
        try:
            yield conn
        except Exception as exc:
            if is_outage(exc):
                self._local.conn = None
                conn.invalidate()
            raise


__all__ = ["SPARE", "InFlight", "Kept", "pool_room"]
