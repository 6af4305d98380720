"""Issue 5's end-to-end check on loopback: aiosmtpd as the SMTP server, the real web app under
uvicorn, the worker's own jobs on a controlled clock, a signed red-flag SMS in.

The alert email must arrive with the severity first, the reference and an acknowledgement
link; without an acknowledgement the ladder of the demo's care-team file (the shipped example) fires at 15 and 30
minutes; posting the acknowledgement stops it; a replayed webhook makes no second alert."""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select, update

from checkin.app.bootstrap import build_services
from checkin.app.worker import Tuning, make_scheduler
from checkin.channels.memory import MemoryChannel
from checkin.clock import ManualClock
from checkin.demo.mailcatcher import MailCatcher, free_port
from checkin.demo.patients import Persona
from checkin.demo.site import WebApp, demo_settings
from checkin.deps import Services
from checkin.enrollment.enroll import enroll, parse_request
from checkin.store.models import Alert, OutboxMessage
from tests.console.support import PASSWORD, add_staff, hidden

START = datetime(2026, 3, 10, 15, 0, tzinfo=UTC)  # 11:00 in New York
PATIENT = Persona("E2E-1", "Ana", "+16175550142", "lumbar-fusion")


@pytest.fixture
def world(tmp_path: Path) -> Iterator[dict[str, Any]]:
    from checkin.store.db import upgrade

    clock = ManualClock(START)
    with MailCatcher() as mail:
        port = free_port()
        settings = demo_settings(tmp_path, mail.port, port, sms_rate=1000)
        upgrade(settings.database_url)
        sms = MemoryChannel()
        services = build_services(settings, clock=clock, sms=sms)
        req = parse_request(
            {
                "mrn": PATIENT.mrn,
                "first_name": PATIENT.first_name,
                "phone": PATIENT.phone,
                "procedure": PATIENT.procedure,
                "surgery_date": "2026-03-05",
                "timezone": "America/New_York",
            },
            schedules=services.schedules,
            default_region="US",
            default_timezone="America/New_York",
        )
        with services.sessions.begin() as s:
            enroll(s, req, schedules=services.schedules, now=START - timedelta(days=10))
            # Today's daily check (day 1 after the assumed discharge on day 4) went out an hour
            # ago; the reply answers it.
            s.execute(
                update(OutboxMessage)
                .where(OutboxMessage.step_id == "daily-check", OutboxMessage.occurrence == 1)
                .values(status="sent", sent_at=START - timedelta(hours=1), provider_id="SMx")
            )
        jobs = [
            j.func
            for j in make_scheduler(
                services, worker_id="e2e", stop=threading.Event(), tuning=Tuning()
            ).get_jobs()
        ]
        with WebApp(services, port) as web:
            yield {"services": services, "clock": clock, "mail": mail, "sms": sms, "web": web, "jobs": jobs}
        services.engine.dispose()


def tick(world: dict[str, Any], at: datetime) -> None:
    """The worker's jobs at ``at`` and again one dispatch tick (1 s) later: a ladder step
    queued by the escalation job goes out on the next dispatch tick, as in the real worker."""
    for when in (at, at + timedelta(seconds=1)):
        world["clock"].set(when)
        for job in world["jobs"]:
            job()


def alert_emails(world: dict[str, Any]) -> list[Any]:
    # The worker's digest job also mails the team (once a day, from 07:00): not an alert.
    return [
        m
        for m in world["mail"].received
        if "nurse" in ",".join(m.to) and not m.subject.startswith("Daily digest")
    ]


def on_call_texts(world: dict[str, Any]) -> list[Any]:
    return [m for m in world["sms"].sent if m.to == "+15555550199"]


