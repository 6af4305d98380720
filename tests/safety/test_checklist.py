"""README's "Going live" checklist is what `checkin check` enforces: every setting a verdict
can name is on it, and every verdict names one of them."""

from __future__ import annotations

from pathlib import Path

import pytest

from checkin.app import safety
from tests.safety.test_verdicts import all_verdicts, settings_of
from tests.support import ROOT


def going_live() -> str:
    text = (ROOT / "README.md").read_text()
    start = text.index("### Going live")
    return text[start : text.index("\n### ", start + 1)]


@pytest.mark.parametrize("setting", safety.CHECKED)
def test_the_checklist_names_every_checked_setting(setting: str) -> None:
    assert setting in going_live()


def test_every_verdict_names_a_checked_setting(tmp_path: Path) -> None:
    unsafe = settings_of(
        tmp_path,
        CHECKIN_SECRET_KEY=None,
        CHECKIN_SMTP_HOST="smtp.hospital.test",
        CHECKIN_PUBLIC_URL="http://x.hospital.test",
        TWILIO_AUTH_TOKEN="x",
        TWILIO_MESSAGING_SERVICE_SID="MGx",
        CHECKIN_CLINIC_NAME="Spine Center",
        CHECKIN_CLINIC_PHONE="+1 555 010 0100",
        CHECKIN_ALERT_EMAILS="a@example.org",
        CHECKIN_SCHEDULES_DIR=str(ROOT / "schedules"),
    )
    found = all_verdicts(unsafe)
    assert len(found) >= 10
    for v in found:
        assert any(name in v.setting for name in safety.CHECKED), v
