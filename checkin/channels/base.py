"""What every channel takes, returns and promises.

A channel is one method and one error: ``send(message) -> Receipt`` or ``ChannelError``, so
every provider fits the same dispatcher and the same contract tests. Channels never touch the database, never read environment variables and
never retry on their own: the dispatcher owns retries, backoff, dead-lettering and
reconciliation, and decides from ``ChannelError.permanent`` / ``.ambiguous`` / ``.retry_after``
and the provider-neutral ``ChannelError.refusal`` (a ``Refusal``); provider codes are
translated inside each channel and nowhere else.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol, runtime_checkable

from checkin.errors import ChannelError, Refusal
from checkin.states import ChannelName


@dataclass(frozen=True)
class OutgoingMessage:
    """One rendered message for one recipient.

    ``to`` is an E.164 phone number for ``sms`` and an address for ``email``. ``reference`` is
    the internal patient reference: the only patient identifier channels may log.
    Recipient and content are left out of ``repr`` so an accidental ``log(message)`` does not
    write a phone number or a clinical text into the logs.
    """

    outbox_id: int
    to: str = field(repr=False)
    channel: ChannelName
    text: str = field(repr=False)
    reference: str
    subject: str | None = field(default=None, repr=False)
    html: str | None = field(default=None, repr=False)
    # Email only: where the patient's reply goes (a plus-address carrying the reply token).
    reply_to: str | None = field(default=None, repr=False)
    # Stable for one outbox row and unique to it (its idempotency key and creation instant):
    # every send of the row carries the same email Message-ID, so a copy resent after a lost
    # DATA connection can be recognised downstream as the same message.
    row_key: str | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if self.channel not in tuple(ChannelName):
            raise ValueError(f"channel must be 'sms' or 'email', not {self.channel!r}")


@dataclass(frozen=True)
class Receipt:
    """The provider accepted the message. ``provider_id`` is Twilio's ``SM…`` SID, our own
    email ``Message-ID``, or a fake's id; ``status`` is the provider's first status
    (Twilio: ``queued``/``accepted``; SMTP: ``accepted`` by the relay, not delivered)."""

    provider_id: str
    status: str


@dataclass(frozen=True)
class ProviderMessage:
    """A message as the provider lists it, for reconciling ambiguous sends."""

    provider_id: str
    to: str = field(repr=False)
    body: str = field(repr=False)
    date_created: datetime | None
    status: str


@runtime_checkable
class Channel(Protocol):
    def send(self, message: OutgoingMessage) -> Receipt:
        """Hand ``message`` to the provider once.

        Returns the provider's receipt. Raises ``checkin.errors.ChannelError`` on any failure:
        ``permanent`` (retrying cannot help), else transient; ``ambiguous`` when the provider may
        have accepted it anyway (reconcile before any resend); ``retry_after`` in seconds when
        the provider said how long to wait.
        """
        ...


@runtime_checkable
class ReconcilableChannel(Channel, Protocol):
    def list_recent(self, to: str, since: datetime) -> list[ProviderMessage]:
        """Messages the provider holds for ``to`` since ``since`` (an aware datetime).

        Used after an ambiguous send: a match means "it went out, do not resend". Raises
        ``ChannelError`` (never ambiguous: listing is a read) when the provider cannot answer.
        """
        ...


__all__ = [
    "Channel",
    "ChannelError",
    "ChannelName",
    "OutgoingMessage",
    "ProviderMessage",
    "Receipt",
    "ReconcilableChannel",
    "Refusal",
]
