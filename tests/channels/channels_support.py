"""Helpers shared by the channel tests (imported by name: pytest puts this folder on sys.path)."""

from __future__ import annotations

import socket

from checkin.channels.sms import TwilioConfig

ACCOUNT_SID = "AC" + "0123456789abcdef" * 2
AUTH_TOKEN = "test-auth-token"
FROM = "+15005550001"
TO = "+15005550006"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def twilio_config(base_url: str, **overrides: object) -> TwilioConfig:
    values: dict[str, object] = {
        "account_sid": ACCOUNT_SID, "auth_token": AUTH_TOKEN, "from_number": FROM,
        "status_callback_base": "https://checkin.example.org", "api_base_url": base_url,
        "timeout": 2.0,
    }
    values.update(overrides)
    return TwilioConfig(**values)  # type: ignore[arg-type]
