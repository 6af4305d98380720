"""Email replies end to end through a real SMTP server on loopback (``checkin mail receive``'s
receiver, aiosmtpd): matched by reply token or Message-ID, quoted history stripped, triaged,
answered through the outbox, deduplicated, unknown senders told nothing about a patient."""

from __future__ import annotations

import smtplib
from collections.abc import Iterator
from datetime import timedelta
from email.message import EmailMessage
from email.utils import make_msgid
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.exc import OperationalError

from checkin.app.bootstrap import build_services
from checkin.app.mail_receiver import MailReceiver
from checkin.channels.email import SmtpConfig, SmtpEmailChannel
from checkin.channels.memory import MemoryChannel
from checkin.clock import ManualClock
from checkin.demo.mailcatcher import free_port
from checkin.deps import Services
from checkin.outbound.dispatch import build_message
from checkin.store.models import Alert, InboundMessage, OutboxMessage, Patient
from checkin.store.outbox import fit_provider_id
from checkin.tokens import reply_address, reply_token
from tests.inbound.support import NOW, SECRET, add_outbox, add_patient, settings_for

REPLY_TO = "checkin@replies.example.org"


@pytest.fixture
def services(db_url: str) -> Iterator[Services]:
    from checkin.store.db import make_engine

    settings = settings_for(db_url, CHECKIN_EMAIL_REPLY_TO=REPLY_TO)
    clock = ManualClock(NOW)
    s = build_services(
        settings,
        clock=clock,
        sms=MemoryChannel(clock),
        email=MemoryChannel(clock),
        engine=make_engine(db_url),
        schedules={},
    )
    yield s
    s.engine.dispose()


@pytest.fixture
def receiver(services: Services) -> Iterator[MailReceiver]:
    r = MailReceiver(services, "127.0.0.1", free_port())
    r.start()
    yield r
    r.stop()


def emailed_question(services: Services, *, ask: str = "wound_check") -> tuple[Patient, OutboxMessage, str]:
    """A patient and a sent check-in email, with the Message-ID it went out with."""
    with services.sessions.begin() as s:
        patient = add_patient(s, first_name="Ana")
        row = add_outbox(s, patient, message=ask, ask=ask, channel="email", sent_at=NOW - timedelta(hours=1))
        message_id = make_msgid(idstring=f"outbox-{row.id}", domain="example.org")
        row.provider_id = fit_provider_id(message_id)  # as dispatch stores it
        s.flush()
        s.expunge_all()
    return patient, row, message_id


def reply(
    body: str,
    *,
    to: str,
    sender: str = "ana@example.org",
    in_reply_to: str | None = None,
    message_id: str | None = None,
    **headers: str,
) -> EmailMessage:
    mail = EmailMessage()
    mail["From"] = sender
    mail["To"] = to
    mail["Subject"] = "Re: Your check-in"
    mail["Message-ID"] = message_id or make_msgid(domain="mail.example.net")
    if in_reply_to:
        mail["In-Reply-To"] = in_reply_to
        mail["References"] = in_reply_to
    for name, value in headers.items():
        mail[name.replace("_", "-")] = value
    mail.set_content(body)
    return mail


def send(receiver: MailReceiver, mail: EmailMessage, rcpt: str | None = None) -> None:
    with smtplib.SMTP(receiver.host, receiver.port, timeout=10) as smtp:
        smtp.send_message(mail, to_addrs=[rcpt or str(mail["To"])])


def rows(services: Services, model: Any, *where: Any) -> list[Any]:
    with services.sessions() as s:
        found = list(s.scalars(select(model).where(*where).order_by(model.id)))
        s.expunge_all()
        return found


QUOTED_EN = (
    "YES it's leaking pus and the edges opened\n\n"
    "On Tue, Mar 3, 2026 at 9:00 AM Riverside Spine <\n{addr}> wrote:\n"
    "> Is your incision more red, warm or swollen, opening, or leaking fluid or pus?\n"
    "> You can reply to this email\n"
)


