"""The email check-in form: GET /c/<token> shows one question, POST answers it once."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from checkin import tokens
from checkin.app.web import create_app
from checkin.clock import ManualClock
from checkin.deps import Services
from checkin.store.models import Alert, InboundMessage, OutboxMessage
from tests.inbound.support import SECRET, add_outbox, add_patient, services_for


@pytest.fixture
def now() -> datetime:
    # Check-in tokens are stamped with the wall clock (itsdangerous), so the service clock here
    # is the wall clock too; expiry tests move it forward.
    return datetime.now(UTC).replace(microsecond=0)


@pytest.fixture
def services(db_url: str, now: datetime) -> Iterator[Services]:
    s = services_for(db_url, now=now)
    yield s
    s.engine.dispose()


@pytest.fixture
def client(services: Services) -> Iterator[TestClient]:
    with TestClient(create_app(services), base_url="http://10.0.0.5:8000") as c:
        yield c


def question(
    services: Services,
    now: datetime,
    *,
    language: str = "en",
    message: str = "fever_check",
    ask: str = "fever_check",
) -> int:
    with services.sessions.begin() as s:
        p = add_patient(s, first_name="Rosa", phone=None, language=language, now=now)
        return add_outbox(
            s, p, message=message, ask=ask, channel="email", sent_at=now - timedelta(hours=1), now=now
        ).id


def link(outbox_id: int) -> str:
    return "/c/" + tokens.make_token(SECRET, tokens.CHECKIN_SALT, {"o": outbox_id})


def nonce(html: str) -> str:
    m = re.search(r'name="nonce" value="([^"]+)"', html)
    assert m, html
    return m.group(1)


def answer(client: TestClient, url: str, text: str, *, form_nonce: str | None = None) -> Any:
    if form_nonce is None:
        form_nonce = nonce(client.get(url).text)
    return client.post(url, data={"answer": text, "nonce": form_nonce})


def inbound_rows(services: Services) -> list[InboundMessage]:
    with services.sessions() as s:
        return list(s.scalars(select(InboundMessage)))


def test_it_shows_the_question_rendered_for_the_patient_without_side_effects(
    client: TestClient, services: Services, now: datetime
) -> None:
    url = link(question(services, now))
    r = client.get(url)
    assert r.status_code == 200
    assert "Rosa" in r.text and "fever or chills" in r.text
    assert 'name="viewport"' in r.text and "<script" not in r.text
    assert r.headers["cache-control"] == "no-store" and r.headers["referrer-policy"] == "no-referrer"
    assert "script-src" not in r.headers["content-security-policy"]
    assert inbound_rows(services) == []


def test_it_shows_the_question_in_spanish_for_a_spanish_patient(
    client: TestClient, services: Services, now: datetime
) -> None:
    r = client.get(link(question(services, now, language="es")))
    assert 'lang="es"' in r.text and "fiebre" in r.text and "Enviar respuesta" in r.text


def test_it_runs_the_answer_through_triage_and_shows_the_safety_reply(
    client: TestClient, services: Services, now: datetime
) -> None:
    oid = question(services, now)
    r = answer(client, link(oid), "101.9 and chills")
    assert r.status_code == 200 and "nurse will call" in r.text
    (row,) = inbound_rows(services)
    assert row.message_sid == f"web-{oid}" and row.channel == "web" and row.from_phone is None
    assert row.outbox_id == oid and row.severity == "urgent"
    with services.sessions() as s:
        assert s.get(OutboxMessage, oid).answered_at == now  # type: ignore[union-attr]
        assert s.scalar(select(func.count()).select_from(Alert)) == 1


def test_it_shows_911_on_the_page_for_an_emergency(
    client: TestClient, services: Services, now: datetime
) -> None:
    r = answer(client, link(question(services, now)), "I can't breathe, chest pain")
    assert "911" in r.text and "emergency" in r.text.lower()


def test_it_stores_a_second_answer_once_and_says_already_answered(
    client: TestClient, services: Services, now: datetime
) -> None:
    url = link(question(services, now))
    page = client.get(url).text
    first = answer(client, url, "98.6", form_nonce=nonce(page))
    second = answer(client, url, "actually 103", form_nonce=nonce(page))  # back button, resubmit
    assert first.status_code == second.status_code == 200
    assert "already been answered" in second.text
    assert [r.body for r in inbound_rows(services)] == ["98.6"]
    assert "already been answered" in client.get(url).text


def test_it_refuses_an_expired_link_with_410_and_says_to_call(
    client: TestClient, services: Services, now: datetime
) -> None:
    url = link(question(services, now))
    assert isinstance(services.clock, ManualClock)
    services.clock.advance(timedelta(seconds=tokens.CHECKIN_MAX_AGE + 60))
    for r in (client.get(url), client.post(url, data={"answer": "x", "nonce": "x"})):
        assert r.status_code == 410
        assert "expired" in r.text and "Call" in r.text and "911" in r.text
    assert inbound_rows(services) == []


@pytest.mark.parametrize("token", ["not-a-token", None])
def test_it_refuses_a_forged_link_with_403(
    client: TestClient, services: Services, now: datetime, token: str | None
) -> None:
    oid = question(services, now)
    forged = token or tokens.make_token("another-secret-0123456789", tokens.CHECKIN_SALT, {"o": oid})
    r = client.get(f"/c/{forged}")
    assert r.status_code == 403 and "not valid" in r.text and "911" in r.text


def test_it_refuses_a_token_made_for_another_purpose(
    client: TestClient, services: Services, now: datetime
) -> None:
    oid = question(services, now)
    alert_token = tokens.make_token(SECRET, tokens.ALERT_SALT, {"o": oid})
    assert client.get(f"/c/{alert_token}").status_code == 403


@pytest.mark.parametrize("case", ["missing", "garbage", "other_question"])
def test_it_refuses_a_post_without_this_forms_nonce(
    client: TestClient, services: Services, now: datetime, case: str
) -> None:
    oid, other = question(services, now), question(services, now)
    form_nonce = {"missing": "", "garbage": "abc.def", "other_question": nonce(client.get(link(other)).text)}[
        case
    ]
    r = client.post(link(oid), data={"answer": "fine", "nonce": form_nonce})
    assert r.status_code == 403 and inbound_rows(services) == []


def test_it_asks_for_an_answer_when_the_form_is_empty(
    client: TestClient, services: Services, now: datetime
) -> None:
    r = answer(client, link(question(services, now)), "   ")
    assert r.status_code == 400 and "Please write an answer" in r.text and inbound_rows(services) == []


def test_it_shows_the_follow_up_question_as_a_new_form_on_ambiguity(
    client: TestClient, services: Services, now: datetime
) -> None:
    oid = question(services, now, message="numbness_check", ask="numbness_check")
    r = answer(client, link(oid), "my leg feels weird")
    assert r.status_code == 200 and "new or worse" in r.text
    follow_url = re.search(r'action="(/c/[^"]+)"', r.text)
    assert follow_url and follow_url.group(1) != link(oid)
    r2 = client.post(follow_url.group(1), data={"answer": "it is new since surgery", "nonce": nonce(r.text)})
    assert r2.status_code == 200 and "<textarea" not in r2.text
    with services.sessions() as s:
        assert s.scalar(select(func.count()).select_from(InboundMessage)) == 2
        assert (
            s.scalar(
                select(func.count()).select_from(OutboxMessage).where(OutboxMessage.answered_at.is_not(None))
            )
            == 2
        )


def test_it_never_echoes_the_patients_text_into_the_page(
    client: TestClient, services: Services, now: datetime
) -> None:
    r = answer(client, link(question(services, now)), "<script>alert(1)</script>{{7*7}}")
    assert "<script>alert" not in r.text and "49" not in r.text
    assert inbound_rows(services)[0].body == "<script>alert(1)</script>{{7*7}}"


def test_it_refuses_a_json_post_with_415(client: TestClient, services: Services, now: datetime) -> None:
    r = client.post(link(question(services, now)), json={"answer": "fine"})
    assert r.status_code == 415 and inbound_rows(services) == []
