"""Helpers for the outbound tests and the dispatch benchmark: patients and outbox rows written
straight to the database, services on a ManualClock, a Twilio fake that can hold a request at
each point a worker might be killed, and worker subprocesses.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from checkin.clock import ManualClock
from checkin.config import Settings
from checkin.deps import Services
from checkin.store.models import Enrollment, OutboxMessage, Patient
from tests.channels.fake_twilio_server import Answer, FakeTwilio
from tests.support import ACCOUNT_SID, AUTH_TOKEN, PUBLIC_URL, ROOT, SECRET, memory_services, zone_in_window

# The outbound tests spell out dates and local times derived from this reading (capacity
# minutes, DST days, backlog windows), so they keep it rather than the shared tests.support.NOW.
NOW = datetime(2026, 3, 1, 15, 0, tzinfo=UTC)  # 10:00 in New York: inside the send window
FROM = "+15005550001"


def settings_env(db_url: str, **extra: str) -> dict[str, str]:
    env = {
        "CHECKIN_DATABASE_URL": db_url,
        "CHECKIN_SCHEDULES_DIR": str(ROOT / "schedules"),
        "CHECKIN_TEMPLATES_DIR": str(ROOT / "templates"),
        "CHECKIN_DEFAULT_TIMEZONE": "America/New_York",
        "CHECKIN_PUBLIC_URL": PUBLIC_URL,
        "CHECKIN_SECRET_KEY": SECRET,
    }
    env.update(extra)
    return env


def twilio_env(api_url: str, timeout: float = 2.0) -> dict[str, str]:
    return {
        "TWILIO_ACCOUNT_SID": ACCOUNT_SID,
        "TWILIO_AUTH_TOKEN": AUTH_TOKEN,
        "TWILIO_FROM_NUMBER": FROM,
        "CHECKIN_TWILIO_API_URL": api_url,
        "CHECKIN_TWILIO_TIMEOUT": str(timeout),
    }


def make_services(
    db_url: str, *, clock: ManualClock | None = None, sms: Any = None, email: Any = None, **env: str
) -> Services:
    """Services on ``db_url`` with a ManualClock at NOW and memory channels by default.

    The SMS rate defaults to 1000/s: the default pacer sleeps in real time while a ManualClock
    stands still, so tests about pacing pass their own ``Pacer`` with a clock-advancing sleep.
    """
    env.setdefault("CHECKIN_SMS_RATE", "1000")
    settings = Settings.from_env(settings_env(db_url, **env))
    return memory_services(settings, clock=clock or ManualClock(NOW), sms=sms, email=email)


# ---- data ----------------------------------------------------------------------------------

_counter = iter(range(1, 10**9))


def add_patient(
    session: Session,
    *,
    now: datetime = NOW,
    phone: str | None = None,
    email: str | None = None,
    language: str = "en",
    timezone: str = "America/New_York",
    procedure: str = "lumbar-fusion",
    **patient: Any,
) -> tuple[Patient, Enrollment]:
    """A patient with an active enrollment (not committed)."""
    n = next(_counter)
    p = Patient(
        reference=f"P-T{n:06d}",
        mrn=f"MRN{n}",
        first_name="Ana",
        phone=phone or f"+1617555{n % 10000:04d}",
        email=email,
        email_consent=email is not None,
        language=language,
        timezone=timezone,
        sms_opted_out=False,
        phone_status="ok",
        created_at=now,
        **patient,
    )
    session.add(p)
    session.flush()
    e = Enrollment(
        patient_id=p.id,
        procedure=procedure,
        schedule_version="test",
        surgery_date=date(2026, 2, 25),
        attributes=[],
        channel="sms",
        care_team=None,
        status="active",
        created_at=now,
    )
    session.add(e)
    session.flush()
    return p, e


def row_values(
    patient: Patient,
    enrollment: Enrollment | None,
    *,
    step: str = "wound-check",
    occurrence: int = 1,
    channel: str = "sms",
    message: str = "wound_check",
    ask: str | None = "wound_check",
    due: datetime = NOW,
    expires: datetime | None = None,
    now: datetime = NOW,
    **extra: Any,
) -> dict[str, Any]:
    eid = enrollment.id if enrollment is not None else "x"
    values: dict[str, Any] = {
        "key": f"{eid}:{step}:{occurrence}:{channel}",
        "enrollment_id": enrollment.id if enrollment else None,
        "patient_id": patient.id,
        "step_id": step,
        "occurrence": occurrence,
        "channel": channel,
        "message": message,
        "ask": ask,
        "urgent": False,
        "due_at": due,
        "expires_at": expires or due + timedelta(hours=6),
        "status": "pending",
        "attempts": 0,
        "created_at": now,
        "updated_at": now,
    }
    values.update(extra)
    return values


def add_row(session: Session, patient: Patient, enrollment: Enrollment | None, **kw: Any) -> OutboxMessage:
    row = OutboxMessage(**row_values(patient, enrollment, **kw))
    session.add(row)
    session.flush()
    return row


def add_many(
    services: Services,
    n: int,
    *,
    due: Callable[[int], datetime] = lambda i: NOW,
    expires: Callable[[int], datetime] | None = None,
    now: datetime = NOW,
    timezone: str = "America/New_York",
    channel: str = "sms",
) -> list[int]:
    """``n`` patients with one due row each, inserted in bulk; returns the row ids."""
    with services.sessions() as session, session.begin():
        start = next(_counter)
        for _ in range(n):
            next(_counter)
        patients = [
            {
                "reference": f"P-B{start + i:06d}",
                "mrn": f"BULK{start + i}",
                "first_name": "Ana",
                "phone": f"+1617{(start + i) % 10**7:07d}",
                "email": f"p{start + i}@example.org",
                "email_consent": True,
                "language": "en",
                "timezone": timezone,
                "sms_opted_out": False,
                "phone_status": "ok",
                "created_at": now,
            }
            for i in range(n)
        ]
        pids = list(
            session.scalars(insert(Patient).returning(Patient.id, sort_by_parameter_order=True), patients)
        )
        rows = []
        for i, pid in enumerate(pids):
            d = due(i)
            rows.append(
                {
                    "key": f"bulk:{pid}:{channel}",
                    "enrollment_id": None,
                    "patient_id": pid,
                    "step_id": "wound-check",
                    "occurrence": 1,
                    "channel": channel,
                    "message": "wound_check",
                    "ask": "wound_check",
                    "urgent": False,
                    "due_at": d,
                    "expires_at": expires(i) if expires else d + timedelta(hours=6),
                    "status": "pending",
                    "attempts": 0,
                    "created_at": now,
                    "updated_at": now,
                }
            )
        ids = list(
            session.scalars(
                insert(OutboxMessage).returning(OutboxMessage.id, sort_by_parameter_order=True), rows
            )
        )
    return ids


def add_due_now(services: Services, n: int) -> list[int]:
    """``n`` rows due a minute ago by the system clock, valid for six hours, for patients in
    a zone where the send window is open now: work for real worker processes."""
    now = datetime.now(UTC)
    return add_many(
        services,
        n,
        due=lambda i: now - timedelta(minutes=1),
        expires=lambda i: now + timedelta(hours=6),
        now=now,
        timezone=zone_in_window(),
    )


def statuses(services: Services) -> Counter[str]:
    with services.sessions() as session:
        return Counter(session.scalars(select(OutboxMessage.status)))


def get_row(services: Services, row_id: int) -> OutboxMessage:
    with services.sessions() as session:
        row = session.get(OutboxMessage, row_id)
        assert row is not None
        return row


# ---- a Twilio fake with holds --------------------------------------------------------------


class HoldingTwilio(FakeTwilio):
    """``FakeTwilio`` plus what the crash and concurrency tests need:

    - ``hold_before_accepting()``: the next create blocks *before* the fake records anything;
      ``release(created=False)`` then answers without creating (the request never took effect).
    - ``latency = (lo, hi)``: each create waits a random time first.
    - ``per_outbox()``: how many messages were created per outbox id (from StatusCallback).
    """

    def __init__(self, *, keep_alive: bool = False) -> None:
        super().__init__(keep_alive=keep_alive)
        self.latency: tuple[float, float] | None = None
        self.arrived = threading.Semaphore(0)  # one release per create request received
        self._hold = threading.Event()
        self._held = threading.Event()
        self._release = threading.Event()
        self._rng = random.Random(7)
        self._per_outbox: Counter[int] = Counter()

    def hold_before_accepting(self) -> None:
        self._release.clear()
        self._hold.set()

    def wait_held(self, timeout: float = 20) -> bool:
        return self._held.wait(timeout)

    def release(self) -> None:
        self._hold.clear()
        self._release.set()

    def _next_answer(self) -> Answer:
        self.arrived.release()
        if self._hold.is_set():
            self._held.set()
            self._release.wait(60)
            return Answer(created=False, status=503, body={"code": 20503, "message": "gone", "status": 503})
        if self.latency is not None:
            with self._lock:
                delay = self._rng.uniform(*self.latency)
            time.sleep(delay)
        return super()._next_answer()

    def _create(self, account: str, form: dict[str, str]) -> dict[str, Any]:
        message = super()._create(account, form)
        query = parse_qs(urlsplit(form.get("StatusCallback", "")).query)
        with self._lock:
            self._per_outbox[int(query.get("outbox", ["0"])[0])] += 1
        return message

    def per_outbox(self) -> Counter[int]:
        """Messages the fake created (Twilio "holds"), by the outbox id in their callback URL."""
        with self._lock:
            return Counter(self._per_outbox)


# ---- worker subprocesses -------------------------------------------------------------------

FAST_TUNING = {
    "dispatch_every": 0.2,
    "reconcile_every": 0.3,
    "heartbeat_every": 0.3,
    "expire_every": 5,
    "batch": 20,
    "concurrency": 2,
    "policy": {
        "lease": 1.5,
        "stale_after": 1.0,
        "settle": 0.0,
        "backoff_base": 0.2,
        "backoff_cap": 1.0,
        "orphan_after": 30.0,
    },
}


@dataclass
class WorkerProcess:
    proc: subprocess.Popen[bytes]
    log: Path

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""


def start_worker(
    env: dict[str, str],
    log: Path,
    *,
    tuning: dict[str, Any] | None = None,
    hook: str | None = None,
    worker_id: str | None = None,
) -> WorkerProcess:
    """``python -m tests.outbound.run_worker`` with ``env`` on top of a clean environment."""
    full = {k: v for k, v in os.environ.items() if not k.startswith(("CHECKIN_", "TWILIO_"))}
    full.update(env)
    full["OUTBOUND_TUNING"] = json.dumps(tuning or FAST_TUNING)
    if hook:
        full["OUTBOUND_HOOK"] = hook
    if worker_id:
        full["OUTBOUND_WORKER_ID"] = worker_id
    full["CHECKIN_LOG_LEVEL"] = full.get("CHECKIN_LOG_LEVEL", "INFO")
    handle = log.open("ab")
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.outbound.run_worker"],
        cwd=ROOT,
        env=full,
        stdout=handle,
        stderr=subprocess.STDOUT,
    )
    handle.close()
    return WorkerProcess(proc, log)


def wait_for(
    predicate: Callable[[], bool], timeout: float = 30, every: float = 0.05, what: str = "condition"
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def twilio_channel(api_url: str, *, timeout: float = 2.0) -> Any:
    """The real Twilio adapter pointed at a fake, with our status callback base."""
    from checkin.channels.sms import TwilioConfig, TwilioSmsChannel

    return TwilioSmsChannel(
        TwilioConfig(
            account_sid=ACCOUNT_SID,
            auth_token=AUTH_TOKEN,
            from_number=FROM,
            status_callback_base="https://checkin.example.org",
            api_base_url=api_url,
            timeout=timeout,
        )
    )
