"""Operations endpoints and what every response passes through: /metrics behind its token and
cached, an access log without tokens or phone numbers, no redirect to the client's Host, and
no token stamped in the future."""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from checkin import tokens
from checkin.app.web import create_app
from checkin.app.web.hardening import own_hosts, relative
from checkin.app.web.metrics_cache import FiguresCache
from checkin.deps import Services
from checkin.store.status import Figures
from tests.inbound.support import NOW, SECRET

TOKEN = "metrics-" + "k3Yv9q" * 5


def client_for(services: Services, **settings: Any) -> TestClient:
    services.settings = services.settings.replace(**settings)
    return TestClient(create_app(services), base_url="http://10.0.0.5:8000")


@pytest.mark.parametrize("env", ["development", "production"])
def test_metrics_need_the_bearer_token_when_one_is_set(services: Services, env: str) -> None:
    client = client_for(services, metrics_token=TOKEN, env=env)
    assert client.get("/metrics").status_code == 401
    assert client.get("/metrics", headers={"Authorization": "Bearer wrong-" + TOKEN}).status_code == 401
    assert client.get("/metrics", headers={"Authorization": f"Basic {TOKEN}"}).status_code == 401
    ok = client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    assert ok.status_code == 200 and "checkin_oldest_due_message_age_seconds" in ok.text


def test_metrics_without_a_token_are_closed_in_production_only(services: Services) -> None:
    assert client_for(services, env="production").get("/metrics").status_code == 401
    assert client_for(services, env="development").get("/metrics").status_code == 200


def test_figures_are_computed_once_per_interval() -> None:
    calls: list[int] = []

    def compute() -> Figures:
        calls.append(1)
        return Figures()

    cache = FiguresCache(interval=3600)
    for _ in range(16):
        cache.get(compute)
    assert len(calls) == 1
    expired = FiguresCache(interval=0)
    expired.get(compute)
    expired.get(compute)
    assert len(calls) == 3


def test_the_access_log_names_routes_not_paths(client: TestClient, caplog: pytest.LogCaptureFixture) -> None:
    token = tokens.make_token(SECRET, tokens.CHECKIN_SALT, {"o": 1}, now=NOW)
    with caplog.at_level(logging.INFO, logger="checkin.access"):
        client.get(f"/c/{token}")
        client.get("/nowhere/+16175550142")
    lines = [r for r in caplog.records if r.name == "checkin.access"]
    assert [(r.route, r.method) for r in lines] == [("/c/{token}", "GET"), ("-", "GET")]  # type: ignore[attr-defined]
    logged = " ".join(str(vars(r)) for r in lines)
    assert token not in logged and "6175550142" not in logged


def test_no_redirect_is_built_from_the_host_header(client: TestClient) -> None:
    token = tokens.make_token(SECRET, tokens.ALERT_SALT, {"a": 1, "r": "n@hospital.test"}, now=NOW)
    r = client.get(f"/a/{token}/", headers={"Host": "evil.test"}, follow_redirects=False)
    assert 300 <= r.status_code < 400
    assert r.headers["location"] == f"/a/{token}"


@pytest.mark.parametrize(
    ("location", "kept"),
    [
        ("http://evil.test/a/x?y=1", "/a/x?y=1"),  # built from the client's Host: cut
        ("http://127.0.0.1:8000/console", "/console"),  # the server's own address: cut
        ("/console", "/console"),
        # Sent elsewhere on purpose (sign-in at the hospital's identity provider): kept whole.
        ("https://idp.hospital.test/authorize?state=s", "https://idp.hospital.test/authorize?state=s"),
    ],
)
def test_only_redirects_to_this_site_are_made_relative(location: str, kept: str) -> None:
    scope = {"headers": [(b"host", b"Evil.test")], "server": ("127.0.0.1", 8000)}
    assert relative(location, own_hosts(scope)) == kept


def test_a_token_from_the_future_is_refused(client: TestClient) -> None:
    future = tokens.make_token(SECRET, tokens.CHECKIN_SALT, {"o": 1}, now=NOW + timedelta(days=2))
    assert client.get(f"/c/{future}").status_code == 403
    with pytest.raises(tokens.InvalidToken) as e:
        tokens.read_token(SECRET, tokens.CHECKIN_SALT, future, 3600, now=NOW.timestamp())
    assert not e.value.expired
    skewed = tokens.make_token(SECRET, tokens.CHECKIN_SALT, {"o": 1}, now=NOW + timedelta(seconds=60))
    assert tokens.read_token(SECRET, tokens.CHECKIN_SALT, skewed, 3600, now=NOW.timestamp()) == {"o": 1}
