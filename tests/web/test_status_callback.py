"""POST /webhooks/twilio/status?outbox=ID: verified like the SMS webhook, then checkin.outbound.delivery."""

from __future__ import annotations

from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from checkin.deps import Services
from tests.inbound.support import ACCOUNT_SID, NOW, PUBLIC_URL, add_outbox, add_patient, signature

PATH = "/webhooks/twilio/status"


def params(sid: str = "SM" + "a" * 32, status: str = "delivered", **extra: str) -> dict[str, str]:
    return {
        "MessageSid": sid,
        "MessageStatus": status,
        "AccountSid": ACCOUNT_SID,
        "To": "+16175550123",
        **extra,
    }


def post(client: TestClient, form: dict[str, str], query: str = "outbox=1", url: str | None = None):  # type: ignore[no-untyped-def]
    target = f"{PATH}?{query}" if query else PATH
    sig = signature(form, url=url or PUBLIC_URL + target)
    return client.post(target, data=form, headers={"X-Twilio-Signature": sig})


def events(services: Services) -> int:
    from checkin.store.models import DeliveryEvent

    with services.sessions() as s:
        return int(s.scalar(select(func.count()).select_from(DeliveryEvent)) or 0)


def test_it_refuses_a_callback_signed_without_the_query_string(
    client: TestClient, services: Services
) -> None:
    r = post(client, params(), url=PUBLIC_URL + PATH)  # signed for the URL without ?outbox=1
    assert r.status_code == 403 and events(services) == 0


def test_it_refuses_a_forged_callback(client: TestClient, services: Services) -> None:
    r = client.post(f"{PATH}?outbox=1", data=params(), headers={"X-Twilio-Signature": "Zm9yZ2Vk"})
    assert r.status_code == 403 and events(services) == 0


def test_it_records_a_signed_callback_through_checkin_delivery(
    client: TestClient, services: Services
) -> None:
    pytest.importorskip("checkin.outbound.delivery")
    with services.sessions.begin() as s:
        row = add_outbox(s, add_patient(s), sent_at=NOW - timedelta(minutes=5))
        row.provider_id = "SM" + "b" * 32
        oid = row.id
    r = post(client, params(sid="SM" + "b" * 32, status="delivered"), query=f"outbox={oid}")
    assert r.status_code == 200
    assert events(services) == 1


@pytest.mark.parametrize("query", ["outbox=999999", "outbox=abc", "", "outbox=99999999999999999999999"])
def test_it_answers_200_for_unknown_or_old_messages(client: TestClient, query: str) -> None:
    pytest.importorskip("checkin.outbound.delivery")
    assert post(client, params(sid="SM" + "c" * 32), query=query).status_code == 200


def test_it_answers_200_to_a_signed_callback_missing_fields(client: TestClient, services: Services) -> None:
    assert post(client, {"AccountSid": ACCOUNT_SID}).status_code == 200
    assert events(services) == 0
