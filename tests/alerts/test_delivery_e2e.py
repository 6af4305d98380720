"""End to end through the real pieces: a signed Twilio webhook with an emergency reply, the real
dispatcher (``checkin.outbound.dispatch.run_once``), a real SMTP server (aiosmtpd) that refuses the first
attempt with a 451, and a memory SMS channel: the team emails and the on-call page each arrive
exactly once, and a replayed webhook makes no second alert."""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from checkin.alerts.sweeps import escalate_once
from checkin.app.web import create_app
from checkin.channels.email import SmtpConfig, SmtpEmailChannel
from checkin.channels.memory import MemoryChannel
from checkin.deps import Services
from checkin.outbound.dispatch import run_once
from checkin.outbound.ratelimit import Pacer
from tests.alerts.support import (
    NOW,
    NURSES,
    ON_CALL_PHONE,
    add_patient,
    alerts,
    make_services,
    staff_rows,
)
from tests.inbound.support import ACCOUNT_SID, AUTH_TOKEN, OUR_NUMBER, signed_headers, sms_params
from tests.outbound.test_email_relay import Server

W = "worker-e2e"


@pytest.fixture
def smtp() -> Iterator[Server]:
    server = Server()
    server.start()
    yield server
    server.stop()


@pytest.fixture
def live(db_url: str, tmp_path: Path, smtp: Server) -> Iterator[Services]:
    channel = SmtpEmailChannel(
        SmtpConfig(host="127.0.0.1", port=smtp.port, tls="none", sender="alerts@hospital.example", timeout=2)
    )
    services = make_services(
        db_url,
        tmp_path,
        email=channel,
        TWILIO_ACCOUNT_SID=ACCOUNT_SID,
        TWILIO_AUTH_TOKEN=AUTH_TOKEN,
        TWILIO_FROM_NUMBER=OUR_NUMBER,
    )
    yield services
    services.engine.dispose()


def test_it_sends_the_team_email_and_the_on_call_page_exactly_once_despite_a_451(
    live: Services, smtp: Server
) -> None:
    _, ref, phone = add_patient(live)
    smtp.relay.refuse[NURSES[0]] = deque(["451 4.3.0 Try again later"])
    params = sms_params("I can't pee and my legs are numb", from_phone=phone)
    path = "/webhooks/twilio/sms"
    with TestClient(create_app(live), base_url="http://10.0.0.5:8000") as client:
        for _ in range(2):  # Twilio retried the webhook: the replay is answered, not processed
            assert client.post(path, data=params, headers=signed_headers(path, params)).status_code == 200
    assert len(alerts(live)) == 1
    assert staff_rows(live) == []  # composed by the worker, not inside the patient's webhook
    escalate_once(live, NOW)  # the first thing the worker's next dispatch tick does
    rows = {r.id: r for r in staff_rows(live)}
    assert len(rows) == len(NURSES) + 1

    pacer = Pacer.unlimited()
    now = NOW
    for _ in range(10):  # dispatch ticks, the escalation sweep in between, until nothing is due
        escalate_once(live, now)
        run_once(live, now, worker_id=W, pacer=pacer)
        pending = [r for r in staff_rows(live) if r.status == "pending"]
        if not pending:
            break
        now = max(now, *(r.next_attempt_at or now for r in pending))
        live.clock.set(now)  # type: ignore[attr-defined]
    for _ in range(3):
        run_once(live, now + timedelta(minutes=1), worker_id=W, pacer=pacer)

    final = staff_rows(live)
    assert {r.status for r in final} == {"sent"}
    retried = next(r for r in final if r.recipient == NURSES[0])
    assert retried.attempts == 2 and retried.last_error_code is None
    email_ids = {r.id for r in final if r.channel == "email"}
    assert smtp.relay.per_outbox() == dict.fromkeys(email_ids, 1)
    subjects = {str(m["Subject"]) for m in smtp.relay.received}
    assert subjects == {f"EMERGENCY: patient {ref} - red-flag reply"}
    for m in smtp.relay.received:
        assert m.get_content_type() == "multipart/alternative"
        assert "https://checkin.example.org/a/" in m.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert isinstance(live.sms, MemoryChannel)
    pages = [m for m in live.sms.sent if m.to == ON_CALL_PHONE]
    assert len(pages) == 1 and pages[0].text.startswith("Riverside Spine: EMERGENCY alert, patient " + ref)
    assert [m.to for m in live.sms.sent] == [ON_CALL_PHONE]  # nothing else texted (the reply was the TwiML)
