"""Staff sign-in: the form, cookies, throttling, second factor, idle timeout, revocation, and
the one-time set-password link. Every refusal is audited."""

from __future__ import annotations

from datetime import timedelta

from fastapi.testclient import TestClient
from sqlalchemy import select

from checkin.app.bootstrap import Services
from checkin.staff import accounts, passwords
from checkin.store.models import SignInAttempt, Staff, StaffSession
from tests.console.support import PASSWORD, add_staff, audit_rows, hidden, sign_in

NURSE = "dana@example.org"


def test_the_sign_in_page_has_labelled_fields_and_a_sign_in_button(client: TestClient) -> None:
    html = client.get("/login").text
    assert '<label for="email">Email</label>' in html and 'id="email"' in html
    assert '<label for="password">Password</label>' in html and 'type="password"' in html
    assert ">Sign in</button>" in html


def test_it_signs_in_with_a_session_cookie_that_scripts_and_other_sites_cannot_use(
    services: Services, client: TestClient
) -> None:
    add_staff(services, NURSE)
    done = sign_in(client, NURSE)
    assert done.status_code == 303 and done.headers["location"] == "/console"
    cookie = done.headers["set-cookie"].lower()
    assert "checkin_session=" in cookie
    assert "httponly" in cookie and "secure" in cookie and "samesite=lax" in cookie
    assert "max-age" not in cookie and "expires" not in cookie  # gone with the browser
    page = client.get("/console")
    assert page.status_code == 200 and "Worklist" in page.text
    with services.sessions() as s:
        (row,) = s.scalars(select(StaffSession)).all()
    token = client.cookies.get("checkin_session")
    assert token and row.id != token and len(row.id) == 64  # only a hash is stored
    assert [e.actor for e in audit_rows(services, "staff.signed_in")] == [NURSE]


def test_it_sends_a_visitor_without_a_session_to_sign_in_and_back(
    services: Services, client: TestClient
) -> None:
    page = client.get("/console/patients/P-X", follow_redirects=False)
    assert page.status_code == 303 and page.headers["location"] == "/login?next=/console/patients/P-X"
    add_staff(services, NURSE)
    done = sign_in(client, NURSE, next="/console/patients/P-X")
    assert done.headers["location"] == "/console/patients/P-X"
    # never an open redirect
    assert sign_in(client, NURSE, next="https://evil.example/").headers["location"] == "/console"


def test_a_wrong_password_is_refused_audited_and_throttled_after_five(
    services: Services, client: TestClient
) -> None:
    add_staff(services, NURSE)
    for _ in range(5):
        bad = sign_in(client, NURSE, password="wrong password here")
        assert bad.status_code == 401 and "not accepted" in bad.text
        assert "checkin_session" not in bad.headers.get("set-cookie", "")
    blocked = sign_in(client, NURSE)  # the right password, but too late
    assert blocked.status_code == 429 and "Too many attempts" in blocked.text
    assert [e.detail["reason"] for e in audit_rows(services, "staff.sign_in_refused")] == ["password"] * 5 + [
        "throttled"
    ]
    services.clock.advance(timedelta(minutes=16))  # type: ignore[attr-defined]
    assert sign_in(client, NURSE).status_code == 303


def test_an_unknown_email_gets_the_same_answer_as_a_wrong_password(
    services: Services, client: TestClient
) -> None:
    add_staff(services, NURSE)
    unknown = sign_in(client, "nobody@example.org")
    wrong = sign_in(client, NURSE, password="wrong password here")
    assert unknown.status_code == wrong.status_code == 401
    assert "not accepted" in unknown.text and "not accepted" in wrong.text
    with services.sessions() as s:
        reasons = [a.reason for a in s.scalars(select(SignInAttempt).order_by(SignInAttempt.id))]
    assert reasons == ["unknown", "password"]


def test_an_admin_needs_a_totp_code_and_a_wrong_one_is_refused(
    services: Services, client: TestClient
) -> None:
    add_staff(services, "ada@example.org", role="admin")
    with services.sessions() as s:
        secret = s.scalars(select(Staff.totp_secret).where(Staff.email == "ada@example.org")).one()
    assert secret
    now = services.clock.now()
    assert sign_in(client, "ada@example.org").status_code == 401  # no code
    wrong = str((int(passwords.totp_now(secret, now)) + 1) % 1_000_000).zfill(6)
    assert sign_in(client, "ada@example.org", code=wrong).status_code == 401
    refused = audit_rows(services, "staff.sign_in_refused")
    assert [(e.detail["reason"], e.detail["method"]) for e in refused] == [("totp", "password")] * 2
    assert sign_in(client, "ada@example.org", code=passwords.totp_now(secret, now)).status_code == 303


