from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any, Self

import pytest
import uvicorn
from fastapi.testclient import TestClient

from checkin.app.web import create_app
from checkin.deps import Services
from tests.inbound.support import services_for
from tests.support import free_port


@pytest.fixture
def services(db_url: str) -> Iterator[Services]:
    s = services_for(db_url)
    yield s
    s.engine.dispose()


@pytest.fixture
def app(services: Services) -> Any:
    return create_app(services)


@pytest.fixture
def client(app: Any) -> Iterator[TestClient]:
    # base_url: what the app sees is the proxy's internal address, never the public URL.
    with TestClient(app, base_url="http://10.0.0.5:8000") as c:
        yield c


class LiveServer:
    """The app under a real uvicorn on 127.0.0.1, in a thread (for concurrency tests)."""

    def __init__(self, app: Any) -> None:
        self.port = free_port()
        config = uvicorn.Config(
            app,
            host="127.0.0.1",
            port=self.port,
            log_config=None,
            access_log=False,
            proxy_headers=False,
            lifespan="off",
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> Self:
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.01)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


@pytest.fixture
def live_server(app: Any) -> Iterator[LiveServer]:
    with LiveServer(app) as server:
        yield server
