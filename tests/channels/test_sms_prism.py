"""TwilioSmsChannel against Prism serving Twilio's own OpenAPI spec: the requests the channel
sends are valid for Twilio (Prism answers 422 to an invalid one), and the answers Twilio
documents are read correctly. The recording fake checks behaviour; this checks the contract
with the real API's schema."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from checkin.channels import OutgoingMessage
from checkin.channels.sms import TwilioSmsChannel
from checkin.errors import ChannelError
from tests.channels.channels_support import TO, twilio_config

pytestmark = pytest.mark.slow


def sms(outbox_id: int = 1) -> OutgoingMessage:
    return OutgoingMessage(
        outbox_id=outbox_id,
        to=TO,
        channel="sms",
        text="Reminder: no lifting over 10 lb this week.",
        reference="P-7",
    )


def test_it_sends_a_request_twilio_spec_accepts(prism_url: str) -> None:
    receipt = TwilioSmsChannel(twilio_config(prism_url)).send(sms())

    assert receipt.provider_id.startswith("SM")
    assert receipt.status


def test_it_sends_a_valid_messaging_service_request(prism_url: str) -> None:
    channel = TwilioSmsChannel(
        twilio_config(
            prism_url, from_number=None, messaging_service_sid="MG" + "a" * 32, status_callback_base=None
        )
    )

    assert channel.send(sms()).provider_id.startswith("SM")


def test_it_would_notice_an_invalid_request(prism_url: str) -> None:
    # Control: the mock really validates. An AccountSid off the spec's pattern is refused,
    # so the passing sends above are not a mock that accepts anything.
    channel = TwilioSmsChannel(twilio_config(prism_url, account_sid="AC-not-a-sid"))

    with pytest.raises(ChannelError) as caught:
        channel.send(sms())

    assert (caught.value.permanent, caught.value.code) == (True, "422")


def test_it_lists_recent_messages_in_the_spec_shape(prism_url: str) -> None:
    listed = TwilioSmsChannel(twilio_config(prism_url)).list_recent(
        TO, datetime.now(UTC) - timedelta(hours=1)
    )

    assert listed, "the spec's example page has messages"
    assert {m.provider_id[:2] for m in listed} <= {"SM", "MM"}
    assert all(m.date_created is not None and m.date_created.tzinfo is not None for m in listed)


def test_it_bounds_listing_when_pages_never_end(prism_url: str) -> None:
    # The spec's example page always offers a next page; the library follows it, so only
    # the limit stops the loop.
    listed = TwilioSmsChannel(twilio_config(prism_url)).list_recent(
        TO, datetime.now(UTC) - timedelta(hours=1), limit=5
    )

    assert len(listed) == 5
