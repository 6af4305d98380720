"""The emailed alert link (``/a/{token}``): holding it no longer shows anything about the
patient. A valid token redirects to the console, which asks for sign-in and then opens the
patient's page; forged and expired tokens are refused; GET changes nothing; the old bearer
POST actions are gone; actions are attributed to the signed-in nurse, not the link's addressee."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from checkin.app.bootstrap import Services
from checkin.app.web import create_app
from checkin.store.models import Alert, AuditEvent, OutboxMessage
from checkin.tokens import ALERT_MAX_AGE, make_token
from tests.alerts.support import NURSES, SECRET, add_patient, alerts, audit, reply, staff_rows
from tests.console.support import add_staff, hidden, sign_in

FEVER = "I have a fever of 102 since last night"


@pytest.fixture
def client(services: Services) -> Iterator[TestClient]:
    with TestClient(create_app(services), base_url="https://checkin.example.org") as c:
        yield c


def link_of(services: Services, recipient: str = NURSES[0]) -> str:
    row = next(r for r in staff_rows(services) if r.recipient == recipient)
    match = re.search(r"https://checkin\.example\.org(/a/[\w.\-]+)", row.body or "")
    assert match
    return match.group(1)


def snapshot(services: Services) -> tuple[Any, ...]:
    with services.sessions() as s:
        a = s.scalars(select(Alert)).one()
        rows = tuple((r.key, r.status) for r in s.scalars(select(OutboxMessage)))
        n_audit = len(s.scalars(select(AuditEvent.id)).all())
        return (
            a.status,
            a.escalation_level,
            a.next_escalation_at,
            a.acknowledged_at,
            a.updated_at,
            rows,
            n_audit,
        )


@pytest.fixture
def opened(services: Services) -> str:
    _, _, phone = add_patient(services, first_name="Zelda")
    reply(services, phone, FEVER + " <b>bold</b>")
    return link_of(services)


def test_the_link_shows_nothing_and_changes_nothing_without_sign_in(
    services: Services, client: TestClient, opened: str
) -> None:
    before = snapshot(services)
    pages = [client.get(opened) for _ in range(3)]  # a mail scanner, a preview pane, the nurse
    alert_id = alerts(services)[0].id
    assert {p.status_code for p in pages} == {200}
    assert all(p.url.path == "/login" for p in pages)  # followed: link -> console alert -> sign-in
    for p in pages:
        # The sign-in form's random CSRF value may contain "102" by chance: not the reply's.
        shown = p.text.replace(hidden(p.text), "")
        assert "Zelda" not in shown and "fever" not in shown.lower() and "102" not in shown
    hop = client.get(opened, follow_redirects=False)
    assert hop.status_code == 303 and hop.headers["location"] == f"/console/alerts/{alert_id}"
    assert hop.headers["cache-control"] == "no-store" and hop.headers["referrer-policy"] == "no-referrer"
    assert snapshot(services) == before


def test_after_sign_in_the_link_opens_the_patients_page(
    services: Services, client: TestClient, opened: str
) -> None:
    add_staff(services, NURSES[1])
    first = client.get(opened)
    assert first.url.path == "/login"
    done = client.post(
        "/login",
        data={
            "csrf": hidden(first.text),
            "email": NURSES[1],
            "password": "correct horse battery staple",
            "code": "",
            "next": hidden(first.text, "next"),
        },
    )
    assert done.url.path.startswith("/console/patients/P-A")
    assert "Zelda" in done.text and "&lt;b&gt;bold&lt;/b&gt;" in done.text and "<b>bold" not in done.text


def test_the_old_bearer_actions_are_gone(services: Services, client: TestClient, opened: str) -> None:
    before = snapshot(services)
    assert client.post(opened + "/ack", data={"csrf": "x", "alert": "1"}).status_code in (404, 405)
    assert client.post(opened + "/resolve", data={"csrf": "x", "note": "n"}).status_code in (404, 405)
    assert snapshot(services) == before


def test_it_refuses_a_forged_or_expired_token(services: Services, client: TestClient, opened: str) -> None:
    token = opened.removeprefix("/a/")
    forged = token[:-2] + ("AA" if token[-2:] != "AA" else "BB")
    assert client.get(f"/a/{forged}").status_code == 403
    other_salt = make_token(SECRET, "checkin.email-checkin", {"a": 1, "r": NURSES[0]})
    assert client.get(f"/a/{other_salt}").status_code == 403
    services.clock.advance(timedelta(seconds=ALERT_MAX_AGE + 1))  # type: ignore[attr-defined]
    expired = client.get(opened)
    assert expired.status_code == 410 and "expired" in expired.text and "Zelda" not in expired.text
    assert alerts(services)[0].status == "open"


def test_the_ack_is_attributed_to_the_signed_in_nurse_not_the_links_addressee(
    services: Services, client: TestClient, opened: str
) -> None:
    add_staff(services, NURSES[1])
    sign_in(client, NURSES[1])
    page = client.get(link_of(services, NURSES[0]))  # a colleague's email, forwarded
    alert_id = alerts(services)[0].id
    done = client.post(
        page.url.path + "/ack",
        data={"csrf": hidden(page.text), "alert": str(alert_id)},
        follow_redirects=False,
    )
    assert done.status_code == 303 and done.headers["location"].endswith("?done=acknowledged")
    assert alerts(services)[0].acknowledged_by == NURSES[1]
    assert [e.actor for e in audit(services, "alert.acknowledged")] == [NURSES[1]]
