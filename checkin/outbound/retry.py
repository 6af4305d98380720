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
from sqlalchemy.exc import TimeoutError as PoolTimeout

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


def until_stored(
    fn: Callable[[], T],
    *,
    give_up: Callable[[], bool] = lambda: False,
    pause: float = 0.2,
    longest: float = 2.0,
    sleep: Callable[[float], None] | None = None,
) -> T:
    """``fn()``, retried on ``OperationalError`` for as long as the database is away (pauses
    growing from ``pause`` to ``longest``), or until ``give_up()`` is true, when the last error
    propagates. For writes that must not be lost to an outage of any length: a receipt of a
    message that went out, or giving a claimed row back."""
    wait = pause
    while True:
        try:
            return fn()
        except (OperationalError, PoolTimeout):  # the server is away, or every connection busy
            if give_up():
                raise
            log.warning("database unavailable; retrying", extra={"event": "db.retry", "wait_s": wait})
            (sleep or time.sleep)(wait)
            wait = min(wait * 2, longest)


__all__ = ["until_stored", "with_retry"]
