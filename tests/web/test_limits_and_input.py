"""Bad input to the webhooks and forms: size, method, content type, unicode, injection."""

from __future__ import annotations

from datetime import timedelta
from typing import Any
from urllib.parse import urlencode

import httpx2
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from checkin.app.web.limits import MAX_BODY_BYTES
from checkin.deps import Services
from checkin.store.models import InboundMessage
from tests.inbound.support import NOW, add_outbox, add_patient, signed_headers, sms_params
from tests.web.conftest import LiveServer

PATH = "/webhooks/twilio/sms"


def stored(services: Services) -> list[InboundMessage]:
    with services.sessions() as s:
        return list(s.scalars(select(InboundMessage).order_by(InboundMessage.id)))


def count(services: Services) -> int:
    with services.sessions() as s:
        return int(s.scalar(select(func.count()).select_from(InboundMessage)) or 0)


def test_it_refuses_a_body_one_byte_over_64_kib_with_413(client: TestClient, services: Services) -> None:
    params = sms_params("")
    body = urlencode(params).encode()
    body += b"&Pad=" + b"x" * (MAX_BODY_BYTES + 1 - len(body) - 5)
    assert len(body) == MAX_BODY_BYTES + 1
    r = client.post(PATH, content=body, headers={"content-type": "application/x-www-form-urlencoded"})
    assert r.status_code == 413 and count(services) == 0


def test_it_accepts_a_body_of_exactly_64_kib(client: TestClient, services: Services) -> None:
    params = sms_params("ok")
    params["Pad"] = "x" * (MAX_BODY_BYTES - len(urlencode(params).encode()) - len("&Pad="))
    assert len(urlencode(params).encode()) == MAX_BODY_BYTES
    r = client.post(PATH, data=params, headers=signed_headers(PATH, params))
    assert r.status_code == 200


def test_it_cuts_off_a_chunked_body_that_grows_past_the_limit(
    live_server: LiveServer, services: Services
) -> None:
    def chunks() -> Any:
        for _ in range(200):  # 10 MB announced by nobody: only counting can stop it
            yield b"x" * 50_000

    with httpx2.Client(base_url=live_server.url, timeout=10) as c:
        r = c.post(PATH, content=chunks(), headers={"content-type": "application/x-www-form-urlencoded"})
    assert r.status_code == 413 and count(services) == 0


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE", "PATCH"])
def test_it_allows_only_post_on_webhooks(client: TestClient, method: str) -> None:
    assert client.request(method, PATH).status_code == 405
    assert client.request(method, "/webhooks/twilio/status").status_code == 405


@pytest.mark.parametrize(
    ("content_type", "body"),
    [
        ("application/json", b'{"Body": "hi"}'),
        (
            "multipart/form-data; boundary=x",
            b'--x\r\nContent-Disposition: form-data; name="Body"\r\n\r\nhi\r\n--x--\r\n',
        ),
        ("text/plain", b"Body=hi"),
        ("", b"Body=hi"),
    ],
)
def test_it_refuses_anything_but_a_url_encoded_form_with_415(
    client: TestClient, services: Services, content_type: str, body: bytes
) -> None:
    r = client.post(PATH, content=body, headers={"content-type": content_type} if content_type else {})
    assert r.status_code == 415 and count(services) == 0


def test_it_refuses_ten_thousand_fields_with_400(client: TestClient, services: Services) -> None:
    body = "&".join(f"f{i}=1" for i in range(10_000)).encode()
    assert len(body) < MAX_BODY_BYTES * 2
    r = client.post(
        PATH, content=body[:MAX_BODY_BYTES], headers={"content-type": "application/x-www-form-urlencoded"}
    )
    assert r.status_code == 400 and count(services) == 0


@pytest.mark.parametrize("raw", [b"Body=%FF", b"Body=%ED%A0%80", b"Body=\xff"])
def test_it_refuses_invalid_utf8_cleanly(client: TestClient, services: Services, raw: bytes) -> None:
    r = client.post(PATH, content=raw, headers={"content-type": "application/x-www-form-urlencoded"})
    assert r.status_code == 400 and count(services) == 0


UNICODE = [
    "feeling ok 👍",
    "family 👨‍👩‍👧 visiting",
    "\u202eevif si niap",
    "zero\u200bwidth",
    "nul\x00byte",
    "café con leche, sin fiebre",
    "e\u0301\u0301 combining",
    "٣",
    "３",
]


@pytest.mark.parametrize("text", UNICODE)
def test_it_stores_unicode_losslessly(client: TestClient, services: Services, text: str) -> None:
    with services.sessions.begin() as s:
        add_outbox(
            s, add_patient(s), message="pain_check", ask="pain_scale", sent_at=NOW - timedelta(hours=1)
        )
    params = sms_params(text)
    r = client.post(PATH, data=params, headers=signed_headers(PATH, params))
    assert r.status_code == 200
    (row,) = stored(services)
    # NUL cannot live in PostgreSQL text: it is the one character replaced (by U+FFFD).
    assert row.body == text.replace("\x00", "\ufffd")
    assert row.processed_at is not None


def test_it_reads_a_full_width_digit_as_a_pain_score_through_the_webhook(
    client: TestClient, services: Services
) -> None:
    with services.sessions.begin() as s:
        add_outbox(
            s, add_patient(s), message="pain_check", ask="pain_scale", sent_at=NOW - timedelta(hours=1)
        )
    params = sms_params("９")
    client.post(PATH, data=params, headers=signed_headers(PATH, params))
    (row,) = stored(services)
    assert row.assessment is not None and row.assessment["pain_score"] == 9
    assert row.severity == "urgent"


@pytest.mark.parametrize(
    "text",
    [
        "'); DROP TABLE patients;--",
        "{{7*7}}",
        "<script>alert(1)</script>",
        "{% for i in range(10**9) %}x{% endfor %}",
    ],
)
def test_it_stores_injection_like_text_verbatim_and_never_echoes_it(
    client: TestClient, services: Services, text: str
) -> None:
    with services.sessions.begin() as s:
        add_patient(s)
    params = sms_params(text)
    r = client.post(PATH, data=params, headers=signed_headers(PATH, params))
    assert r.status_code == 200
    assert "49" not in r.text and "script" not in r.text and "DROP" not in r.text
    (row,) = stored(services)
    assert row.body == text
