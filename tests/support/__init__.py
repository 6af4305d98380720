"""The one cast and the builders every test folder shares.

One clock reading (``NOW``), one Twilio test account, one public URL and secret, settings from a
dict, services on a ``ManualClock`` with in-memory channels, a free loopback port. Folder
``support`` modules add only what their area needs (a Twilio fake with holds, signed webhook
requests, a care-team file) on top of these; ``conftest.py`` files turn them into fixtures.
"""

from __future__ import annotations

import socket
from datetime import UTC, date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from sqlalchemy.engine import Engine

from checkin.app.bootstrap import build_services
from checkin.channels import Channel
from checkin.channels.memory import MemoryChannel
from checkin.clock import ManualClock
from checkin.config import Settings
from checkin.core.schedule import Schedule
from checkin.deps import Services

ROOT = Path(__file__).resolve().parents[2]

NOW = datetime(2026, 3, 3, 15, 0, tzinfo=UTC)  # a Tuesday, 10:00 in New York: inside the send window

ACCOUNT_SID = "AC" + "0123456789abcdef" * 2
AUTH_TOKEN = "0f1e2d3c4b5a69788796a5b4c3d2e1f0"
PUBLIC_URL = "https://checkin.example.org"
SECRET = "test-secret-key-0123456789abcdef"
CLINIC_NAME = "Riverside Spine"
CLINIC_PHONE = "(555) 010-0199"


def make_settings(**env: str) -> Settings:
    """Settings from ``env`` over the repository's schedules and templates, New York time."""
    base = {
        "CHECKIN_SCHEDULES_DIR": str(ROOT / "schedules"),
        "CHECKIN_TEMPLATES_DIR": str(ROOT / "templates"),
        "CHECKIN_DEFAULT_TIMEZONE": "America/New_York",
    }
    base.update(env)
    return Settings.from_env(base)


def memory_services(
    settings: Settings,
    *,
    now: datetime = NOW,
    clock: ManualClock | None = None,
    sms: Channel | None = None,
    email: Channel | None = None,
    engine: Engine | None = None,
    schedules: dict[str, Schedule] | None = None,
) -> Services:
    """Services through the real composition root, on a ManualClock at ``now`` with in-memory
    channels (``SM…`` and ``EM…`` ids) unless given others."""
    clock = clock or ManualClock(now)
    return build_services(
        settings,
        clock=clock,
        sms=sms if sms is not None else MemoryChannel(clock, id_prefix="SM"),
        email=email if email is not None else MemoryChannel(clock, id_prefix="EM"),
        engine=engine,
        schedules=schedules,
    )


def zone_in_window() -> str:
    """An ``Etc/GMT`` zone where it is about noon now (``Etc/GMT-N`` is UTC+N): for tests
    that run real processes on the system clock and need the send window open."""
    offset = 12 - datetime.now(UTC).hour
    return "Etc/UTC" if offset == 0 else f"Etc/GMT{-offset:+d}"


def clinic_today(zone: str = "America/Chicago") -> date:
    """Today in ``zone`` (the CLI tests' CHECKIN_DEFAULT_TIMEZONE): the importer counts a surgery
    date's days in the patient's zone, which around midnight UTC is not the machine's date."""
    return datetime.now(ZoneInfo(zone)).date()


def free_port() -> int:
    """A loopback port nobody is listening on (for uvicorn, SMTP and Twilio fakes)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


__all__ = [
    "ACCOUNT_SID",
    "AUTH_TOKEN",
    "CLINIC_NAME",
    "CLINIC_PHONE",
    "NOW",
    "PUBLIC_URL",
    "ROOT",
    "SECRET",
    "free_port",
    "make_settings",
    "memory_services",
    "zone_in_window",
]
