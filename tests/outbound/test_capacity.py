"""capacity_report: the busiest minutes ahead and whether CHECKIN_SMS_RATE carries them."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy.orm import Session

from checkin.deps import Services
from checkin.outbound.capacity import Minute, capacity_report, needed_rate, replay
from tests.outbound.support import NOW, add_many


def report(services: Services, rate: float, days: int = 2) -> list[str]:
    settings = services.settings.replace(sms_rate=rate)
    with Session(services.engine) as session:
        return capacity_report(session, settings, now=NOW, days=days)


def test_it_says_ok_when_the_rate_carries_every_minute(services: Services) -> None:
    add_many(services, 120, due=lambda i: NOW + timedelta(hours=1))
    add_many(services, 30, due=lambda i: NOW + timedelta(hours=1, minutes=1), channel="email")
    lines = report(services, 1.0)
    assert lines[0].endswith(": 120 SMS, 30 email")
    assert any(line.startswith("  2026-03-01 16:00") and " 120 " in line for line in lines)
    assert lines[-1].startswith("Verdict: OK: 1 msg/s")
    assert "last out 1m59s later" in lines[-1]


def test_it_says_too_slow_and_names_the_rate_needed(services: Services) -> None:
    # 3,000 check-ins at 10:00 that expire at 10:30: 1 msg/s needs 50 minutes.
    add_many(
        services,
        3000,
        due=lambda i: NOW + timedelta(days=1),
        expires=lambda i: NOW + timedelta(days=1, minutes=30),
    )
    lines = report(services, 1.0)
    verdict = lines[-1]
    assert verdict.startswith("Verdict: TOO SLOW: at 1 msg/s, 1 minute(s) holding 3,000 SMS")
    assert "at least 1.67" in verdict
    assert "EXPIRES FIRST" in "\n".join(lines)
    assert report(services, 1.7)[-1].startswith("Verdict: OK")


def test_it_spills_a_busy_minutes_backlog_into_the_next() -> None:
    at = NOW
    load = [
        Minute(at, 90, at + timedelta(hours=1)),
        Minute(at + timedelta(minutes=1), 30, at + timedelta(minutes=2)),
    ]
    first, second = replay(load, 1.0)
    assert first.last_out == at + timedelta(seconds=89)
    assert second.last_out == at + timedelta(seconds=119)  # waited for the first minute's tail
    assert second.ok
    assert needed_rate(load) <= 1.0
