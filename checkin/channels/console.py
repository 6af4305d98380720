"""A channel that prints messages: development and ``--dry-run`` only.

Its output lands where logs land (a terminal, the journal), so by default it is redacted like
every log line: the recipient's digits masked, the address's local part hidden, the subject and
text replaced by their length. ``reveal=True`` prints them whole, for output that is not a log
(the demo's SMS transcript of synthetic patients). Production never builds one
(``checkin.app.bootstrap`` refuses).
"""

from __future__ import annotations

import sys
import threading
from typing import TextIO

from checkin.channels.base import OutgoingMessage, Receipt
from checkin.logs import scrub


class ConsoleChannel:
    """Writes one block per message to ``stream`` (default ``sys.stdout``) and returns
    ``Receipt("console-<n>", "printed")`` with n counting from 1. Never raises ChannelError."""

    def __init__(self, stream: TextIO | None = None, *, reveal: bool = False) -> None:
        self._stream = stream
        self._reveal = reveal
        self._count = 0
        self._lock = threading.Lock()

    def send(self, message: OutgoingMessage) -> Receipt:
        with self._lock:
            self._count += 1
            provider_id = f"console-{self._count}"
            stream = self._stream or sys.stdout
            stream.write(_render(provider_id, message) if self._reveal else _redacted(provider_id, message))
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


def _redacted(provider_id: str, message: OutgoingMessage) -> str:
    local, at, domain = message.to.rpartition("@")
    to = f"…@{domain}" if at and local else scrub(message.to)
    lines = [
        (f"----- {provider_id}: {message.channel} outbox={message.outbox_id} ref={message.reference} -----"),
        f"to: {to}",
    ]
    if message.subject is not None:
        lines.append(f"subject: [{len(message.subject)} characters, redacted]")
    lines.append(f"[text: {len(message.text)} characters, redacted; reveal=True prints it]")
    lines.append("-" * 40)
    return "\n".join(lines) + "\n"


__all__ = ["ConsoleChannel"]
