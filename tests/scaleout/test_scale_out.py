"""Scale-out on one PostgreSQL: 3 `checkin worker` and 2 `checkin web` processes.

Patients are enrolled so that their welcome messages fall due together; replies are sent as
signed webhooks, concurrently, to both web processes, with some replayed to the other process;
one worker is killed with SIGKILL midway. Every message must reach the Twilio fake exactly
once, and every reply must make exactly one assessment (and one alert per red-flag patient).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select
from twilio.request_validator import RequestValidator

from checkin.enrollment.enroll import enroll_many, parse_request
from checkin.store.models import Alert, InboundMessage, OutboxMessage, Patient, Worker
from tests.outbound.support import (
    AUTH_TOKEN,
    ROOT,
    HoldingTwilio,
    WorkerProcess,
    make_services,
    settings_env,
    start_worker,
    twilio_env,
    wait_for,
)
from tests.support import free_port

pytestmark = [pytest.mark.slow, pytest.mark.postgres]
PUBLIC_URL = "https://checkin.example.org"
PATIENTS = 120


def zone_in_window() -> str:
    """A place zone where it is about noon now, so catch-up messages are due at once
    (enrollment refuses fixed-offset zones such as Etc/GMT+2)."""
    from zoneinfo import ZoneInfo, available_timezones

    from checkin.core.zones import zone_problem

    now = datetime.now(UTC)
    return next(
        z
        for z in sorted(available_timezones())
        if 11 <= now.astimezone(ZoneInfo(z)).hour <= 13 and zone_problem(z) is None
    )


@pytest.fixture
def fake() -> Iterator[HoldingTwilio]:
    with HoldingTwilio() as f:
        yield f


@pytest.fixture
def procs() -> Iterator[list[subprocess.Popen[bytes]]]:
    started: list[subprocess.Popen[bytes]] = []
    yield started
    for p in started:
        if p.poll() is None:
            p.kill()
        p.wait(10)


def start_web(env: dict[str, str], port: int, log: Path) -> subprocess.Popen[bytes]:
    full = {k: v for k, v in os.environ.items() if not k.startswith(("CHECKIN_", "TWILIO_"))}
    full.update(env)
    handle = log.open("ab")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "checkin",
            "--env-file",
            str(log.with_suffix(".none")),
            "web",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
        ],
        cwd=ROOT,
        env=full,
        stdout=handle,
        stderr=subprocess.STDOUT,
    )
    handle.close()
    return proc


def ready(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=2) as r:
            return r.status == 200
    except (urllib.error.URLError, OSError):
        return False


def post_reply(port: int, phone: str, body: str, sid: str) -> int:
    path = "/webhooks/twilio/sms"
    params = {
        "MessageSid": sid,
        "SmsSid": sid,
        "AccountSid": "AC" + "0123456789abcdef" * 2,
        "From": phone,
        "To": "+15005550001",
        "Body": body,
    }
    signature = RequestValidator(AUTH_TOKEN).compute_signature(PUBLIC_URL + path, params)
    req = urllib.request.Request(
        f"http://127.0.0.1:{port}{path}",
        data=urllib.parse.urlencode(params).encode(),
        headers={"X-Twilio-Signature": signature, "Content-Type": "application/x-www-form-urlencoded"},
    )
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status
    except urllib.error.HTTPError as e:
        return e.code


def test_it_sends_every_message_once_and_assesses_every_reply_once_across_processes(
    pg_url: str, fake: HoldingTwilio, procs: list[subprocess.Popen[bytes]], tmp_path: Path
) -> None:
    local = make_services(pg_url)
    now = datetime.now(UTC)
    zone = zone_in_window()
    surgery = (now + timedelta(days=14)).date()
    reqs = [
        parse_request(
            {
                "mrn": f"SO{i:04d}",
                "first_name": "Pat",
                "phone": f"+1617555{i:04d}",
                "procedure": "lumbar-fusion",
                "surgery_date": surgery.isoformat(),
                "timezone": zone,
            },
            schedules=local.schedules,
            default_region="US",
            default_timezone=zone,
        )
        for i in range(PATIENTS)
    ]
    with local.sessions.begin() as s:
        enroll_many(s, reqs, schedules=local.schedules, now=now)
    with local.sessions() as s:
        due_now = list(
            s.scalars(select(OutboxMessage.id).where(OutboxMessage.due_at <= now + timedelta(minutes=1)))
        )
        phones = list(s.scalars(select(Patient.phone).order_by(Patient.mrn)))
    assert len(due_now) >= PATIENTS  # the catch-up welcome of every patient falls due together

    fake.latency = (0.0, 0.02)
    env = {
        **settings_env(
            pg_url, CHECKIN_SMS_RATE="1000", CHECKIN_PUBLIC_URL=PUBLIC_URL, CHECKIN_LOG_LEVEL="INFO"
        ),
        **twilio_env(fake.url, 5.0),
    }
    ports = [free_port(), free_port()]
    for n, port in enumerate(ports):
        procs.append(start_web(env, port, tmp_path / f"web{n}.log"))
    workers: list[WorkerProcess] = [
        start_worker(env, tmp_path / f"w{n}.log", worker_id=f"w{n}") for n in range(3)
    ]
    procs.extend(w.proc for w in workers)
    wait_for(lambda: all(ready(p) for p in ports), timeout=60, what="two web processes")

    def registered() -> bool:
        with local.sessions() as s:
            return (s.scalar(select(func.count()).select_from(Worker)) or 0) == 3

    wait_for(registered, timeout=60, what="three workers")

    # Replies, concurrently, to both web processes; every fifth one replayed to the other.
    texts = ["doing fine", "pain is a 4", "fever 102.6 and chills", "no", "my incision is leaking pus"]
    replies = [(phones[i], texts[i % len(texts)], f"SM{i:032x}") for i in range(PATIENTS)]
    jobs = [(ports[i % 2], *r) for i, r in enumerate(replies)]
    jobs += [(ports[(i + 1) % 2], *replies[i]) for i in range(0, PATIENTS, 5)]
    killed = threading.Event()

    def kill_one_worker() -> None:
        wait_for(lambda: len(fake.creates()) >= 20, timeout=60, what="sends under way")
        workers[0].proc.send_signal(signal.SIGKILL)
        killed.set()

    killer = threading.Thread(target=kill_one_worker)
    killer.start()
    with ThreadPoolExecutor(max_workers=8) as pool:
        statuses = list(pool.map(lambda j: post_reply(*j), jobs))
    killer.join()
    assert killed.is_set()
    assert statuses.count(200) == len(jobs)

    def all_settled() -> bool:
        with local.sessions() as s:
            pending = s.scalar(
                select(func.count())
                .select_from(OutboxMessage)
                .where(OutboxMessage.id.in_(due_now), OutboxMessage.status != "sent")
            )
        return pending == 0

    wait_for(all_settled, timeout=90, what="every due message sent")
    for w in workers[1:]:
        w.proc.send_signal(signal.SIGTERM)
        assert w.proc.wait(30) == 0, w.output()[-2000:]

    per_outbox = fake.per_outbox()
    assert set(due_now) <= set(per_outbox)
    assert [oid for oid in due_now if per_outbox[oid] != 1] == []  # exactly once, despite SIGKILL
    with local.sessions() as s:
        inbound = s.execute(
            select(InboundMessage.message_sid, InboundMessage.processed_at, InboundMessage.severity)
        ).all()
        red_flag_patients = s.scalar(
            select(func.count(func.distinct(Alert.patient_id))).where(Alert.kind == "red_flag")
        )
        alerts = s.scalar(select(func.count()).select_from(Alert).where(Alert.kind == "red_flag"))
    assert sorted(sid for sid, _, _ in inbound) == sorted(sid for _, _, sid in replies)
    assert all(processed is not None and severity is not None for _, processed, severity in inbound)
    flagged = sum(1 for _, text, _ in replies if "fever" in text or "pus" in text)
    assert red_flag_patients == flagged and alerts == flagged  # one alert each, none doubled
    local.engine.dispose()
