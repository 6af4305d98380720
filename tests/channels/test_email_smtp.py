"""SmtpEmailChannel against a real SMTP server (aiosmtpd) on loopback: what arrives, how
refusals and outages map to ChannelError, plain, STARTTLS (with AUTH) and implicit TLS."""

from __future__ import annotations

import email
import shutil
import ssl
import subprocess
from collections.abc import Iterator
from email.message import EmailMessage
from email.policy import default as default_policy
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.smtp import AuthResult, LoginPassword

from checkin.channels import OutgoingMessage
from checkin.channels.email import SmtpConfig, SmtpEmailChannel
from checkin.errors import ChannelError, ConfigError
from tests.channels.channels_support import Relay, SmtpServer

SENDER = "Spine Care Team <care@hospital.example>"
TO = "patient@example.org"


class Server(SmtpServer):
    def __init__(self, **controller_kwargs: Any) -> None:
        super().__init__(Relay(), **controller_kwargs)


@pytest.fixture
def server() -> Iterator[Server]:
    s = Server()
    s.start()
    yield s
    s.stop()


def plain(server: Server, **overrides: Any) -> SmtpEmailChannel:
    values: dict[str, Any] = {
        "host": "127.0.0.1",
        "port": server.port,
        "sender": SENDER,
        "tls": "none",
        "timeout": 5.0,
    }
    values.update(overrides)
    return SmtpEmailChannel(SmtpConfig(**values))


def message(outbox_id: int = 42, **overrides: Any) -> OutgoingMessage:
    values: dict[str, Any] = {
        "outbox_id": outbox_id,
        "to": TO,
        "channel": "email",
        "reference": "P-0042",
        "subject": "Your follow-up visit",
        "text": "See you on Tuesday at 10:00.",
        "html": "<p>See you on <b>Tuesday</b> at 10:00.</p>",
    }
    values.update(overrides)
    return OutgoingMessage(**values)


def parsed(envelope: Any) -> EmailMessage:
    mail = email.message_from_bytes(envelope.original_content, policy=default_policy)
    assert isinstance(mail, EmailMessage)
    return mail


def test_it_delivers_multipart_text_and_html_with_our_message_id(server: Server) -> None:
    receipt = plain(server).send(message(outbox_id=42))

    [envelope] = server.relay.received
    assert envelope.mail_from == "care@hospital.example"
    assert envelope.rcpt_tos == [TO]
    mail = parsed(envelope)
    assert mail.get_content_type() == "multipart/alternative"
    parts = [(p.get_content_type(), p.get_content().strip()) for p in mail.iter_parts()]
    assert parts == [
        ("text/plain", "See you on Tuesday at 10:00."),
        ("text/html", "<p>See you on <b>Tuesday</b> at 10:00.</p>"),
    ]
    assert mail["Message-ID"] == receipt.provider_id
    assert ".outbox-42@hospital.example>" in receipt.provider_id
    assert (mail["From"], mail["To"], mail["Subject"]) == (SENDER, TO, "Your follow-up visit")
    assert mail["Date"].datetime.tzinfo is not None
    assert receipt.status == "accepted"


def test_it_sends_plain_text_alone_when_there_is_no_html(server: Server) -> None:
    plain(server).send(message(html=None))

    mail = parsed(server.relay.received[0])
    assert mail.get_content_type() == "text/plain"


def test_it_sends_non_ascii_text_7bit_clean(server: Server) -> None:
    plain(server).send(message(subject="Recuperación", text="¿Cómo está la herida?", html=None))

    mail = parsed(server.relay.received[0])
    assert mail["Content-Transfer-Encoding"] in ("quoted-printable", "base64")
    assert max(server.relay.received[0].original_content) < 128
    assert (mail["Subject"], mail.get_content().strip()) == ("Recuperación", "¿Cómo está la herida?")


