"""TwilioSmsChannel details the contract suite does not cover: what goes over the wire,
exactly one HTTP call per send, Retry-After forms, configuration and log hygiene."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from urllib.parse import quote
from zoneinfo import ZoneInfo

import pytest

from checkin.channels import OutgoingMessage
from checkin.channels.sms import CheckinTwilioHttpClient, TwilioConfig, TwilioSmsChannel
from checkin.channels.twilio_errors import classify_twilio_error, parse_retry_after
from checkin.errors import ChannelError, ConfigError
from tests.channels.channels_support import ACCOUNT_SID, AUTH_TOKEN, FROM, TO, twilio_config
from tests.channels.fake_twilio_server import Answer, FakeTwilio, closed_port_url

BODY = "Any drainage from your incision today? Reply YES or NO."


def sms(outbox_id: int = 42, text: str = BODY) -> OutgoingMessage:
    return OutgoingMessage(outbox_id=outbox_id, to=TO, channel="sms", text=text, reference="P-0042")


def test_it_posts_to_from_body_status_callback_with_basic_auth(fake_twilio: FakeTwilio) -> None:
    channel = TwilioSmsChannel(twilio_config(fake_twilio.url))

    receipt = channel.send(sms(outbox_id=42))

    [request] = fake_twilio.creates()
    assert request.path == f"/2010-04-01/Accounts/{ACCOUNT_SID}/Messages.json"
    assert request.basic_auth == (ACCOUNT_SID, AUTH_TOKEN)
    assert request.form == {
        "To": TO,
        "From": FROM,
        "Body": BODY,
        "StatusCallback": "https://checkin.example.org/webhooks/twilio/status?outbox=42",
    }
    assert receipt.provider_id == fake_twilio.messages[0]["sid"]
    assert receipt.provider_id.startswith("SM")
    assert receipt.status == "queued"


def test_it_sends_through_a_messaging_service_without_from(fake_twilio: FakeTwilio) -> None:
    service = "MG" + "0" * 32
    channel = TwilioSmsChannel(
        twilio_config(
            fake_twilio.url, from_number=None, messaging_service_sid=service, status_callback_base=None
        )
    )

    channel.send(sms())

    [request] = fake_twilio.creates()
    assert request.form == {"To": TO, "MessagingServiceSid": service, "Body": BODY}


def test_it_joins_the_callback_base_without_a_double_slash(fake_twilio: FakeTwilio) -> None:
    channel = TwilioSmsChannel(
        twilio_config(fake_twilio.url, status_callback_base="https://h.example.org/checkin/")
    )

    channel.send(sms(outbox_id=7))

    assert fake_twilio.creates()[0].form["StatusCallback"] == (
        "https://h.example.org/checkin/webhooks/twilio/status?outbox=7"
    )


@pytest.mark.parametrize(
    "answer",
    [
        Answer.error(400, 21610, "unsubscribed"),
        Answer.server_error(created=False),
        Answer.rate_limited("1"),
        Answer.slow(30, created=True),
    ],
    ids=["21610", "500", "429", "read-timeout"],
)
def test_it_makes_exactly_one_http_call_per_send(fake_twilio: FakeTwilio, answer: Answer) -> None:
    channel = TwilioSmsChannel(twilio_config(fake_twilio.url, timeout=0.5))
    fake_twilio.script(answer)

    with pytest.raises(ChannelError):
        channel.send(sms())

    assert len(fake_twilio.creates()) == 1


def test_it_reads_retry_after_given_as_an_http_date(fake_twilio: FakeTwilio) -> None:
    # BaseHTTPRequestHandler stamps its own Date header; a Retry-After 90 s after "now"
    # must come back as about 90 s whatever the local clock says.
    when = datetime.now(UTC) + timedelta(seconds=90)
    fake_twilio.script(Answer.rate_limited(when.strftime("%a, %d %b %Y %H:%M:%S GMT")))
    channel = TwilioSmsChannel(twilio_config(fake_twilio.url))

    with pytest.raises(ChannelError) as caught:
        channel.send(sms())

    assert caught.value.retry_after is not None
    assert 85 <= caught.value.retry_after <= 91


def test_it_has_no_retry_after_when_twilio_sends_none(fake_twilio: FakeTwilio) -> None:
    fake_twilio.script(Answer.error(429, 20429, "Too Many Requests"))

    with pytest.raises(ChannelError) as caught:
        TwilioSmsChannel(twilio_config(fake_twilio.url)).send(sms())

    assert (caught.value.permanent, caught.value.retry_after) == (False, None)


def test_it_treats_bad_credentials_as_an_account_problem(fake_twilio: FakeTwilio) -> None:
    fake_twilio.script(Answer.error(401, 20003, "Authenticate"))

    with pytest.raises(ChannelError) as caught:
        TwilioSmsChannel(twilio_config(fake_twilio.url)).send(sms())

    assert (caught.value.permanent, caught.value.ambiguous, caught.value.code) == (False, False, "20003")


@pytest.mark.parametrize(
    ("status", "code", "permanent", "ambiguous"),
    [
        (400, 21408, True, False),
        (400, 21612, True, False),
        (403, 20003, True, False),
        (404, 20404, True, False),
        (400, None, True, False),
        (503, None, False, True),
        (502, 20502, False, True),
        (429, None, False, False),
        (400, 20429, False, False),
    ],
)
def test_it_classifies_statuses_and_codes(
    status: int, code: int | None, permanent: bool, ambiguous: bool
) -> None:
    error = classify_twilio_error(status, code)

    assert (error.permanent, error.ambiguous) == (permanent, ambiguous)
    assert error.code == str(code or status)


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"Retry-After": "3"}, 3.0),
        ({"retry-after": " 0.5 "}, 0.5),
        ({"Retry-After": "-4"}, 0.0),
        ({"Retry-After": "Wed, 21 Oct 2015 07:28:30 GMT", "Date": "Wed, 21 Oct 2015 07:28:00 GMT"}, 30.0),
        ({"Retry-After": "Wed, 21 Oct 2015 07:28:30 GMT"}, None),  # no Date: no clock to read
        ({"Retry-After": "soon", "Date": "Wed, 21 Oct 2015 07:28:00 GMT"}, None),
        ({}, None),
    ],
)
def test_it_parses_retry_after(headers: dict[str, str], expected: float | None) -> None:
    assert parse_retry_after(headers) == expected


def test_it_calls_an_unreachable_server_a_safe_retry() -> None:
    channel = TwilioSmsChannel(twilio_config(closed_port_url()))

    with pytest.raises(ChannelError) as caught:
        channel.send(sms())

    assert (caught.value.permanent, caught.value.ambiguous) == (False, False)


def test_it_calls_an_unreadable_success_ambiguous(fake_twilio: FakeTwilio) -> None:
    fake_twilio.script(Answer(status=201, body={"not": "a message"}, created=True))

    with pytest.raises(ChannelError) as caught:
        TwilioSmsChannel(twilio_config(fake_twilio.url)).send(sms())

    assert (caught.value.permanent, caught.value.ambiguous) == (False, True)


def test_it_refuses_an_email_message_without_calling_twilio(fake_twilio: FakeTwilio) -> None:
    email = OutgoingMessage(
        outbox_id=1, to="p@example.org", channel="email", text="x", subject="s", reference="P-1"
    )

    with pytest.raises(ChannelError) as caught:
        TwilioSmsChannel(twilio_config(fake_twilio.url)).send(email)

    assert caught.value.permanent
    assert fake_twilio.requests == []


def test_it_lists_with_to_from_and_date_sent_in_utc(fake_twilio: FakeTwilio) -> None:
    channel = TwilioSmsChannel(twilio_config(fake_twilio.url))
    since = datetime(2026, 3, 8, 1, 30, tzinfo=UTC).astimezone(ZoneInfo("America/New_York"))

    assert channel.list_recent(TO, since) == []

    [request] = [r for r in fake_twilio.requests if r.method == "GET"]
    assert request.query["To"] == [TO]
    assert request.query["From"] == [FROM]
    assert request.query["DateSent>"] == ["2026-03-08T01:30:00Z"]
    assert request.basic_auth == (ACCOUNT_SID, AUTH_TOKEN)


def test_it_reports_a_failed_listing_as_never_ambiguous(fake_twilio: FakeTwilio) -> None:
    channel = TwilioSmsChannel(twilio_config(closed_port_url()))

    with pytest.raises(ChannelError) as caught:
        channel.list_recent(TO, datetime.now(UTC))

    assert (caught.value.permanent, caught.value.ambiguous) == (False, False)


def test_it_logs_neither_phone_number_nor_body(
    fake_twilio: FakeTwilio, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    channel = TwilioSmsChannel(twilio_config(fake_twilio.url))
    fake_twilio.script(Answer.ok(), Answer.error(400, 21211, f"The 'To' number {TO} is invalid"))

    channel.send(sms())
    with pytest.raises(ChannelError) as caught:
        channel.send(sms())
    channel.list_recent(TO, datetime.now(UTC) - timedelta(hours=1))

    ours = [r for r in caplog.records if r.name.startswith("checkin")]
    assert any(getattr(r, "patient_ref", None) == "P-0042" for r in ours)
    text = "\n".join(
        f"{r.getMessage()} {r.__dict__}" for r in caplog.records if not r.name.startswith("urllib3")
    )
    for secret in (TO, quote(TO), TO[2:], BODY):
        assert secret not in text
        assert secret not in str(caught.value)
    assert caught.value.__cause__ is None and caught.value.__suppress_context__


def test_it_keeps_the_token_out_of_repr() -> None:
    config = TwilioConfig(account_sid=ACCOUNT_SID, auth_token="s3cret", from_number=FROM)

    assert "s3cret" not in repr(config)


@pytest.mark.parametrize(
    "overrides",
    [
        {"from_number": None},
        {"messaging_service_sid": "MG" + "0" * 32},
        {"timeout": 0},
        {"status_callback_base": "checkin.example.org"},
        {"api_base_url": "ftp://x"},
        {"auth_token": ""},
    ],
)
def test_it_rejects_bad_configuration(overrides: dict[str, object]) -> None:
    with pytest.raises(ConfigError):
        twilio_config("http://127.0.0.1:1", **overrides)


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        (
            "https://api.twilio.com/2010-04-01/Accounts/AC1/Messages.json?x=1",
            "http://127.0.0.1:9/2010-04-01/Accounts/AC1/Messages.json?x=1",
        ),
        ("https://messaging.twilio.com/v1/Services", "http://127.0.0.1:9/v1/Services"),
        ("https://example.org/twilio.com/path", "https://example.org/twilio.com/path"),
        ("https://eviltwilio.com/x", "https://eviltwilio.com/x"),
    ],
)
def test_it_redirects_only_twilio_hosts(url: str, expected: str, monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[str] = []

    def record(self: object, method: str, url: str, *args: object, **kwargs: object) -> object:
        seen.append(url)
        raise RuntimeError("stop here")

    # Patch the parent class only: the redirect under test runs before it.
    monkeypatch.setattr("twilio.http.http_client.TwilioHttpClient.request", record)
    client = CheckinTwilioHttpClient(timeout=1, base_url="http://127.0.0.1:9")

    with pytest.raises(RuntimeError):
        client.request("GET", url)

    assert seen == [expected]


def test_it_reads_proxy_settings_once_when_built_not_on_every_send(
    fake_twilio: FakeTwilio, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    dead_proxy = closed_port_url()
    monkeypatch.setenv("HTTP_PROXY", dead_proxy)
    through_dead_proxy = TwilioSmsChannel(twilio_config(fake_twilio.url))
    monkeypatch.delenv("HTTP_PROXY")
    direct = TwilioSmsChannel(twilio_config(fake_twilio.url))
    monkeypatch.setenv("HTTP_PROXY", dead_proxy)  # set after it was built: no effect

    assert direct.send(sms()).provider_id.startswith("SM")
    with pytest.raises(ChannelError):  # the proxy it was built with still applies
        through_dead_proxy.send(sms())
    assert len(fake_twilio.creates()) == 1


def test_it_keeps_a_connection_for_every_concurrent_sender() -> None:
    client = CheckinTwilioHttpClient(timeout=1.0, connections=48)
    adapter = client.session.get_adapter("https://api.twilio.com")
    # the library's default is min(32, cores + 4): six on a two-core host
    assert adapter.poolmanager.connection_pool_kw["maxsize"] == 48  # type: ignore[attr-defined]
