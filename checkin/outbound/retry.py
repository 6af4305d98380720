"""Waiting out a database outage on the send path.

Once a provider call has happened its outcome must be stored: losing it would turn a clean
send into an in-doubt one (reconciled, maybe resent) or, worse, a ``sent`` row without its
provider id. So those writes are retried for as long as the database is away, and only an
error that is *not* an outage (the schema refusing the value) is let through.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TypeVar

from sqlalchemy.exc import DBAPIError, DisconnectionError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout

log = logging.getLogger(__name__)

T = TypeVar("T")


def is_outage(exc: BaseException) -> bool:
    """Whether ``exc`` says the database is away (down, restarting, read-only, unreachable,
    every pooled connection busy) rather than that it refused this statement.

    ``OperationalError`` covers refused connections, a server shutting down and SQLite's
    "attempt to write a readonly database"; a connection that died under a statement can
    also surface as ``InterfaceError`` ("connection already closed") or as any ``DBAPIError``
    SQLAlchemy flagged ``connection_invalidated``. ``DataError``/``IntegrityError``/
    ``ProgrammingError`` on a live connection are refusals, not outages.
    """
    if isinstance(exc, (OperationalError, InterfaceError, DisconnectionError, PoolTimeout)):
        return True
    return isinstance(exc, DBAPIError) and exc.connection_invalidated


def until_stored(
    fn: Callable[[], T],
    *,
    give_up: Callable[[], bool] = lambda: False,
    pause: float = 0.2,
    longest: float = 2.0,
    sleep: Callable[[float], None] | None = None,
) -> T:
    """``fn()``, retried while it fails with an outage (``is_outage``) for as long as the
    database is away (pauses growing from ``pause`` to ``longest``), or until ``give_up()`` is
    true, when the last error propagates. Any other error propagates at once. For writes that
    must not be lost to an outage of any length: a receipt of a message that went out, or
    giving a claimed row back."""
    wait = pause
    while True:
        try:
            return fn()
        except Exception as exc:
            if not is_outage(exc) or give_up():
                raise
            log.warning("database unavailable; retrying", extra={"event": "db.retry", "wait_s": wait})
            (sleep or time.sleep)(wait)
            wait = min(wait * 2, longest)


__all__ = ["is_outage", "until_stored"]