def test_it_gives_every_send_of_one_outbox_row_the_same_message_id(server: Server) -> None:
    channel = plain(server)
    row = message(outbox_id=7, row_key="enr:1:wound:1:email|2026-03-01T15:00:00+00:00")
    same_id_other_database = message(outbox_id=7, row_key="enr:1:wound:1:email|2026-05-02T09:30:00+00:00")

    first, again = channel.send(row).provider_id, channel.send(row).provider_id

    assert first == again and first.startswith("<outbox-7.") and first.endswith("@hospital.example>")
    assert channel.send(same_id_other_database).provider_id != first
    assert [parsed(e)["Message-ID"] for e in server.relay.received][:2] == [first, first]


def test_it_gives_a_message_without_a_row_key_a_new_message_id(server: Server) -> None:
    channel = plain(server)

    assert channel.send(message()).provider_id != channel.send(message()).provider_id


def test_it_calls_a_451_for_the_recipient_transient(server: Server) -> None:
    server.relay.rcpt_reply = "451 4.7.1 Greylisted, try again later"

    with pytest.raises(ChannelError) as caught:
        plain(server).send(message())

    assert (caught.value.permanent, caught.value.ambiguous, caught.value.code) == (False, False, "451")
    assert server.relay.received == []


def test_it_calls_a_550_for_the_recipient_permanent(server: Server) -> None:
    server.relay.rcpt_reply = "550 5.1.1 No such user"

    with pytest.raises(ChannelError) as caught:
        plain(server).send(message())

    assert (caught.value.permanent, caught.value.ambiguous, caught.value.code) == (True, False, "550")


def test_it_calls_a_554_after_data_permanent(server: Server) -> None:
    server.relay.data_reply = "554 5.7.1 Message rejected as spam"

    with pytest.raises(ChannelError) as caught:
        plain(server).send(message())

    assert (caught.value.permanent, caught.value.code) == (True, "554")


def test_it_calls_a_connection_lost_during_data_ambiguous(server: Server) -> None:
    server.relay.drop_during_data = True

    with pytest.raises(ChannelError) as caught:
        plain(server).send(message())

    assert (caught.value.permanent, caught.value.ambiguous) == (False, True)


def test_it_keeps_a_success_when_quit_fails_after_data_was_accepted(server: Server) -> None:
    server.relay.drop_on_quit = True

    receipt = plain(server).send(message())

    assert [parsed(e)["Message-ID"] for e in server.relay.received] == [receipt.provider_id]


def test_it_retries_safely_when_the_relay_is_down_and_sends_after_restart(server: Server) -> None:
    channel = plain(server)
    server.stop()

    with pytest.raises(ChannelError) as caught:
        channel.send(message(outbox_id=1))
    assert (caught.value.permanent, caught.value.ambiguous) == (False, False)

    server.start()
    receipt = channel.send(message(outbox_id=1))
    assert [parsed(e)["Message-ID"] for e in server.relay.received] == [receipt.provider_id]


def test_it_refuses_a_header_injection_without_connecting(server: Server) -> None:
    with pytest.raises(ChannelError) as caught:
        plain(server).send(message(subject="Hi\r\nBcc: everyone@example.org"))

    assert caught.value.permanent
    assert server.relay.received == []


@pytest.mark.parametrize(
    "overrides",
    [
        {"channel": "sms", "to": "+15005550006"},
        {"subject": None},
        {"to": "not an address"},
        {"to": "a@example.org, b@example.org"},
    ],
)
def test_it_refuses_what_cannot_be_one_email(server: Server, overrides: dict[str, Any]) -> None:
    with pytest.raises(ChannelError) as caught:
        plain(server).send(message(**overrides))

    assert caught.value.permanent
    assert server.relay.received == []


def test_it_will_not_fall_back_to_plain_text_when_starttls_is_missing(server: Server) -> None:
    with pytest.raises(ChannelError) as caught:
        plain(server, tls="starttls").send(message())

    assert (caught.value.permanent, caught.value.code) == (False, "no-starttls")
    assert server.relay.received == []


