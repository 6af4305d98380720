"""How many provider calls one worker keeps in flight, and how many the database pool can
serve."""

from __future__ import annotations

import math
import threading

from checkin.deps import Services


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
    """Sending threads the engine's connection pool can serve: each holds a connection for
    its receipts and briefly takes another to pace or re-confirm, so half the pool (a pool
    without a fixed size, e.g. SQLite's, is not a limit)."""
    pool = services.engine.pool
    size, overflow = getattr(pool, "size", None), getattr(pool, "_max_overflow", None)
    if not callable(size) or not isinstance(overflow, int) or overflow < 0:
        return 1_000
    return max(1, (int(size()) + overflow) // 2)


__all__ = ["InFlight", "pool_room"]
