"""The worklist: open alerts of the nurse's team, emergency first then oldest; the inbox of
replies that need a person; filters; the polled fragment; security headers."""

from __future__ import annotations

import re
from datetime import timedelta

from fastapi.testclient import TestClient

from checkin.app.bootstrap import Services
from checkin.app.web.console.headers import CSP
from tests.alerts.support import NOW, add_patient, reply
from tests.console.support import add_staff, ask, sign_in

NURSE = "dana@example.org"


def rows(html: str, table: str) -> list[str]:
    body = html.split(f'id="{table}"', 1)[1].split("</table>", 1)[0]
    return [
        re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", r.split(">", 1)[1])).strip()
        for r in body.split("<tr")[2:]
    ]


def test_emergencies_come_first_then_the_oldest(services: Services, client: TestClient) -> None:
    _, old_ref, old = add_patient(services, first_name="Olga")
    _, new_ref, new = add_patient(services, first_name="Nina")
    _, em_ref, em = add_patient(services, first_name="Emil")
    reply(services, old, "I have a fever of 102", at=NOW)
    reply(services, new, "fever 102.5 and chills", at=NOW + timedelta(minutes=5))
    reply(services, em, "I can't pee and I'm numb between my legs", at=NOW + timedelta(minutes=10))
    services.clock.advance(timedelta(minutes=20))  # type: ignore[attr-defined]
    add_staff(services, NURSE)
    sign_in(client, NURSE)
    listed = rows(client.get("/console").text, "alerts")
    assert [r.split()[0] for r in listed] == ["EMERGENCY", "URGENT", "URGENT"]
    assert [f"{em_ref} · Emil", f"{old_ref} · Olga", f"{new_ref} · Nina"] == [
        re.search(r"P-\S+ · \w+", r).group(0)
        for r in listed  # type: ignore[union-attr]
    ]
    assert "fever" in listed[1] and "20 min" in listed[1] and " 2 " in f" {listed[1]} "  # post-op day 2


def test_it_shows_only_the_nurses_team_and_filters(services: Services, client: TestClient) -> None:
    _, spine_ref, spine = add_patient(services, first_name="Sam")
    _, neuro_ref, neuro = add_patient(services, first_name="Ned", care_team="neuro")
    reply(services, spine, "I have a fever of 102")
    reply(services, neuro, "I have a fever of 102")
    add_staff(services, NURSE)
    sign_in(client, NURSE)
    html = client.get("/console").text
    assert spine_ref in html and neuro_ref not in html and "Ned" not in html
    assert neuro_ref not in client.get("/console?team=neuro").text  # a filter cannot widen the scope
    assert spine_ref not in client.get("/console?severity=emergency").text
    assert spine_ref in client.get("/console?who=unassigned").text
    assert spine_ref not in client.get("/console?who=mine").text


def test_the_inbox_holds_questions_and_watch_replies_not_plain_answers(
    services: Services, client: TestClient
) -> None:
    _, q_ref, q = add_patient(services, first_name="Quinn")
    ok_id, ok_ref, ok = add_patient(services, first_name="Otto")
    _, w_ref, w = add_patient(services, first_name="Walt")
    _, u_ref, u = add_patient(services, first_name="Uma")
    reply(services, q, "I ran out of my pain pills, can you refill?")
    ask(services, ok_id)
    reply(services, ok, "3")  # a plain answer to the question asked
    reply(services, w, "pain is about a 6 today")
    reply(services, u, "Thanks")  # answers nothing we asked
    add_staff(services, NURSE)
    sign_in(client, NURSE)
    inbox = rows(client.get("/console").text, "inbox")
    found = {re.search(r"P-\S+", r).group(0): r for r in inbox}  # type: ignore[union-attr]
    assert set(found) == {q_ref, w_ref, u_ref} and ok_ref not in found
    assert found[q_ref].startswith("question") and "refill?" in found[q_ref]
    assert found[w_ref].startswith("watch-level reply")
    assert found[u_ref].startswith("unexpected message")


def test_the_polled_fragment_shows_a_new_emergency(services: Services, client: TestClient) -> None:
    add_staff(services, NURSE)
    sign_in(client, NURSE)
    page = client.get("/console").text
    assert 'src="/console/static/console.js"' in page and 'data-refresh="15"' in page
    assert "No open alerts." in client.get("/console/worklist-fragment", headers={"X-Console-Poll": "1"}).text
    _, ref, phone = add_patient(services)
    reply(services, phone, "crushing chest pain and I can't breathe")
    fragment = client.get("/console/worklist-fragment", headers={"X-Console-Poll": "1"})
    assert fragment.status_code == 200 and "EMERGENCY" in fragment.text and ref in fragment.text


def test_every_page_carries_the_security_headers(services: Services, client: TestClient) -> None:
    add_staff(services, NURSE)
    pages = [client.get("/login")]
    sign_in(client, NURSE)
    pages += [client.get("/console"), client.get("/console/worklist-fragment"), client.get("/console/admin")]
    for page in pages:
        assert page.headers["content-security-policy"] == CSP
        assert "frame-ancestors 'none'" in CSP and "'unsafe-inline'" not in CSP
        assert page.headers["cache-control"] == "no-store"
        assert page.headers["x-frame-options"] == "DENY" and page.headers["referrer-policy"] == "no-referrer"
    for page in pages:
        assert "<script>" not in page.text and " on" + "click=" not in page.text
    js = client.get("/console/static/console.js")
    assert js.status_code == 200 and js.headers["content-type"].startswith("text/javascript")
    assert client.get("/console/static/../../app.py").status_code == 404