def test_a_reply_to_the_token_address_is_triaged_alerted_and_answered_to_the_address_on_file(
    services: Services, receiver: MailReceiver
) -> None:
    patient, question, _ = emailed_question(services)
    to = reply_address(REPLY_TO, SECRET, question.id)
    send(receiver, reply(QUOTED_EN.format(addr=to), to=to, sender="someone-else@example.net"))

    (inbound,) = rows(services, InboundMessage)
    assert inbound.channel == "email"
    assert inbound.patient_id == patient.id and inbound.outbox_id == question.id
    assert inbound.body == "YES it's leaking pus and the edges opened"  # the quote is gone
    assert inbound.severity in ("urgent", "emergency")
    (alert,) = rows(services, Alert)
    assert alert.patient_id == patient.id and alert.inbound_id == inbound.id
    (answered,) = rows(services, OutboxMessage, OutboxMessage.id == question.id)
    assert answered.answered_at == NOW
    (answer,) = rows(services, OutboxMessage, OutboxMessage.step_id == "reply")
    # To the patient's address on file (recipient None), never to the From of the email.
    assert answer.recipient is None and answer.patient_id == patient.id
    assert answer.status == "pending" and answer.urgent and answer.channel == "email"
    assert answer.body and "nurse" in answer.body.lower()
    assert answer.subject == "Re: Your check-in"


def test_the_same_email_delivered_twice_is_processed_once(services: Services, receiver: MailReceiver) -> None:
    _, question, _ = emailed_question(services)
    to = reply_address(REPLY_TO, SECRET, question.id)
    mail = reply("yes it is red", to=to)
    send(receiver, mail)
    send(receiver, mail)
    assert len(rows(services, InboundMessage)) == 1
    assert len(rows(services, OutboxMessage, OutboxMessage.step_id == "reply")) == 1


def test_a_spanish_client_quote_is_stripped_and_the_token_read_case_insensitively(
    services: Services, receiver: MailReceiver
) -> None:
    patient, question, _ = emailed_question(services, ask="fever_check")
    local, _, domain = REPLY_TO.partition("@")
    to = f"{local}+{reply_token(SECRET, question.id).upper()}@{domain.upper()}"
    body = "Sí, 39.5\n\nEl mar, 3 mar 2026 a las 9:00, Riverside Spine escribió:\n> ¿Tiene fiebre?\n"
    send(receiver, reply(body, to=to))
    (inbound,) = rows(services, InboundMessage)
    assert inbound.patient_id == patient.id
    assert inbound.body == "Sí, 39.5"
    assert "fever" in inbound.flags


def test_a_reply_to_the_base_address_is_matched_by_in_reply_to(
    services: Services, receiver: MailReceiver
) -> None:
    patient, question, message_id = emailed_question(services)
    send(receiver, reply("no, it looks fine", to=REPLY_TO, in_reply_to=message_id))
    (inbound,) = rows(services, InboundMessage)
    assert inbound.patient_id == patient.id and inbound.outbox_id == question.id


def test_a_forged_token_or_an_unknown_sender_gets_nothing_about_a_patient(
    services: Services, receiver: MailReceiver
) -> None:
    _, question, _ = emailed_question(services)
    local, _, domain = REPLY_TO.partition("@")
    forged = f"{local}+{question.id}-{'a' * 16}@{domain}"
    send(receiver, reply("hello, is Ana doing ok?", to=forged))
    (inbound,) = rows(services, InboundMessage)
    assert inbound.patient_id is None and inbound.outbox_id is None
    assert rows(services, OutboxMessage, OutboxMessage.step_id == "reply") == []  # no answer at all
    assert rows(services, Alert) == []


def test_an_unknown_sender_with_an_emergency_is_told_to_call_911_without_patient_data(
    services: Services, receiver: MailReceiver
) -> None:
    emailed_question(services)
    send(receiver, reply("I can't breathe and have chest pain", to=REPLY_TO, sender="stranger@example.net"))
    (answer,) = rows(services, OutboxMessage, OutboxMessage.step_id == "reply")
    assert answer.recipient == "stranger@example.net" and answer.patient_id is None
    assert answer.body and "911" in answer.body and "Ana" not in answer.body


