"""One contract, two implementations: MemoryChannel and TwilioSmsChannel (the real twilio
client against the recording fake). Dispatch and reconciliation are written against this
contract, so the memory channel must fail and list exactly like the real one."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Protocol

import pytest

from checkin.channels import OutgoingMessage, ReconcilableChannel
from checkin.channels.memory import MemoryChannel
from checkin.channels.sms import TwilioSmsChannel
from checkin.errors import ChannelError
from tests.channels.channels_support import TO, twilio_config
from tests.channels.fake_twilio_server import Answer, FakeTwilio, closed_port_url


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
