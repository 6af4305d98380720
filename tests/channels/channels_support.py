"""Helpers shared by the channel tests: the Twilio adapter's configuration and an SMTP server."""

from __future__ import annotations

from typing import Any

from checkin.channels.sms import TwilioConfig
from tests.support import ACCOUNT_SID, AUTH_TOKEN, free_port

FROM = "+15005550001"
TO = "+15005550006"


def twilio_config(base_url: str, **overrides: object) -> TwilioConfig:
    values: dict[str, object] = {
        "account_sid": ACCOUNT_SID,
        "auth_token": AUTH_TOKEN,
        "from_number": FROM,
        "status_callback_base": "https://checkin.example.org",
        "api_base_url": base_url,
        "timeout": 2.0,
    }
    values.update(overrides)
    return TwilioConfig(**values)  # type: ignore[arg-type]


class SmtpServer:
    """A loopback aiosmtpd server for ``handler`` on a fixed port, so it can be stopped and
    started again (a relay that goes down and comes back)."""

    def __init__(self, handler: Any, **controller_kwargs: Any) -> None:
        self.relay = handler
        self.port = free_port()
        self._kwargs = controller_kwargs
        self._controller: Any = None

    def start(self) -> None:
        from aiosmtpd.controller import Controller

        self._controller = Controller(self.relay, hostname="127.0.0.1", port=self.port, **self._kwargs)
        self._controller.start()

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None


class Relay:
    """aiosmtpd handler that records what it accepted and can be told to refuse."""

    def __init__(self) -> None:
        self.received: list[Any] = []
        self.rcpt_reply: str | None = None
        self.data_reply: str | None = None
        self.drop_during_data = False
        self.drop_on_quit = False

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, rcpt_options: list[str]
    ) -> str:
        if self.rcpt_reply:
            return self.rcpt_reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if self.drop_during_data:
            server.transport.close()  # the final reply never arrives
            return "250 never seen"
        if self.data_reply:
            return self.data_reply
        self.received.append(envelope)
        return "250 Message accepted for delivery"

    async def handle_QUIT(self, server: Any, session: Any, envelope: Any) -> str:
        if self.drop_on_quit:
            server.transport.close()
        return "221 Bye"
