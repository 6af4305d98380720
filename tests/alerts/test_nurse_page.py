"""The nurse page: GET reads only; POSTs need the signed token, the CSRF cookie and the matching
form value; expired, forged and foreign tokens are refused; actions are idempotent and audited."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from checkin.app.web import create_app
from checkin.app.web.nurse import COOKIE
from checkin.deps import Services
from checkin.store.models import Alert, AuditEvent, OutboxMessage
from checkin.tokens import ALERT_MAX_AGE, ALERT_SALT, make_token
from tests.alerts.support import NOW, NURSES, SECRET, add_patient, alerts, audit, reply, staff_rows

FEVER = "I have a fever of 102 since last night"


@pytest.fixture
def client(services: Services) -> Iterator[TestClient]:
    # https: the CSRF cookie is Secure when CHECKIN_PUBLIC_URL is https, as in production.
    with TestClient(create_app(services), base_url="https://checkin.example.org") as c:
        yield c


def link_of(services: Services, recipient: str = NURSES[0]) -> str:
    row = next(r for r in staff_rows(services) if r.recipient == recipient)
    match = re.search(r"https://checkin\.example\.org(/a/[\w.\-]+)", row.body or "")
    assert match
    return match.group(1)


def form_of(html: str) -> dict[str, str]:
    return dict(re.findall(r'name="(csrf|alert)" value="([^"]*)"', html))


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


def test_it_shows_the_alert_on_get_and_changes_nothing(
    services: Services, client: TestClient, opened: str
) -> None:
    before = snapshot(services)
    pages = [client.get(opened) for _ in range(3)]  # a mail scanner, a preview pane, the nurse
    assert [p.status_code for p in pages] == [200, 200, 200]
    assert snapshot(services) == before
    page = pages[0]
    html = page.text
    title = re.search(r"<title>(.*)</title>", html)
    assert title and title.group(1).startswith("URGENT alert P-A") and "Zelda" not in html
    assert "&lt;b&gt;bold&lt;/b&gt;" in html and "<b>bold" not in html
    assert 'id="ack"' in html and 'name="viewport"' in html
    assert (
        page.headers["cache-control"] == "no-store"
        and "script-src" not in page.headers["content-security-policy"]
    )
    cookie = page.headers["set-cookie"].lower()
    assert (
        "httponly" in cookie and "samesite=strict" in cookie and "secure" in cookie and "path=/a/" in cookie
    )
    assert "set-cookie" not in pages[1].headers  # the nonce is reused: two alerts in two tabs both work


def test_it_acknowledges_on_post_and_a_second_post_is_harmless(
    services: Services, client: TestClient, opened: str
) -> None:
    form = form_of(client.get(opened).text)
    done = client.post(opened + "/ack", data=form, follow_redirects=False)
    assert done.status_code == 303 and done.headers["location"].endswith("?done=acknowledged")
    assert "Acknowledged. Escalation stopped." in client.get(done.headers["location"]).text
    again = client.post(opened + "/ack", data=form, follow_redirects=False)
    assert again.headers["location"].endswith("?done=already")
    (alert,) = alerts(services)
    assert (alert.status, alert.acknowledged_by) == ("acknowledged", NURSES[0])
    assert [(e.action, e.actor) for e in audit(services, "alert.ack")] == [
        ("alert.acknowledged", NURSES[0]),
        ("alert.ack_repeated", NURSES[0]),
    ]


def test_it_refuses_a_post_without_or_with_a_wrong_csrf_value(
    services: Services, client: TestClient, opened: str
) -> None:
    form = form_of(client.get(opened).text)
    before = snapshot(services)
    assert client.post(opened + "/ack", data={"alert": form["alert"]}).status_code == 403
    assert client.post(opened + "/ack", data={**form, "csrf": "0" * 64}).status_code == 403
    nonce = client.cookies.get(COOKIE)
    client.cookies.clear()  # the form value without the browser's cookie (a cross-site POST)
    assert client.post(opened + "/ack", data=form).status_code == 403
    client.cookies.set(COOKIE, "attacker-nonce", domain="checkin.example.org", path="/a/")
    assert client.post(opened + "/ack", data=form).status_code == 403
    assert nonce
    assert snapshot(services) == before


def test_it_refuses_a_forged_or_expired_token(services: Services, client: TestClient, opened: str) -> None:
    form = form_of(client.get(opened).text)
    token = opened.removeprefix("/a/")
    forged = token[:-2] + ("AA" if token[-2:] != "AA" else "BB")
    assert client.get(f"/a/{forged}").status_code == 403
    assert client.post(f"/a/{forged}/ack", data=form).status_code == 403
    other_salt = make_token(SECRET, "checkin.email-checkin", {"a": 1, "r": NURSES[0]})
    assert client.get(f"/a/{other_salt}").status_code == 403
    services.clock.advance(timedelta(seconds=ALERT_MAX_AGE + 1))  # type: ignore[attr-defined]
    expired = client.get(opened)
    assert expired.status_code == 410 and "expired" in expired.text
    assert client.post(opened + "/ack", data=form).status_code == 410
    assert alerts(services)[0].status == "open"


def test_it_refuses_a_form_from_one_alert_posted_with_another_alerts_token(
    services: Services, client: TestClient
) -> None:
    _, _, phone_a = add_patient(services)
    _, _, phone_b = add_patient(services)
    reply(services, phone_a, FEVER)
    link_a = link_of(services)
    reply(services, phone_b, FEVER)
    link_b = next(
        link_of_row
        for link_of_row in (
            re.search(r"(/a/[\w.\-]+)", r.body or "").group(1)  # type: ignore[union-attr]
            for r in staff_rows(services)
            if r.recipient == NURSES[0]
        )
        if link_of_row != link_a
    )
    form_a = form_of(client.get(link_a).text)
    assert client.post(link_b + "/ack", data=form_a).status_code == 403
    form_b = form_of(client.get(link_b).text)
    assert client.post(link_b + "/ack", data={**form_b, "alert": form_a["alert"]}).status_code == 403
    assert {a.status for a in alerts(services)} == {"open"}
    # A token can name only its own alert: a token for alert B with A's id in the form cannot act on A.
    token_for_b = make_token(SECRET, ALERT_SALT, {"a": int(form_b["alert"]), "r": NURSES[0]})
    assert client.post(f"/a/{token_for_b}/ack", data=form_a).status_code == 403


def test_it_resolves_with_a_note_and_refuses_an_empty_one(
    services: Services, client: TestClient, opened: str
) -> None:
    form = form_of(client.get(opened).text)
    empty = client.post(opened + "/resolve", data={**form, "note": "   "})
    assert empty.status_code == 400 and "short note" in empty.text
    assert alerts(services)[0].status == "open"
    done = client.post(
        opened + "/resolve",
        data={**form, "note": "Called back <ok>, antibiotics started."},
        follow_redirects=False,
    )
    assert done.status_code == 303
    page = client.get(done.headers["location"]).text
    assert "Called back &lt;ok&gt;, antibiotics started." in page and 'id="ack"' not in page
    (alert,) = alerts(services)
    assert (alert.status, alert.resolved_by) == ("resolved", NURSES[0])
    assert [e.actor for e in audit(services, "alert.resolved")] == [NURSES[0]]


def test_it_attributes_the_ack_to_the_nurse_the_link_was_sent_to(
    services: Services, client: TestClient, opened: str
) -> None:
    link = link_of(services, NURSES[1])
    client.post(link + "/ack", data=form_of(client.get(link).text))
    assert alerts(services)[0].acknowledged_by == NURSES[1]
    assert alerts(services)[0].acknowledged_at == NOW
