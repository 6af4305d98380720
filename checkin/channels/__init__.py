"""Outgoing channels: Twilio SMS (``sms``), SMTP email (``email``), console and memory.

Importing this package is cheap: the Twilio and SMTP adapters live in their own modules.
"""

from __future__ import annotations

from checkin.channels.base import (
    Channel,
    OutgoingMessage,
    ProviderMessage,
    Receipt,
    ReconcilableChannel,
)
from checkin.states import ChannelName

__all__ = [
    "Channel",
    "ChannelName",
    "OutgoingMessage",
    "ProviderMessage",
    "Receipt",
    "ReconcilableChannel",
]
