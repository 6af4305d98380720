"""A production deployment that passes every safety verdict (``checkin.app.safety``).

Tests that need ``CHECKIN_ENV=production`` start from ``production_env`` and change one thing;
none of them weakens a check to get a process running. The schedules are the repository's,
copied with their clinical sign-off filled in (the shipped files leave it null on purpose).
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

from tests.support import ROOT

# 64 characters from the URL-safe alphabet: what `secrets.token_urlsafe(48)` prints.
STRONG_KEY = "q3Xv9LmZ2pR7tK1wB8nH4yC6dF0sJ5gA-_eUoViYrTqWxEzNaMbPcOlIkDjGhSfQ"
TWILIO_SID = "AC" + "0123456789abcdef" * 2
TWILIO_TOKEN = "0f1e2d3c4b5a69788796a5b4c3d2e1f0"


def signed_schedules(target: Path) -> Path:
    """The repository's schedules in ``target`` with a clinician's sign-off recorded."""
    target.mkdir(parents=True, exist_ok=True)
    for path in (ROOT / "schedules").glob("*.yaml"):
        text = path.read_text(encoding="utf-8")
        text = re.sub(r"\bby: null\b", "by: Dr. Ana Ruiz", text)
        text = re.sub(r"\bdate: null\b", "date: 2026-11-30", text)
        (target / path.name).write_text(text, encoding="utf-8")
    return target


def production_env(tmp_path: Path, database_url: str | None = None) -> dict[str, str]:
    """Every CHECKIN_/TWILIO_ variable of a safe production site (loopback SMTP, no TLS)."""
    schedules = tmp_path / "signed-schedules"
    if not schedules.is_dir():
        signed_schedules(schedules)
    return {
        "CHECKIN_ENV": "production",
        "CHECKIN_DATABASE_URL": database_url or f"sqlite:///{tmp_path / 'prod.db'}",
        "CHECKIN_SCHEDULES_DIR": str(schedules),
        "CHECKIN_TEMPLATES_DIR": str(ROOT / "templates"),
        "CHECKIN_SECRET_KEY": STRONG_KEY,
        "CHECKIN_PUBLIC_URL": "https://checkin.riverside-hospital.test",
        "CHECKIN_CLINIC_NAME": "Riverside Spine Clinic",
        "CHECKIN_CLINIC_PHONE": "+1 312 555 4821",
        "TWILIO_ACCOUNT_SID": TWILIO_SID,
        "TWILIO_AUTH_TOKEN": TWILIO_TOKEN,
        "TWILIO_FROM_NUMBER": "+13125554821",
        "CHECKIN_SMTP_HOST": "127.0.0.1",
        "CHECKIN_SMTP_PORT": "2525",
        "CHECKIN_SMTP_TLS": "none",
        "CHECKIN_SMTP_USER": "checkin",
        "CHECKIN_SMTP_PASSWORD": "relay-password",
        "CHECKIN_EMAIL_FROM": "checkin@riverside-hospital.test",
        "CHECKIN_ALERT_EMAILS": "spine-nurses@riverside-hospital.test",
    }


def copy_content(tmp_path: Path) -> Path:
    """A writable copy of the signed schedules (for tests that add a care-team file)."""
    target = tmp_path / "content-schedules"
    shutil.copytree(signed_schedules(tmp_path / "signed-schedules"), target, dirs_exist_ok=True)
    return target
