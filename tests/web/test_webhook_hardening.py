"""Webhook input that used to get through or get lost: the re-split replay, mismatched SIDs,
long ``From`` and ``ErrorCode`` values on PostgreSQL."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import select

from checkin.deps import Services
from checkin.store.models import DeliveryEvent, InboundMessage
from tests.inbound.support import NOW, add_outbox, add_patient, signature, signed_headers, sms_params

PATH = "/webhooks/twilio/sms"


def stored(services: Services) -> list[tuple[str, str | None]]:
    with services.sessions() as s:
        return [(r.message_sid, r.from_phone) for r in s.scalars(select(InboundMessage)).all()]


def test_a_re_split_replay_keeps_its_signature_but_is_refused(client: TestClient, services: Services) -> None:
    with services.sessions.begin() as s:
        add_outbox(s, add_patient(s), sent_at=NOW - timedelta(hours=1))
    original = sms_params("I have a fever of 103")
    headers = signed_headers(PATH, original)
    assert client.post(PATH, data=original, headers=headers).status_code == 200
    # Names and values are concatenated without separators: fold NumMedia into MessageSid.
    replay = {k: v for k, v in original.items() if k != "NumMedia"}
    replay["MessageSid"] = original["MessageSid"] + "NumMedia" + original["NumMedia"]
    assert signature(replay, url="https://checkin.example.org" + PATH) == headers["X-Twilio-Signature"]
    r = client.post(PATH, data=replay, headers=headers)
    assert r.status_code == 400
    assert [sid for sid, _ in stored(services)] == [original["MessageSid"]]


def test_a_message_sid_unlike_sms_sid_is_refused(client: TestClient, services: Services) -> None:
    for bad in (
        sms_params("hello", SmsSid="SM" + "f" * 32),
        sms_params("hello", sid="SMshort", SmsSid="SMshort"),
        sms_params("hello", sid="XX" + "a" * 32, SmsSid="XX" + "a" * 32),
        {k: v for k, v in sms_params("hello").items() if k != "SmsSid"},
    ):
        r = client.post(PATH, data=bad, headers=signed_headers(PATH, bad))
        assert r.status_code == 400, bad
    assert stored(services) == []
    mms = sms_params("photo", sid="MM" + "0" * 32, SmsSid="MM" + "0" * 32)
    assert client.post(PATH, data=mms, headers=signed_headers(PATH, mms)).status_code == 200


def test_a_long_from_is_stored_whole(client: TestClient, services: Services, db_url: str) -> None:
    # Parametrized over SQLite and PostgreSQL (db_url); PostgreSQL enforces the column width.
    sender = "whatsapp:+4915123456789012"
    params = sms_params("hola", from_phone=sender)
    assert client.post(PATH, data=params, headers=signed_headers(PATH, params)).status_code == 200
    assert stored(services) == [(params["MessageSid"], sender)]


def test_a_long_error_code_is_recorded(client: TestClient, services: Services) -> None:
    with services.sessions.begin() as s:
        row = add_outbox(s, add_patient(s), sent_at=NOW - timedelta(hours=1))
        row.provider_id = "SM" + "d" * 32
        s.flush()
        oid = row.id
    form: dict[str, Any] = {
        "MessageSid": "SM" + "d" * 32,
        "MessageStatus": "undelivered",
        "AccountSid": sms_params("x")["AccountSid"],
        "ErrorCode": "30008-carrier-violation-extra",
    }
    target = f"/webhooks/twilio/status?outbox={oid}"
    sig = signature(form, url="https://checkin.example.org" + target)
    assert client.post(target, data=form, headers={"X-Twilio-Signature": sig}).status_code == 200
    with services.sessions() as s:
        codes = s.scalars(select(DeliveryEvent.error_code)).all()
    assert codes == ["30008-carrier-violation-extra"]


def test_an_unknown_number_gets_one_reply_a_day_except_emergencies(
    client: TestClient, services: Services
) -> None:
    stranger = "+12125550123"

    def text(body: str) -> str:
        params = sms_params(body, from_phone=stranger)
        r = client.post(PATH, data=params, headers=signed_headers(PATH, params))
        assert r.status_code == 200
        return r.text

    assert "<Message>" in text("hello?")
    assert "<Message>" not in text("hello again")
    assert "<Message>" not in text("anyone there")
    assert "<Message>" in text("chest pain and I can't breathe")  # emergencies always answered
    assert len(stored(services)) == 4  # every message is kept
    services.clock.advance(timedelta(days=1, minutes=1))  # type: ignore[attr-defined]
    assert "<Message>" in text("hello, new day")


def test_a_status_callback_with_a_malformed_sid_is_refused(client: TestClient) -> None:
    account = sms_params("x")["AccountSid"]
    for form in (
        {"MessageSid": "SM" + "d" * 32 + "MessageStatusdelivered", "AccountSid": account},
        {"MessageSid": "SMx", "MessageStatus": "delivered", "AccountSid": account},
        {
            "MessageSid": "SM" + "d" * 32,
            "SmsSid": "SM" + "e" * 32,
            "MessageStatus": "sent",
            "AccountSid": account,
        },
    ):
        form.setdefault("MessageStatus", "delivered")
        target = "/webhooks/twilio/status?outbox=1"
        sig = signature(form, url="https://checkin.example.org" + target)
        assert client.post(target, data=form, headers={"X-Twilio-Signature": sig}).status_code == 400, form
