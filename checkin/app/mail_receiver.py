"""`checkin mail receive`: an SMTP server the site's mail server relays patients' replies to.

Why SMTP and not an IMAP mailbox: docs/adr/0008-inbound-email-over-smtp.md. In short, the
relay keeps an email until we answer 250, and we answer 250 only after the reply is committed;
a database outage answers 451 and the relay retries, so nothing is lost and no mailbox password
is stored here.

- RCPT is accepted only for CHECKIN_EMAIL_REPLY_TO and its plus-addresses (``550`` otherwise), so
  the receiver is no open relay and no catch-all.
- DATA is processed on one thread (SQLite has one writer anyway) by
  ``checkin.inbound.email_replies.handle_email``; the answer it queues is sent by the worker.
- Emails over ``MAX_BYTES`` are refused with 552 by the server before they reach us.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from types import FrameType
from typing import Any

from sqlalchemy.exc import OperationalError

from checkin.deps import Services
from checkin.inbound.email_parse import is_reply_address
from checkin.inbound.email_replies import EmailOutcome, handle_email

log = logging.getLogger(__name__)

MAX_BYTES = 10 * 1024 * 1024  # a reply with a phone photo of the wound still fits


class ReplyHandler:
    """aiosmtpd handler: accept our reply addresses, process each email, answer after commit."""

    def __init__(self, services: Services, process: Callable[[bytes, list[str]], EmailOutcome] | None = None):
        self.services = services
        self._process = process or self._handle
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="checkin-mail")

    def _handle(self, raw: bytes, rcpt_tos: list[str]) -> EmailOutcome:
        return handle_email(self.services, raw, envelope_to=rcpt_tos, now=self.services.clock.now())

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, rcpt_options: list[str]
    ) -> str:
        if not is_reply_address(address, self.services.settings.email_reply_to):
            return "550 5.1.1 not a reply address of this service"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        raw = envelope.original_content or envelope.content
        loop = asyncio.get_running_loop()
        try:
            outcome = await loop.run_in_executor(self._executor, self._process, raw, list(envelope.rcpt_tos))
        except OperationalError:
            log.warning("database unavailable; the relay will retry", extra={"event": "email.deferred"})
            return "451 4.3.0 database unavailable, try again later"
        except Exception:
            log.exception("email reply failed; the relay will retry", extra={"event": "email.failed"})
            return "451 4.3.0 temporary failure, try again later"
        return f"250 2.0.0 {outcome.status}"

    def close(self) -> None:
        self._executor.shutdown(wait=True)


class MailReceiver:
    """The SMTP server on ``host:port`` in a background thread (aiosmtpd's Controller)."""

    def __init__(self, services: Services, host: str, port: int) -> None:
        from aiosmtpd.controller import Controller

        self.handler = ReplyHandler(services)
        self.host, self.port = host, port
        self._controller = Controller(
            self.handler, hostname=host, port=port, data_size_limit=MAX_BYTES, ready_timeout=10
        )

    def start(self) -> None:
        self._controller.start()

    def stop(self) -> None:
        self._controller.stop()
        self.handler.close()


def run(services: Services, *, stop: threading.Event | None = None) -> None:
    """Serve until SIGTERM/SIGINT (or ``stop`` is set)."""
    if services.settings.email_reply_to is None:
        from checkin.errors import ConfigError

        raise ConfigError("CHECKIN_EMAIL_REPLY_TO", "is not set: there is no reply address to receive for")
    host, port = services.settings.mail_listen
    stop = stop or threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, on_signal)
        signal.signal(signal.SIGINT, on_signal)
    receiver = MailReceiver(services, host, port)
    receiver.start()
    log.info("mail receiver listening", extra={"event": "email.listening", "host": host, "port": port})
    try:
        stop.wait()
    finally:
        receiver.stop()


__all__ = ["MAX_BYTES", "MailReceiver", "ReplyHandler", "run"]