def test_it_logs_no_address_subject_or_body(server: Server, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level("DEBUG")
    server.relay.rcpt_reply = "550 5.1.1 No such user"
    channel = plain(server)

    with pytest.raises(ChannelError):
        channel.send(message())
    server.relay.rcpt_reply = None
    channel.send(message())

    # aiosmtpd's own "mail.log" echoes the DATA it receives; that is the server's log.
    text = "\n".join(f"{r.getMessage()} {r.__dict__}" for r in caplog.records if r.name != "mail.log")
    assert "P-0042" in text
    for secret in (TO, "follow-up", "Tuesday"):
        assert secret not in text


@pytest.mark.parametrize(
    "overrides",
    [
        {"tls": "tls"},
        {"port": 0},
        {"timeout": 0},
        {"sender": "nobody"},
        {"user": "u"},
        {"user": "u", "password": "p", "tls": "none", "host": "smtp.example.org"},
    ],
)
def test_it_rejects_bad_configuration(overrides: dict[str, Any]) -> None:
    values: dict[str, Any] = {"host": "127.0.0.1", "port": 25, "sender": SENDER}
    values.update(overrides)
    with pytest.raises(ConfigError):
        SmtpConfig(**values)


def test_it_keeps_the_password_out_of_repr() -> None:
    config = SmtpConfig(host="h", port=587, sender=SENDER, user="u", password="s3cret")

    assert "s3cret" not in repr(config)


# ---- TLS -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1, made with the openssl CLI (the venv has no
    ``cryptography``)."""
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("openssl CLI not available to make a test certificate")
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        [
            openssl,
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )
    return cert, key


def server_context(certificate: tuple[Path, Path]) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(str(certificate[0]), str(certificate[1]))
    return context


def authenticate(server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any) -> AuthResult:
    ok = isinstance(auth_data, LoginPassword) and (auth_data.login, auth_data.password) == (
        b"checkin",
        b"right",
    )
    # handled=False: let aiosmtpd answer 535 itself (its default assumes we already replied).
    return AuthResult(success=ok, handled=False)


@pytest.fixture
def starttls_server(certificate: tuple[Path, Path]) -> Iterator[Server]:
    s = Server(
        tls_context=server_context(certificate),
        require_starttls=True,
        authenticator=authenticate,
        auth_required=True,
    )
    s.start()
    yield s
    s.stop()


def test_it_sends_over_starttls_with_login(starttls_server: Server, certificate: tuple[Path, Path]) -> None:
    channel = plain(
        starttls_server, tls="starttls", user="checkin", password="right", ca_file=str(certificate[0])
    )

    receipt = channel.send(message())

    assert [parsed(e)["Message-ID"] for e in starttls_server.relay.received] == [receipt.provider_id]


def test_it_treats_rejected_credentials_as_an_account_problem(
    starttls_server: Server, certificate: tuple[Path, Path]
) -> None:
    channel = plain(
        starttls_server, tls="starttls", user="checkin", password="wrong", ca_file=str(certificate[0])
    )

    with pytest.raises(ChannelError) as caught:
        channel.send(message())

    assert (caught.value.permanent, caught.value.ambiguous, caught.value.code) == (False, False, "535")


def test_it_refuses_an_untrusted_certificate(starttls_server: Server) -> None:
    channel = plain(starttls_server, tls="starttls", user="checkin", password="right")

    with pytest.raises(ChannelError) as caught:
        channel.send(message())

    assert (caught.value.permanent, caught.value.ambiguous) == (False, False)
    assert starttls_server.relay.received == []


def test_it_sends_over_implicit_tls(certificate: tuple[Path, Path]) -> None:
    s = Server(ssl_context=server_context(certificate))
    s.start()
    try:
        receipt = plain(s, tls="ssl", ca_file=str(certificate[0])).send(message())
    finally:
        s.stop()

    assert [parsed(e)["Message-ID"] for e in s.relay.received] == [receipt.provider_id]