def test_a_photo_without_text_is_recorded_as_such(services: Services, receiver: MailReceiver) -> None:
    patient, question, _ = emailed_question(services)
    mail = reply("", to=reply_address(REPLY_TO, SECRET, question.id))
    mail.add_attachment(
        b"\xff\xd8\xff\xe0 not really a jpeg", maintype="image", subtype="jpeg", filename="wound.jpg"
    )
    send(receiver, mail)
    (inbound,) = rows(services, InboundMessage)
    assert inbound.patient_id == patient.id
    assert inbound.body.startswith("[no text; 1 attachment(s) not kept")


def test_automatic_replies_are_ignored(services: Services, receiver: MailReceiver) -> None:
    _, question, _ = emailed_question(services)
    to = reply_address(REPLY_TO, SECRET, question.id)
    send(receiver, reply("I am out of the office until Monday.", to=to, Auto_Submitted="auto-replied"))
    assert rows(services, InboundMessage) == []


def test_only_reply_addresses_are_accepted(services: Services, receiver: MailReceiver) -> None:
    with pytest.raises(smtplib.SMTPRecipientsRefused) as err:
        send(receiver, reply("hi", to="someone@example.org"))
    assert next(iter(err.value.recipients.values()))[0] == 550


def test_a_database_outage_answers_451_so_the_relay_retries(
    services: Services, receiver: MailReceiver
) -> None:
    def down(raw: bytes, rcpt: list[str]) -> Any:
        raise OperationalError("SELECT 1", {}, Exception("database is down"))

    receiver.handler._process = down
    with pytest.raises(smtplib.SMTPDataError) as err:
        send(receiver, reply("yes", to=REPLY_TO))
    assert err.value.smtp_code == 451


def test_patient_emails_carry_the_reply_token_only_when_replies_are_read(services: Services) -> None:
    _, question, _ = emailed_question(services)
    with services.sessions() as s:
        row = s.get(OutboxMessage, question.id)
        patient = s.get(Patient, row.patient_id)
        with_replies = build_message(services, row, patient, None)
        services.settings = services.settings.replace(email_reply_to=None)
        without = build_message(services, row, patient, None)
    assert with_replies.reply_to == reply_address(REPLY_TO, SECRET, question.id)
    channel = SmtpEmailChannel(
        SmtpConfig(host="127.0.0.1", port=25, sender="checkin@example.org", tls="none")
    )
    assert channel.build(with_replies)["Reply-To"] == with_replies.reply_to
    assert "You can reply to this email" in with_replies.text
    assert without.reply_to is None
    assert "reply to this email" not in without.text.lower() and "not read" in without.text


def test_checkin_mail_receive_runs_as_a_process_and_stops_on_sigterm(tmp_path: Any) -> None:
    import os
    import signal
    import socket
    import subprocess
    import sys
    import time

    from checkin.store.db import upgrade
    from tests.support import ROOT

    url = f"sqlite:///{tmp_path / 'mail.db'}"
    upgrade(url)
    port = free_port()
    env = {
        **os.environ,
        "CHECKIN_DATABASE_URL": url,
        "CHECKIN_SCHEDULES_DIR": str(ROOT / "schedules"),
        "CHECKIN_TEMPLATES_DIR": str(ROOT / "templates"),
        "CHECKIN_EMAIL_REPLY_TO": REPLY_TO,
        "CHECKIN_MAIL_LISTEN": f"127.0.0.1:{port}",
    }
    code = "from checkin.app.cli.main import main; main()"
    proc = subprocess.Popen(
        [sys.executable, "-c", code, "--env-file", str(tmp_path / "none.env"), "mail", "receive"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    break
            assert proc.poll() is None and time.monotonic() < deadline, "receiver did not start"
            time.sleep(0.2)
        with smtplib.SMTP("127.0.0.1", port, timeout=30) as smtp:
            refused = smtp.sendmail("a@example.net", ["other@example.org"], b"Subject: x\r\n\r\nhi\r\n")
    except smtplib.SMTPRecipientsRefused as err:
        refused = err.recipients  # type: ignore[assignment]
    finally:
        proc.send_signal(signal.SIGTERM)
        out = proc.communicate(timeout=60)[0]
    assert refused and next(iter(refused.values()))[0] == 550  # type: ignore[union-attr]
    assert proc.returncode == 0, out
    assert f"receiving replies for {REPLY_TO} on 127.0.0.1:{port}" in out
