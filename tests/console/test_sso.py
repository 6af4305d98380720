"""Single sign-on through OpenID Connect against a local fake provider (tests/console/fake_oidc):
the flow with state, nonce and PKCE; only an existing active account gets in; an account that
needs a second factor needs one from the provider; tampered, replayed or foreign tokens, a wrong
state and half a configuration are refused, and every refusal is audited."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from fastapi.testclient import TestClient

from checkin.app.bootstrap import Services
from checkin.app.web import create_app
from checkin.config import ConfigError, Settings
from checkin.staff import accounts
from tests.alerts.support import make_services
from tests.console.fake_oidc import CLIENT_ID, CLIENT_SECRET, FakeOidc, Person
from tests.console.support import BASE, add_staff, audit_rows

NURSE = "dana@example.org"


@pytest.fixture
def provider(services_clock: Any) -> Iterator[FakeOidc]:
    with FakeOidc(now=services_clock) as fake:
        yield fake


@pytest.fixture
def services_clock() -> Any:
    from tests.alerts.support import NOW

    return lambda: NOW.timestamp()


@pytest.fixture
def sso(db_url: str, tmp_path: Path, provider: FakeOidc) -> Iterator[tuple[Services, TestClient]]:
    services = make_services(
        db_url,
        tmp_path,
        CHECKIN_OIDC_ISSUER=provider.issuer,
        CHECKIN_OIDC_CLIENT_ID=CLIENT_ID,
        CHECKIN_OIDC_CLIENT_SECRET=CLIENT_SECRET,
    )
    with TestClient(create_app(services), base_url=BASE) as client:
        yield services, client
    services.engine.dispose()


def round_trip(client: TestClient, next_path: str = "/console") -> httpx.Response:
    """The browser's trip: to the provider, (signed straight in there), back to the callback."""
    start = client.get(f"/login/sso?next={next_path}", follow_redirects=False)
    assert start.status_code == 303
    to_provider = start.headers["location"]
    q = parse_qs(urlsplit(to_provider).query)
    assert q["redirect_uri"] == [f"{BASE}/login/sso/callback"] and q["nonce"] and q["code_challenge"]
    back = httpx.get(to_provider, follow_redirects=False)  # the provider, as the browser sees it
    assert back.status_code == 302
    return client.get(back.headers["location"], follow_redirects=False)


def test_a_nurse_signs_in_through_the_provider_and_lands_where_she_was_going(
    sso: tuple[Services, TestClient], provider: FakeOidc
) -> None:
    services, client = sso
    add_staff(services, NURSE)
    assert 'href="/login/sso?next=' in client.get("/login").text
    provider.person = Person(NURSE.upper())  # providers may send any case
    done = round_trip(client, "/console?severity=urgent")
    assert done.status_code == 303 and done.headers["location"] == "/console?severity=urgent"
    assert client.get("/console").status_code == 200
    (event,) = audit_rows(services, "staff.signed_in")
    assert (event.actor, (event.detail or {}).get("method")) == (NURSE, "oidc")
    # The token endpoint saw the PKCE verifier and the code was single-use.
    assert provider.token_requests[0]["code_verifier"]


def test_no_account_no_entry_and_a_disabled_one_neither(
    sso: tuple[Services, TestClient], provider: FakeOidc
) -> None:
    services, client = sso
    provider.person = Person("stranger@example.org")
    assert round_trip(client).status_code == 401
    add_staff(services, NURSE)
    with services.sessions.begin() as s:
        accounts.disable(s, NURSE, now=services.clock.now(), actor="admin@example.org")
    provider.person = Person(NURSE)
    assert round_trip(client).status_code == 401
    assert client.get("/console", follow_redirects=False).status_code == 303  # to /login
    reasons = [(e.detail or {}).get("reason") for e in audit_rows(services, "staff.sign_in_refused")]
    assert reasons == ["unknown", "disabled"]


def test_an_admin_needs_the_providers_second_factor(
    sso: tuple[Services, TestClient], provider: FakeOidc
) -> None:
    services, client = sso
    add_staff(services, "ada@example.org", role="admin")
    provider.person = Person("ada@example.org", amr=["pwd"])
    assert round_trip(client).status_code == 401
    provider.person = Person("ada@example.org", amr=["pwd", "mfa"])
    assert round_trip(client).status_code == 303
    reasons = [(e.detail or {}).get("reason") for e in audit_rows(services, "staff.sign_in_refused")]
    assert reasons == ["sso_mfa_required"]


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"tamper": {"nonce": "not-the-one-we-sent"}}, "id_token_invalid_claim"),
        ({"tamper": {"aud": "another-app"}}, "id_token_audience"),
        ({"tamper": {"iss": "https://evil.example"}}, "id_token_invalid_claim"),
        ({"tamper": {"exp": 1}}, "id_token_expired_token"),
        ({"wrong_key": True}, "id_token_bad_signature"),
        ({"person": Person(NURSE, email_verified=False)}, "id_token_no_verified_email"),
    ],
)
def test_a_token_that_does_not_verify_is_refused_and_audited(
    sso: tuple[Services, TestClient], provider: FakeOidc, change: dict[str, Any], reason: str
) -> None:
    services, client = sso
    add_staff(services, NURSE)
    provider.person = Person(NURSE)
    for name, value in change.items():
        setattr(provider, name, value)
    assert round_trip(client).status_code == 400
    assert client.get("/console", follow_redirects=False).status_code == 303
    (event,) = audit_rows(services, "staff.sign_in_refused")
    assert (event.detail or {}).get("reason") == reason


def test_a_callback_with_a_wrong_state_or_replayed_is_refused(
    sso: tuple[Services, TestClient], provider: FakeOidc
) -> None:
    services, client = sso
    add_staff(services, NURSE)
    provider.person = Person(NURSE)

    def leave() -> str:
        start = client.get("/login/sso", follow_redirects=False)
        return str(httpx.get(start.headers["location"], follow_redirects=False).headers["location"])

    back = leave()
    assert client.get(back.replace("state=", "state=x"), follow_redirects=False).status_code == 400
    # A failed callback ends that attempt: its real callback does not work afterwards either.
    assert client.get(back, follow_redirects=False).status_code == 400
    back = leave()
    assert client.get(back, follow_redirects=False).status_code == 303
    # The same callback again (a replay from history or another tab): refused.
    assert client.get(back, follow_redirects=False).status_code == 400
    reasons = [(e.detail or {}).get("reason") for e in audit_rows(services, "staff.sign_in_refused")]
    assert reasons == ["sso_state"] * 3


def test_without_settings_there_is_no_single_sign_on(services: Services, client: TestClient) -> None:
    assert client.get("/login/sso", follow_redirects=False).status_code == 404
    assert "/login/sso" not in client.get("/login").text


def test_half_a_configuration_fails_closed() -> None:
    with pytest.raises(ConfigError, match="CHECKIN_OIDC_CLIENT_SECRET"):
        Settings.from_env({"CHECKIN_OIDC_ISSUER": "https://idp.example.org", "CHECKIN_OIDC_CLIENT_ID": "x"})
