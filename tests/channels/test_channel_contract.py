"""One contract, two implementations: MemoryChannel and TwilioSmsChannel (the real twilio
client against the recording fake); for email, MemoryChannel and SmtpEmailChannel against an
aiosmtpd relay on loopback. Dispatch and reconciliation are written against this
contract, so the memory channel must fail and list exactly like the real one."""

from __future__ import annotations

import email
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from email.policy import default as default_policy
from typing import Any, Protocol

import pytest

from checkin.channels import Channel, OutgoingMessage, ReconcilableChannel
from checkin.channels.email import SmtpConfig, SmtpEmailChannel
from checkin.channels.memory import MemoryChannel
from checkin.channels.sms import TwilioSmsChannel
from checkin.errors import ChannelError
from checkin.states import ChannelName
from tests.channels.channels_support import TO, Relay, SmtpServer, twilio_config
from tests.channels.fake_twilio_server import Answer, FakeTwilio, closed_port_url
from tests.support import free_port


@dataclass(frozen=True)
class Outcome:
    permanent: bool
    ambiguous: bool
    code: str | None
    retry_after: float | None = None
    delivered: bool = False  # does the provider hold the message afterwards?


OUTCOMES: dict[str, Outcome] = {
    "rate_limited": Outcome(permanent=False, ambiguous=False, code="20429", retry_after=7.0),
    "unsubscribed": Outcome(permanent=True, ambiguous=False, code="21610"),
    "invalid_number": Outcome(permanent=True, ambiguous=False, code="21211"),
    "not_sms_capable": Outcome(permanent=True, ambiguous=False, code="21614"),
    "server_error": Outcome(permanent=False, ambiguous=True, code="20500"),
    "server_error_after_queueing": Outcome(permanent=False, ambiguous=True, code="20500", delivered=True),
    "read_timeout_after_queueing": Outcome(permanent=False, ambiguous=True, code=None, delivered=True),
    "hang_up_after_queueing": Outcome(permanent=False, ambiguous=True, code=None, delivered=True),
    "connection_refused": Outcome(permanent=False, ambiguous=False, code=None),
}

FAKE_ANSWERS: dict[str, Answer] = {
    "rate_limited": Answer.rate_limited("7"),
    "unsubscribed": Answer.error(400, 21610, "Attempt to send to unsubscribed recipient"),
    "invalid_number": Answer.error(400, 21211, "The 'To' number is not a valid phone number."),
    "not_sms_capable": Answer.error(400, 21614, "'To' number is not a valid mobile number"),
    "server_error": Answer.server_error(created=False),
    "server_error_after_queueing": Answer.server_error(created=True),
    "read_timeout_after_queueing": Answer.slow(30, created=True),
    "hang_up_after_queueing": Answer.hang_up_after_reading(created=True),
}


class Harness(Protocol):
    channel: ReconcilableChannel

    def script(self, outcome: str) -> ReconcilableChannel:
        """Arrange for the next send to end in ``outcome``; returns the channel to send with."""
        ...


class MemoryHarness:
    def __init__(self) -> None:
        self.channel = MemoryChannel()

    def script(self, outcome: str) -> ReconcilableChannel:
        o = OUTCOMES[outcome]
        self.channel.fail_next(
            1,
            ChannelError(
                outcome, permanent=o.permanent, code=o.code, retry_after=o.retry_after, ambiguous=o.ambiguous
            ),
            delivered=o.delivered,
        )
        return self.channel


class TwilioHarness:
    def __init__(self, fake: FakeTwilio) -> None:
        self.fake = fake
        # Short timeout: the read-timeout case costs exactly this long.
        self.channel = TwilioSmsChannel(twilio_config(fake.url, timeout=0.5))

    def script(self, outcome: str) -> ReconcilableChannel:
        if outcome == "connection_refused":
            return TwilioSmsChannel(twilio_config(closed_port_url(), timeout=0.5))
        self.fake.script(FAKE_ANSWERS[outcome])
        return self.channel


@pytest.fixture(params=["memory", "twilio"])
def harness(request: pytest.FixtureRequest) -> Iterator[Harness]:
    if request.param == "memory":
        yield MemoryHarness()
    else:
        with FakeTwilio() as fake:
            yield TwilioHarness(fake)


def sms(outbox_id: int = 1, to: str = TO, text: str = "Time for your calcium.") -> OutgoingMessage:
    return OutgoingMessage(outbox_id=outbox_id, to=to, channel="sms", text=text, reference="P-0001")


