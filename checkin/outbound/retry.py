"""Retrying a database write after a provider call, through a brief database outage.

The provider call has happened by then: losing its outcome would turn a clean send into an
in-doubt one (reconciled, maybe resent), so the write is tried a few times with a growing
pause before the error is allowed through.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TypeVar

from sqlalchemy.exc import OperationalError

log = logging.getLogger(__name__)

T = TypeVar("T")


def with_retry(
    fn: Callable[[], T], tries: int = 4, pause: float = 0.5, sleep: Callable[[float], None] | None = None
) -> T:
    """``fn()``, retried on ``OperationalError`` up to ``tries`` times, waiting ``pause``,
    then twice that, and so on; the last error propagates."""
    for attempt in range(tries):
        try:
            return fn()
        except OperationalError:
            if attempt == tries - 1:
                raise
            wait = pause * 2**attempt
            log.warning("database unavailable; retrying", extra={"event": "db.retry", "wait_s": wait})
            (sleep or time.sleep)(wait)
    raise AssertionError("unreachable")


__all__ = ["with_retry"]
