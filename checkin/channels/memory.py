"""An in-memory channel: a real implementation for tests, previews and reconciliation drills.

It keeps what it "sent", can be told to fail (the next N sends, or every send to one
recipient), and answers ``list_recent`` from what it recorded, so the reconciliation path can
be exercised without Twilio. A scripted failure may be marked ``delivered=True``: the send
raises, yet the message is recorded as sent, which is exactly the ambiguous case
(5xx / read timeout after Twilio queued it) that reconciliation must resolve without a resend.
"""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass
from datetime import datetime

from checkin.channels.base import OutgoingMessage, ProviderMessage, Receipt
from checkin.clock import Clock, SystemClock
from checkin.errors import ChannelError


@dataclass(frozen=True)
class _Failure:
    error: ChannelError
    delivered: bool


class MemoryChannel:
    """Records messages in ``sent`` (accepted) and ``attempts`` (every call to ``send``).

    Thread-safe. ``clock`` stamps ``date_created`` for ``list_recent``.
    """

    def __init__(self, clock: Clock | None = None, *, id_prefix: str = "MEM") -> None:
        self._clock = clock or SystemClock()
        self._prefix = id_prefix
        self._lock = threading.Lock()
        self._next: deque[_Failure] = deque()
        self._per_recipient: dict[str, tuple[_Failure, int | None]] = {}
        self._records: list[ProviderMessage] = []
        self.sent: list[OutgoingMessage] = []
        self.attempts: list[OutgoingMessage] = []

    def fail_next(self, n: int, error: ChannelError, *, delivered: bool = False) -> None:
        """The next ``n`` sends raise a copy of ``error`` (queued after earlier scripts).
        ``delivered=True``: each is still recorded as sent (an ambiguous send that went out)."""
        if n < 0:
            raise ValueError("n must be >= 0")
        with self._lock:
            self._next.extend(_Failure(error, delivered) for _ in range(n))

    def fail_for(
        self, to: str, error: ChannelError, *, times: int | None = None, delivered: bool = False
    ) -> None:
        """Sends to ``to`` raise a copy of ``error``: ``times`` times, or until
        ``clear_failures``. Checked after ``fail_next`` scripts."""
        with self._lock:
            self._per_recipient[to] = (_Failure(error, delivered), times)

    def clear_failures(self) -> None:
        with self._lock:
            self._next.clear()
            self._per_recipient.clear()

    def send(self, message: OutgoingMessage) -> Receipt:
        """Record and accept ``message``, or raise the scripted ``ChannelError``."""
        with self._lock:
            self.attempts.append(message)
            failure = self._take_failure(message.to)
            if failure is not None:
                if failure.delivered:
                    self._record(message)
                raise _copy(failure.error)
            return self._record(message)

    def list_recent(self, to: str, since: datetime) -> list[ProviderMessage]:
        """Recorded messages to ``to`` created at or after ``since``, newest first."""
        if since.tzinfo is None:
            raise ValueError("since must be an aware datetime")
        with self._lock:
            found = [
                r
                for r in self._records
                if r.to == to and r.date_created is not None and r.date_created >= since
            ]
        return found[::-1]

    def _take_failure(self, to: str) -> _Failure | None:
        if self._next:
            return self._next.popleft()
        scripted = self._per_recipient.get(to)
        if scripted is None:
            return None
        failure, times = scripted
        if times is not None:
            if times <= 1:
                del self._per_recipient[to]
            else:
                self._per_recipient[to] = (failure, times - 1)
        return failure

    def _record(self, message: OutgoingMessage) -> Receipt:
        provider_id = f"{self._prefix}{len(self._records) + 1:06d}"
        self.sent.append(message)
        self._records.append(
            ProviderMessage(
                provider_id=provider_id,
                to=message.to,
                body=message.text,
                date_created=self._clock.now(),
                status="accepted",
            )
        )
        return Receipt(provider_id=provider_id, status="accepted")


def _copy(error: ChannelError) -> ChannelError:
    # A fresh instance per raise, so tracebacks do not pile up on one shared object.
    return ChannelError(
        error.reason,
        permanent=error.permanent,
        code=error.code,
        retry_after=error.retry_after,
        ambiguous=error.ambiguous,
        refusal=error.refusal,
    )


__all__ = ["MemoryChannel"]
