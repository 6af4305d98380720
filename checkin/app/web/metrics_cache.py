"""The database figures behind ``/metrics``, shared by every scrape within an interval."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from checkin.store.status import Figures

METRICS_INTERVAL = 15.0  # seconds a scrape reuses the database figures


class FiguresCache:
    """The database figures, computed at most once per ``interval`` however many scrapers ask:
    at 1.2 M outbox rows one computation costs 140-180 ms, and 16 scrapers computing their own
    pushed webhook latency from 48 ms past a second. Callers wait on the lock while one of them
    computes, then share the result."""

    def __init__(self, interval: float = METRICS_INTERVAL) -> None:
        self.interval = interval
        self._lock = threading.Lock()
        self._value: tuple[float, Figures] | None = None

    def get(self, compute: Callable[[], Figures]) -> Figures:
        with self._lock:
            now = time.monotonic()
            if self._value is None or now - self._value[0] >= self.interval:
                self._value = (now, compute())
            return self._value[1]