def an_hour_ago() -> datetime:
    return datetime.now(UTC) - timedelta(hours=1)


def test_it_accepts_a_message_and_lists_it_for_reconciliation(harness: Harness) -> None:
    receipt = harness.channel.send(sms(text="Walk 10 minutes today."))

    assert receipt.provider_id
    listed = harness.channel.list_recent(TO, an_hour_ago())
    assert [(m.provider_id, m.to, m.body) for m in listed] == [
        (receipt.provider_id, TO, "Walk 10 minutes today.")
    ]


@pytest.mark.parametrize("outcome", list(OUTCOMES))
def test_it_maps_each_provider_outcome(harness: Harness, outcome: str) -> None:
    expected = OUTCOMES[outcome]
    channel = harness.script(outcome)

    with pytest.raises(ChannelError) as caught:
        channel.send(sms())

    error = caught.value
    assert (error.permanent, error.ambiguous, error.code, error.retry_after) == (
        expected.permanent,
        expected.ambiguous,
        expected.code,
        expected.retry_after,
    )
    # What reconciliation would find decides between "sent" and "send again".
    held = harness.channel.list_recent(TO, an_hour_ago())
    assert len(held) == (1 if expected.delivered else 0)


@pytest.mark.parametrize("outcome", ["unsubscribed", "server_error", "rate_limited"])
def test_it_recovers_after_a_failure(harness: Harness, outcome: str) -> None:
    harness.script(outcome)
    with pytest.raises(ChannelError):
        harness.channel.send(sms(outbox_id=1))

    receipt = harness.channel.send(sms(outbox_id=2))

    assert [m.provider_id for m in harness.channel.list_recent(TO, an_hour_ago())] == [receipt.provider_id]


def test_it_lists_only_the_recipient_asked_for(harness: Harness) -> None:
    other = "+15005550009"
    mine = harness.channel.send(sms(outbox_id=1, to=TO))
    harness.channel.send(sms(outbox_id=2, to=other))

    assert [m.provider_id for m in harness.channel.list_recent(TO, an_hour_ago())] == [mine.provider_id]


def test_it_lists_nothing_older_than_since(harness: Harness) -> None:
    harness.channel.send(sms())

    assert harness.channel.list_recent(TO, datetime.now(UTC) + timedelta(hours=1)) == []


def test_it_gives_each_accepted_message_its_own_provider_id(harness: Harness) -> None:
    ids = {harness.channel.send(sms(outbox_id=i)).provider_id for i in range(3)}

    assert len(ids) == 3


def test_it_refuses_a_naive_since(harness: Harness) -> None:
    with pytest.raises(ValueError):
        harness.channel.list_recent(TO, datetime(2026, 1, 1))


# ---- email: MemoryChannel and SmtpEmailChannel against aiosmtpd on loopback ------------------
# SMTP has no "list what you sent", so the email contract is what dispatch relies on for email:
# how each failure is classed (permanent, ambiguous, code), what the relay holds afterwards,
# recovery after a failure, and one provider id per accepted message.

EMAIL_TO = "patient@example.org"

EMAIL_OUTCOMES: dict[str, Outcome] = {
    "greylisted_recipient": Outcome(permanent=False, ambiguous=False, code="451"),
    "no_such_user": Outcome(permanent=True, ambiguous=False, code="550"),
    "rejected_as_spam": Outcome(permanent=True, ambiguous=False, code="554"),
    "connection_lost_during_data": Outcome(permanent=False, ambiguous=True, code=None),
    "connection_refused": Outcome(permanent=False, ambiguous=False, code=None),
}


class EmailHarness(Protocol):
    channel: Channel

    def script(self, outcome: str) -> Channel:
        """Arrange for the next send to end in ``outcome``; returns the channel to send with."""
        ...

    def held(self) -> list[tuple[str, str, str]]:
        """(provider id, recipient, text) of every message the provider accepted, oldest first."""
        ...


class MemoryEmailHarness:
    def __init__(self) -> None:
        self.memory = MemoryChannel()
        self.channel: Channel = self.memory

    def script(self, outcome: str) -> Channel:
        o = EMAIL_OUTCOMES[outcome]
        self.memory.fail_next(
            1, ChannelError(outcome, permanent=o.permanent, code=o.code, ambiguous=o.ambiguous)
        )
        return self.channel

    def held(self) -> list[tuple[str, str, str]]:
        return [(m.provider_id, m.to, m.body) for m in self.memory.list_recent(EMAIL_TO, an_hour_ago())][::-1]


