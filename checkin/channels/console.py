"""A channel that prints messages: development and ``--dry-run`` only.

It prints the recipient and the full text on purpose (that is its job), so it must never be
wired up in production, where console output ends up in logs.
"""

from __future__ import annotations

import sys
import threading
from typing import TextIO

from checkin.channels.base import OutgoingMessage, Receipt


class ConsoleChannel:
    """Writes one block per message to ``stream`` (default ``sys.stdout``) and returns
    ``Receipt("console-<n>", "printed")`` with n counting from 1. Never raises ChannelError."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self._stream = stream
        self._count = 0
        self._lock = threading.Lock()

    def send(self, message: OutgoingMessage) -> Receipt:
        with self._lock:
            self._count += 1
            provider_id = f"console-{self._count}"
            stream = self._stream or sys.stdout
            stream.write(_render(provider_id, message))
            stream.flush()
        return Receipt(provider_id=provider_id, status="printed")


def _render(provider_id: str, message: OutgoingMessage) -> str:
    lines = [
        (f"----- {provider_id}: {message.channel} outbox={message.outbox_id} ref={message.reference} -----"),
        f"to: {message.to}",
    ]
    if message.subject is not None:
        lines.append(f"subject: {message.subject}")
    lines.append("")
    lines.extend(message.text.splitlines() or [""])
    if message.html is not None:
        lines.append("")
        lines.append(f"[html alternative: {len(message.html)} characters, not shown]")
    lines.append("-" * 40)
    return "\n".join(lines) + "\n"


__all__ = ["ConsoleChannel"]