def test_it_emails_escalates_on_time_and_stops_when_acknowledged(world: dict[str, Any]) -> None:
    services: Services = world["services"]
    status, body = world["web"].post_sms(
        services.settings, PATIENT, "fever 102.5 and chills since noon", "SM" + "0" * 28 + "e2e1"
    )
    assert status == 200 and "nurse will call" in body

    tick(world, START)
    emails = alert_emails(world)
    assert len(emails) == 1
    subject = emails[0].subject
    assert subject.startswith("URGENT") and "Ana" not in subject
    with services.sessions() as s:
        alert = s.scalars(select(Alert)).one()
    text = emails[0].text()
    assert "fever 102.5 and chills since noon" in text and "+16175550142" in text
    link = re.search(r"(http://127\.0\.0\.1:\d+/a/\S+)", text)
    assert link is not None

    tick(world, START + timedelta(minutes=14))
    assert len(alert_emails(world)) == 1 and on_call_texts(world) == []
    tick(world, START + timedelta(minutes=15))
    assert len(alert_emails(world)) == 2  # step 2: the team again
    assert alert_emails(world)[1].subject.startswith("URGENT")
    tick(world, START + timedelta(minutes=30))
    assert len(on_call_texts(world)) == 1  # step 3: the on-call nurse's phone

    add_staff(services, "spine-nurses@example.org")
    with httpx.Client(follow_redirects=True, timeout=10) as browser:
        login = browser.get(link.group(1))  # the link leads to sign-in, then to the patient
        assert login.url.path == "/login" and "Ana" not in login.text
        page = browser.post(
            str(login.url.copy_with(query=None)),
            data={
                "csrf": hidden(login.text),
                "next": hidden(login.text, "next"),
                "email": "spine-nurses@example.org",
                "password": PASSWORD,
                "code": "",
            },
        )
        assert page.url.path.startswith("/console/patients/") and "Acknowledge" in page.text
        done = browser.post(
            str(page.url.copy_with(query=None, fragment=None)) + "/ack",
            data={"csrf": hidden(page.text), "alert": str(alert.id)},
            follow_redirects=False,
        )
        assert done.status_code == 303

    tick(world, START + timedelta(minutes=90))
    tick(world, START + timedelta(hours=5))
    assert len(alert_emails(world)) == 2 and len(on_call_texts(world)) == 1
    with services.sessions() as s:
        acked = s.get(Alert, alert.id)
        assert acked is not None and acked.status == "acknowledged"
        assert acked.acknowledged_by == "spine-nurses@example.org"


def test_it_refuses_an_acknowledgement_without_the_page_s_csrf_value(world: dict[str, Any]) -> None:
    services: Services = world["services"]
    world["web"].post_sms(services.settings, PATIENT, "my incision is leaking pus", "SM" + "0" * 28 + "e2e2")
    tick(world, START)
    link = re.search(r"(http://127\.0\.0\.1:\d+/a/\S+)", alert_emails(world)[0].text())
    assert link is not None
    with services.sessions() as s:
        alert_id = s.scalars(select(Alert.id)).one()
    forged = httpx.post(link.group(1) + "/ack", data={"csrf": "x", "alert": str(alert_id)}, timeout=10)
    assert forged.status_code == 404  # the link itself can no longer act
    with httpx.Client(timeout=10) as browser:
        base = link.group(1).split("/a/")[0]
        ref = browser.get(link.group(1), follow_redirects=False)
        assert ref.status_code == 303
        no_session = browser.post(
            f"{base}/console/patients/X/ack", data={"csrf": "x", "alert": str(alert_id)}
        )
        assert no_session.status_code == 303 and no_session.headers["location"].startswith("/login")
    with services.sessions() as s:
        assert s.get(Alert, alert_id).status == "open"  # type: ignore[union-attr]


def test_it_makes_no_second_alert_for_a_replayed_webhook(world: dict[str, Any]) -> None:
    services: Services = world["services"]
    for _ in range(3):
        status, _ = world["web"].post_sms(
            services.settings, PATIENT, "chest pain, can't breathe", "SM" + "0" * 28 + "e2e3"
        )
        assert status == 200
    tick(world, START)
    with services.sessions() as s:
        assert s.scalar(select(func.count()).select_from(Alert)) == 1
    assert len(alert_emails(world)) == 1
    assert alert_emails(world)[0].subject.startswith("EMERGENCY")
    assert len(on_call_texts(world)) == 1  # emergency: the on-call phone at once