class SmtpHarness:
    def __init__(self, server: SmtpServer) -> None:
        self.server = server
        self.channel: Channel = smtp_channel(server.port)

    def script(self, outcome: str) -> Channel:
        relay = self.server.relay
        if outcome == "connection_refused":
            return smtp_channel(free_port())
        if outcome == "greylisted_recipient":
            relay.rcpt_reply = "451 4.7.1 Greylisted, try again later"
        elif outcome == "no_such_user":
            relay.rcpt_reply = "550 5.1.1 No such user"
        elif outcome == "rejected_as_spam":
            relay.data_reply = "554 5.7.1 Message rejected as spam"
        else:
            relay.drop_during_data = True
        self._clear_after_one_send()
        return self.channel

    def _clear_after_one_send(self) -> None:
        # The relay refuses one message, then behaves: like fail_next(1) on the memory channel.
        relay, original = self.server.relay, self.server.relay.handle_DATA
        original_rcpt = relay.handle_RCPT

        async def rcpt_once(*args: Any) -> str:
            answer = await original_rcpt(*args)
            if relay.rcpt_reply:
                relay.rcpt_reply = None
            return answer

        async def data_once(*args: Any) -> str:
            answer = await original(*args)
            relay.data_reply, relay.drop_during_data = None, False
            return answer

        relay.handle_RCPT, relay.handle_DATA = rcpt_once, data_once

    def held(self) -> list[tuple[str, str, str]]:
        out = []
        for envelope in self.server.relay.received:
            mail = email.message_from_bytes(envelope.original_content, policy=default_policy)
            assert isinstance(mail, EmailMessage)
            body = mail.get_body(preferencelist=("plain",))
            assert body is not None
            out.append((str(mail["Message-ID"]), envelope.rcpt_tos[0], body.get_content().strip()))
        return out


def smtp_channel(port: int) -> SmtpEmailChannel:
    return SmtpEmailChannel(
        SmtpConfig(host="127.0.0.1", port=port, sender="care@hospital.example", tls="none", timeout=5.0)
    )


@pytest.fixture(params=["memory", "smtp"])
def email_harness(request: pytest.FixtureRequest) -> Iterator[EmailHarness]:
    if request.param == "memory":
        yield MemoryEmailHarness()
        return
    server = SmtpServer(Relay())
    server.start()
    try:
        yield SmtpHarness(server)
    finally:
        server.stop()


def mail(outbox_id: int = 1, text: str = "See you on Tuesday at 10:00.") -> OutgoingMessage:
    return OutgoingMessage(
        outbox_id=outbox_id,
        to=EMAIL_TO,
        channel=ChannelName.EMAIL,
        text=text,
        reference="P-0001",
        subject="Follow-up",
    )


def test_email_accepts_a_message_and_the_provider_holds_it(email_harness: EmailHarness) -> None:
    receipt = email_harness.channel.send(mail(text="Walk 10 minutes today."))

    assert receipt.provider_id and receipt.status == "accepted"
    assert email_harness.held() == [(receipt.provider_id, EMAIL_TO, "Walk 10 minutes today.")]


@pytest.mark.parametrize("outcome", list(EMAIL_OUTCOMES))
def test_email_maps_each_provider_outcome(email_harness: EmailHarness, outcome: str) -> None:
    expected = EMAIL_OUTCOMES[outcome]
    channel = email_harness.script(outcome)

    with pytest.raises(ChannelError) as caught:
        channel.send(mail())

    error = caught.value
    assert (error.permanent, error.ambiguous, error.code, error.retry_after) == (
        expected.permanent,
        expected.ambiguous,
        expected.code,
        None,
    )
    assert email_harness.held() == []


@pytest.mark.parametrize("outcome", ["greylisted_recipient", "no_such_user", "connection_lost_during_data"])
def test_email_recovers_after_a_failure(email_harness: EmailHarness, outcome: str) -> None:
    email_harness.script(outcome)
    with pytest.raises(ChannelError):
        email_harness.channel.send(mail(outbox_id=1))

    receipt = email_harness.channel.send(mail(outbox_id=2))

    assert [held[0] for held in email_harness.held()] == [receipt.provider_id]


def test_email_gives_each_accepted_message_its_own_provider_id(email_harness: EmailHarness) -> None:
    ids = [email_harness.channel.send(mail(outbox_id=i)).provider_id for i in range(3)]

    assert len(set(ids)) == 3
    assert [held[0] for held in email_harness.held()] == ids
