"""Concurrency through a real uvicorn on 127.0.0.1: replays (R7) and SQLite write contention (R6b)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path

import httpx2
import pytest
from sqlalchemy import func, select, update

from checkin.app.web import create_app
from checkin.deps import Services
from checkin.store.db import upgrade
from checkin.store.models import Alert, AuditEvent, InboundMessage, OutboxMessage
from tests.inbound.support import (
    NOW,
    add_outbox,
    add_patient,
    services_for,
    signed_headers,
    sms_params,
)
from tests.web.conftest import LiveServer

PATH = "/webhooks/twilio/sms"
pytestmark = pytest.mark.slow


def test_it_stores_ten_concurrent_replays_once_with_one_alert(
    live_server: LiveServer, services: Services
) -> None:
    with services.sessions.begin() as s:
        add_outbox(s, add_patient(s), sent_at=NOW - timedelta(hours=1))
    params = sms_params("my incision is leaking pus and I have chills")
    headers = signed_headers(PATH, params)
    barrier = threading.Barrier(10)

    def send(_: int) -> httpx2.Response:
        with httpx2.Client(base_url=live_server.url, timeout=30) as c:
            barrier.wait()
            return c.post(PATH, data=params, headers=headers)

    with ThreadPoolExecutor(10) as pool:
        responses = list(pool.map(send, range(10)))
    assert [r.status_code for r in responses] == [200] * 10
    # Exactly one answer carries the reply; the replays get empty TwiML (no second text).
    assert sum("<Message>" in r.text for r in responses) == 1
    with services.sessions() as s:
        assert s.scalar(select(func.count()).select_from(InboundMessage)) == 1
        assert s.scalar(select(func.count()).select_from(Alert)) == 1
        assert (
            s.scalar(select(func.count()).select_from(AuditEvent).where(AuditEvent.action == "alert.opened"))
            == 1
        )


@pytest.fixture
def sqlite_services(tmp_path: Path) -> Iterator[Services]:
    url = f"sqlite:///{tmp_path / 'contention.db'}"
    upgrade(url)
    s = services_for(url)
    yield s
    s.engine.dispose()


def test_it_survives_sqlite_write_contention_without_500_or_loss(sqlite_services: Services) -> None:
    # R6b is about SQLite's single writer, so this runs on a SQLite file only.
    services = sqlite_services
    with services.sessions.begin() as s:
        p = add_patient(s)
        ids = [add_outbox(s, p, status="pending", due_at=NOW + timedelta(days=1 + i)).id for i in range(200)]
    stop = threading.Event()
    worker_updates = 0

    def worker() -> None:
        # The dispatcher's shape: many short write transactions claiming and updating rows.
        nonlocal worker_updates
        while not stop.is_set():
            for oid in ids:
                with services.sessions.begin() as s:
                    s.execute(
                        update(OutboxMessage)
                        .where(OutboxMessage.id == oid)
                        .values(attempts=OutboxMessage.attempts + 1, updated_at=NOW)
                    )
                worker_updates += 1
                if stop.is_set():
                    return

    sids = [f"SM{i:032x}" for i in range(50)]

    def send(sid: str) -> int:
        params = sms_params(f"doing fine {sid[-4:]}", sid=sid, from_phone="+12125550199")
        with httpx2.Client(base_url=live_server.url, timeout=60) as c:
            return c.post(PATH, data=params, headers=signed_headers(PATH, params)).status_code

    t = threading.Thread(target=worker)
    with LiveServer(create_app(services)) as live_server:
        t.start()
        try:
            with ThreadPoolExecutor(16) as pool:
                codes = list(pool.map(send, sids))
        finally:
            stop.set()
            t.join()
    assert codes == [200] * 50
    assert worker_updates > 0
    with services.sessions() as s:
        got = s.scalars(select(InboundMessage.message_sid)).all()
    assert sorted(got) == sorted(sids)
