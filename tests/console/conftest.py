from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from checkin.app.bootstrap import Services
from checkin.app.web import create_app
from tests.alerts.support import make_services
from tests.console.support import BASE


@pytest.fixture
def services(db_url: str, tmp_path: Path) -> Iterator[Services]:
    s = make_services(db_url, tmp_path)
    yield s
    s.engine.dispose()


@pytest.fixture
def client(services: Services) -> Iterator[TestClient]:
    # https, as in production: the session cookie is Secure.
    with TestClient(create_app(services), base_url=BASE) as c:
        yield c
