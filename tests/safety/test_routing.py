"""One source of alert routing: the care-team file when it exists, else CHECKIN_ALERT_EMAILS;
start-up says which; ``schedules validate`` flags placeholder contacts."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from checkin.app.cli.main import cli
from checkin.app.safety import routing_line
from checkin.core.care_teams import load_care_teams, parse_care_teams
from checkin.store.db import upgrade
from tests.support import ROOT, make_settings, memory_services
from tests.support.production import STRONG_KEY, copy_content

EXAMPLE = ROOT / "schedules" / "care-teams.yaml.example"


def test_the_alert_emails_route_alerts_when_no_care_team_file_exists(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'x.db'}"
    upgrade(url)
    settings = make_settings(CHECKIN_DATABASE_URL=url, CHECKIN_ALERT_EMAILS="realnurse@hospital.test")
    services = memory_services(settings)
    assert services.care_teams.current().for_name(None).emails == ("realnurse@hospital.test",)
    assert "alerts go to team default (default): realnurse@hospital.test" in services.notes


def test_the_routing_line_names_emails_and_only_the_last_digits_of_a_phone() -> None:
    line = routing_line(parse_care_teams(EXAMPLE.read_text(), "care-teams.yaml"))
    assert line == (
        "alerts go to team spine (default): spine-nurses@example.org; "
        "on call spine-oncall@example.org SMS to number ending 0199"
    )


def validate(schedules: Path, env: str) -> tuple[int, str]:
    result = CliRunner().invoke(
        cli,
        ["--env-file", "/nonexistent.env", "schedules", "validate", "--quiet"],
        env={
            "CHECKIN_ENV": env,
            "CHECKIN_SCHEDULES_DIR": str(schedules),
            "CHECKIN_TEMPLATES_DIR": str(ROOT / "templates"),
            "CHECKIN_CLINIC_NAME": "Riverside Spine Clinic",
            "CHECKIN_CLINIC_PHONE": "+1 312 555 4821",
            "CHECKIN_SECRET_KEY": STRONG_KEY,  # production refuses every command without one
        },
    )
    return result.exit_code, result.output


def test_validate_flags_placeholder_contacts(tmp_path: Path) -> None:
    schedules = copy_content(tmp_path)
    (schedules / "care-teams.yaml").write_text(EXAMPLE.read_text())
    code, out = validate(schedules, "development")
    assert code == 0, out
    assert f"warning: {schedules / 'care-teams.yaml'}: team spine: Spine nurse line: " in out
    assert "spine-nurses@example.org is a placeholder address" in out
    assert "+15555550199 is a placeholder number (555)" in out
    code, out = validate(schedules, "production")
    assert code == 1
    assert f"{schedules / 'care-teams.yaml'}: team spine: Spine nurse line: spine-nurses@example.org" in out
    # With real contacts the same file passes in production.
    real = (
        EXAMPLE.read_text()
        .replace("example.org", "riverside-hospital.test")
        .replace("5555550199", "3125554821")
    )
    (schedules / "care-teams.yaml").write_text(real)
    code, out = validate(schedules, "production")
    assert code == 0, out
    assert load_care_teams(schedules, []).for_name(None).on_call is not None