def test_a_nurse_on_the_admin_page_is_refused_and_audited(services: Services, client: TestClient) -> None:
    add_staff(services, NURSE)
    sign_in(client, NURSE)
    page = client.get("/console/admin")
    assert page.status_code == 403 and NURSE not in page.text.split("<main")[1]
    assert [e.actor for e in audit_rows(services, "staff.forbidden")] == [NURSE]


def test_an_idle_session_expires_and_redirects_to_sign_in(services: Services, client: TestClient) -> None:
    add_staff(services, NURSE)
    sign_in(client, NURSE)
    services.clock.advance(timedelta(minutes=14))  # type: ignore[attr-defined]
    assert client.get("/console").status_code == 200  # activity keeps it alive
    services.clock.advance(timedelta(minutes=16))  # type: ignore[attr-defined]
    gone = client.get("/console", follow_redirects=False)
    assert gone.status_code == 303 and gone.headers["location"].startswith("/login?next=/console&expired=1")
    poll = client.get("/console/worklist-fragment", headers={"X-Console-Poll": "1"})
    assert poll.status_code == 401


def test_a_disabled_accounts_live_session_is_refused_at_once(services: Services, client: TestClient) -> None:
    add_staff(services, NURSE)
    sign_in(client, NURSE)
    assert client.get("/console").status_code == 200
    with services.sessions.begin() as s:
        assert accounts.disable(s, NURSE, now=services.clock.now(), actor="cli:root") == 1
    assert client.get("/console", follow_redirects=False).status_code == 303
    assert [(e.actor, e.detail["reason"]) for e in audit_rows(services, "staff.session_refused")] == [
        (NURSE, "disabled")
    ]
    assert sign_in(client, NURSE).status_code == 401
    assert [e.detail["reason"] for e in audit_rows(services, "staff.sign_in_refused")] == ["disabled"]


def test_a_session_whose_account_was_disabled_in_sql_is_refused_and_audited(
    services: Services, client: TestClient
) -> None:
    add_staff(services, NURSE)
    sign_in(client, NURSE)
    with services.sessions.begin() as s:  # disabled without revoking (an admin's SQL, say)
        s.scalars(select(Staff)).one().active = False
    assert client.get("/console", follow_redirects=False).status_code == 303
    assert [e.detail["reason"] for e in audit_rows(services, "staff.session_refused")] == ["disabled"]


def test_sign_out_needs_csrf_and_ends_the_session_on_the_server(
    services: Services, client: TestClient
) -> None:
    add_staff(services, NURSE)
    sign_in(client, NURSE)
    token = client.cookies.get("checkin_session")
    page = client.get("/console").text
    assert client.post("/logout", data={"csrf": ""}).status_code == 403
    out = client.post("/logout", data={"csrf": hidden(page)}, follow_redirects=False)
    assert out.status_code == 303 and out.headers["location"] == "/login?bye=1"
    client.cookies.set("checkin_session", token or "", domain="checkin.example.org")  # a copied cookie
    assert client.get("/console", follow_redirects=False).status_code == 303


def test_the_set_password_link_works_once(services: Services, client: TestClient) -> None:
    with services.sessions.begin() as s:
        added = accounts.add(
            s,
            email="New@Example.org",
            name="New",
            role="nurse",
            team="spine",
            now=services.clock.now(),
            secret_key=services.settings.secret_key,
            actor="test",
        )
    assert added.setup_token and added.email == "new@example.org"
    url = f"/set-password/{added.setup_token}"
    form = client.get(url)
    assert form.status_code == 200
    short = client.post(url, data={"csrf": hidden(form.text), "password": "short", "repeat": "short"})
    assert short.status_code == 400 and "at least 12" in short.text
    ok = client.post(url, data={"csrf": hidden(form.text), "password": PASSWORD, "repeat": PASSWORD})
    assert ok.status_code == 200 and "password is set" in ok.text
    assert client.get(url).status_code == 410
    assert sign_in(client, "NEW@example.org").status_code == 303


def test_a_post_without_the_sign_in_forms_token_is_refused(services: Services, client: TestClient) -> None:
    add_staff(services, NURSE)
    refused = client.post("/login", data={"email": NURSE, "password": PASSWORD}, follow_redirects=False)
    assert refused.status_code == 403 and "checkin_session" not in refused.headers.get("set-cookie", "")
