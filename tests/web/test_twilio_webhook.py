"""POST /webhooks/twilio/sms with requests signed by twilio's own RequestValidator."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from twilio.request_validator import RequestValidator

from checkin.app.web import create_app
from checkin.deps import Services
from checkin.store.models import Alert, InboundMessage, OutboxMessage
from tests.inbound.support import (
    ACCOUNT_SID,
    AUTH_TOKEN,
    NOW,
    PUBLIC_URL,
    add_outbox,
    add_patient,
    signature,
    signed_headers,
    sms_params,
)

PATH = "/webhooks/twilio/sms"


def post(client: TestClient, params: dict[str, str], **kw: Any) -> Any:
    return client.post(PATH, data=params, headers=signed_headers(PATH, params, **kw))


def rows(services: Services, model: Any = InboundMessage) -> int:
    with services.sessions() as s:
        return int(s.scalar(select(func.count()).select_from(model)) or 0)


def failures(client: TestClient) -> float:
    return float(client.app.state.web.metrics.value("webhook_signature_failures_total"))  # type: ignore[attr-defined]


@pytest.fixture
def ana(services: Services) -> None:
    with services.sessions.begin() as s:
        add_outbox(s, add_patient(s), sent_at=NOW - timedelta(hours=1))


def test_it_accepts_a_signed_request_and_answers_with_twiml(
    client: TestClient, services: Services, ana: None
) -> None:
    r = post(client, sms_params("101.9"))
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("application/xml")
    assert r.text.startswith('<?xml version="1.0" encoding="UTF-8"?><Response><Message>')
    assert "nurse will call" in r.text
    assert rows(services) == 1 and rows(services, Alert) == 1


@pytest.mark.parametrize(
    "case",
    [
        "forged",
        "missing",
        "http_url",
        "internal_host",
        "wrong_path",
        "wrong_token",
        "other_algorithm_header",
        "tampered_body",
    ],
)
def test_it_refuses_a_bad_signature_with_403_and_stores_nothing(
    client: TestClient, services: Services, ana: None, case: str
) -> None:
    params = sms_params("I can't breathe")
    headers = signed_headers(PATH, params)
    if case == "forged":
        headers = {"X-Twilio-Signature": "bm90IGEgc2lnbmF0dXJl"}
    elif case == "missing":
        headers = {}
    elif case == "http_url":
        headers = signed_headers(PATH, params, url="http://checkin.example.org" + PATH)
    elif case == "internal_host":
        headers = signed_headers(PATH, params, url="http://10.0.0.5:8000" + PATH)
    elif case == "wrong_path":
        headers = signed_headers(PATH, params, url=PUBLIC_URL + "/webhooks/twilio/status")
    elif case == "wrong_token":
        headers = signed_headers(PATH, params, token="ffffffffffffffffffffffffffffffff")
    elif case == "other_algorithm_header":
        # Only the auth-token (SHA1) scheme is accepted; a SHA256 signature is not tried.
        headers["X-Twilio-Webhooks-Signature-Settings"] = "key=x,algorithm=HMAC_SHA256"
        headers["X-Twilio-Signature"] = RequestValidator(AUTH_TOKEN).compute_signature(
            PUBLIC_URL + PATH, params, algorithm="HMAC_SHA256"
        )
    elif case == "tampered_body":
        params = {**params, "Body": "all good"}
    before = failures(client)
    r = client.post(PATH, data=params, headers=headers)
    assert r.status_code == 403
    assert "breathe" not in r.text and "<Response" not in r.text
    assert rows(services) == 0 and rows(services, Alert) == 0
    assert failures(client) == before + 1


def test_it_accepts_the_public_url_with_the_default_port(
    client: TestClient, services: Services, ana: None
) -> None:
    params = sms_params("fine today")
    r = client.post(
        PATH, data=params, headers=signed_headers(PATH, params, url="https://checkin.example.org:443" + PATH)
    )
    assert r.status_code == 200 and rows(services) == 1


def test_a_request_signed_for_the_public_url_costs_one_hmac(
    client: TestClient, services: Services, ana: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    plain, with_port = sms_params("fine today"), sms_params("ok")
    port_url = "https://checkin.example.org:443" + PATH
    plain_headers, port_headers = signed_headers(PATH, plain), signed_headers(PATH, with_port, url=port_url)
    urls: list[str] = []
    compute = RequestValidator.compute_signature

    def counted(self: RequestValidator, uri: str, params: Any, algorithm: str | None = None) -> str:
        urls.append(uri)
        return compute(self, uri, params, algorithm)

    monkeypatch.setattr(RequestValidator, "compute_signature", counted)
    assert client.post(PATH, data=plain, headers=plain_headers).status_code == 200
    assert urls == [PUBLIC_URL + PATH]
    urls.clear()  # signed with the port: the configured URL, then the other one
    assert client.post(PATH, data=with_port, headers=port_headers).status_code == 200
    assert urls == [PUBLIC_URL + PATH, port_url]


def test_it_refuses_a_signed_request_from_another_account(client: TestClient, services: Services) -> None:
    params = sms_params("hello", AccountSid="AC" + "f" * 32)
    assert post(client, params).status_code == 403
    assert rows(services) == 0


def test_it_answers_a_sequential_replay_with_empty_twiml_and_no_second_row(
    client: TestClient, services: Services, ana: None
) -> None:
    params = sms_params("I fell down the stairs")
    first, second = post(client, params), post(client, params)
    assert first.status_code == second.status_code == 200
    assert "<Message>" in first.text
    assert second.text == '<?xml version="1.0" encoding="UTF-8"?><Response />'
    assert rows(services) == 1 and rows(services, Alert) == 1


def test_it_answers_200_with_empty_twiml_to_a_signed_request_without_message_sid(
    client: TestClient, services: Services
) -> None:
    params = {"AccountSid": ACCOUNT_SID, "From": "+16175550123", "Body": "hi"}
    r = post(client, params)
    assert r.status_code == 200 and "<Message>" not in r.text and rows(services) == 0


def test_it_refuses_webhooks_with_503_when_twilio_is_not_configured(db_url: str) -> None:
    from tests.inbound.support import services_for

    services = services_for(db_url, twilio=False)
    try:
        with TestClient(create_app(services)) as c:
            params = sms_params("hello")
            # Even a request signed with a plausible token is not processed without one configured.
            r = c.post(
                PATH, data=params, headers={"X-Twilio-Signature": signature(params, url=PUBLIC_URL + PATH)}
            )
            assert r.status_code == 503
            assert rows(services) == 0
    finally:
        services.engine.dispose()


def test_it_replies_to_an_unknown_number_without_patient_details(
    client: TestClient, services: Services, ana: None
) -> None:
    r = post(client, sms_params("who is this", from_phone="+12125550199"))
    assert r.status_code == 200 and "Ana" not in r.text and "could not match" in r.text


def test_it_stops_and_holds_pending_sms_through_the_webhook(client: TestClient, services: Services) -> None:
    with services.sessions.begin() as s:
        add_outbox(s, add_patient(s), status="pending", due_at=NOW + timedelta(days=1))
    r = post(client, sms_params("ＳＴＯＰ"))
    assert r.status_code == 200 and "START" in r.text
    with services.sessions() as s:
        assert s.scalars(select(OutboxMessage.status)).all() == ["held"]


def test_it_answers_503_when_the_database_is_down(tmp_path: Any) -> None:
    from tests.inbound.support import services_for

    url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    from checkin.store.db import upgrade

    upgrade(url)
    services = services_for(url)
    with TestClient(create_app(services)) as c:
        (tmp_path / "db.sqlite").unlink()
        services.engine.dispose()
        (tmp_path / "db.sqlite").mkdir()  # a directory where the file was: every connect fails
        params = sms_params("hello")
        assert post(c, params).status_code == 503
        assert c.get("/readyz").status_code == 503
        assert c.get("/healthz").status_code == 200
    services.engine.dispose()


def test_it_signs_against_the_configured_public_url_not_the_host_header(
    client: TestClient, services: Services
) -> None:
    params = sms_params("fine")
    r = client.post(
        PATH,
        data=params,
        headers={
            **signed_headers(PATH, params),
            "Host": "evil.example.com",
            "X-Forwarded-Proto": "http",
            "X-Forwarded-Host": "evil.example.com",
        },
    )
    assert r.status_code == 200 and rows(services) == 1
    assert AUTH_TOKEN not in r.text


def test_it_keeps_the_text_and_still_names_911_when_processing_fails(services: Services) -> None:
    def broken_triage(text: str, context: str | None = None) -> Any:
        raise RuntimeError("bug in triage")

    with services.sessions.begin() as s:
        add_patient(s)
    with TestClient(create_app(services, assess=broken_triage)) as c:
        params = sms_params("my chest hurts")
        r = post(c, params)
        assert r.status_code == 200 and "911" in r.text
        assert c.app.state.web.metrics.value("inbound_errors_total", reason="processing") == 1  # type: ignore[attr-defined]
        assert (
            post(c, params).text == '<?xml version="1.0" encoding="UTF-8"?><Response />'
        )  # replay: stored once
    with services.sessions() as s:
        (row,) = s.scalars(select(InboundMessage)).all()
        assert row.body == "my chest hurts" and row.processed_at is None
