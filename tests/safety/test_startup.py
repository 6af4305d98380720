"""Production refuses to start on unsafe settings (worker and web), with one line naming each;
development starts and warns; ``checkin check`` prints the same verdicts."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from checkin.app.cli.main import cli
from checkin.config import DEV_SECRET_KEY
from tests.support.production import production_env

Run = Callable[..., Result]
REFUSED = "CHECKIN_ENV=production refuses to start:"


@pytest.fixture
def run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Run:
    """``checkin ARGS`` with the production fixture's environment changed by ``changes``; the
    web server and the worker loop are replaced by no-ops, so start-up is all that runs."""
    import checkin.app.web
    import checkin.app.worker

    monkeypatch.setattr(checkin.app.web, "serve", lambda services, **kw: None)
    monkeypatch.setattr(checkin.app.worker, "run", lambda services, **kw: None)
    base = production_env(tmp_path)

    def invoke(*args: str, **changes: str | None) -> Result:
        env: dict[str, str | None] = {**base, **changes}
        return CliRunner().invoke(cli, ["--env-file", str(tmp_path / "none.env"), *args], env=env)

    return invoke


UNSAFE = [
    ("CHECKIN_SECRET_KEY", {"CHECKIN_SECRET_KEY": None}),
    ("CHECKIN_SECRET_KEY", {"CHECKIN_SECRET_KEY": DEV_SECRET_KEY}),
    ("CHECKIN_SECRET_KEY", {"CHECKIN_SECRET_KEY": "sixteen-chars-ok"}),
    ("CHECKIN_SMTP_HOST", {"CHECKIN_SMTP_HOST": None}),
    ("CHECKIN_SMTP_TLS", {"CHECKIN_SMTP_HOST": "smtp.riverside-hospital.test"}),
    ("CHECKIN_PUBLIC_URL", {"CHECKIN_PUBLIC_URL": None}),
    ("CHECKIN_PUBLIC_URL", {"CHECKIN_PUBLIC_URL": "http://checkin.riverside-hospital.test"}),
    ("TWILIO_ACCOUNT_SID", {"TWILIO_ACCOUNT_SID": None}),
    ("TWILIO_AUTH_TOKEN", {"TWILIO_AUTH_TOKEN": "tok"}),
    ("CHECKIN_ALERT_EMAILS", {"CHECKIN_ALERT_EMAILS": ""}),
    ("CHECKIN_ALERT_EMAILS", {"CHECKIN_ALERT_EMAILS": "nurses@example.org"}),
]


@pytest.mark.parametrize("command", ["worker", "web"])
@pytest.mark.parametrize(("setting", "changes"), UNSAFE, ids=lambda v: v if isinstance(v, str) else "")
def test_production_refuses_to_start(run: Run, command: str, setting: str, changes: dict[str, str]) -> None:
    assert run("db", "upgrade").exit_code == 0
    result = run(command, **changes)
    assert result.exit_code == 1, result.output
    lines = result.output.splitlines()
    assert lines[0] == f"Error: {REFUSED}", result.output
    assert {line.strip().split(":")[0] for line in lines[1:]} == {setting}, result.output


def test_production_refuses_placeholder_care_teams_and_unsigned_schedules(run: Run, tmp_path: Path) -> None:
    schedules = tmp_path / "signed-schedules"
    example = Path(__file__).resolve().parents[2] / "schedules" / "care-teams.yaml.example"
    (schedules / "care-teams.yaml").write_text(example.read_text())
    lumbar = schedules / "lumbar-fusion.yaml"
    lumbar.write_text(lumbar.read_text().replace("by: Dr. Ana Ruiz", "by: null"))
    result = run("worker")
    assert result.exit_code == 1
    assert f"{schedules / 'care-teams.yaml'}: team spine: spine-nurses@example.org is a placeholder" in (
        result.output
    )
    assert "schedules/lumbar-fusion.yaml: clinical_sign_off: by and date are not both set" in result.output


@pytest.mark.parametrize("command", ["worker", "web"])
def test_a_safe_production_site_starts_and_says_where_alerts_go(run: Run, command: str) -> None:
    assert run("db", "upgrade").exit_code == 0
    result = run(command)
    assert result.exit_code == 0, result.output
    assert REFUSED not in result.output


@pytest.mark.parametrize("command", ["worker", "web"])
def test_development_warns_once_per_unsafe_default(run: Run, command: str) -> None:
    dev = {"CHECKIN_ENV": "development", "CHECKIN_SECRET_KEY": None, "CHECKIN_SMTP_HOST": None}
    assert run("db", "upgrade", **dev).exit_code == 0
    result = run(command, **dev)
    assert result.exit_code == 0, result.output
    events = [json.loads(line) for line in result.output.splitlines() if line.startswith("{")]
    unsafe = [e for e in events if e.get("event") == "settings.unsafe"]
    assert all(e["level"] == "warning" for e in unsafe)
    assert sorted(e["setting"] for e in unsafe) == ["CHECKIN_SECRET_KEY", "CHECKIN_SMTP_HOST"]


def test_check_prints_the_verdicts_start_up_refuses_on(run: Run) -> None:
    changes = {"CHECKIN_SMTP_HOST": None, "CHECKIN_PUBLIC_URL": "http://x.riverside-hospital.test"}
    refused = run("worker", **changes)
    check = run("check", **changes)
    assert check.exit_code == 1
    verdicts = [line.strip() for line in refused.output.splitlines()[1:]]
    assert [line.removeprefix("refused: ") for line in check.output.splitlines()[:-1]] == verdicts


def test_check_passes_a_safe_production_site_and_fails_development(run: Run) -> None:
    ok = run("check")
    assert ok.exit_code == 0, ok.output
    assert ok.output.strip() == "ok: production would start with these settings"
    dev = run("check", CHECKIN_ENV="development")
    assert dev.exit_code == 1
    assert "refused: CHECKIN_ENV: development" in dev.output


def test_no_command_signs_links_with_a_weak_key_in_production(run: Run) -> None:
    assert run("db", "upgrade").exit_code == 0
    added = run(
        "staff", "add", "dana@riverside-hospital.test", "--name", "Dana", CHECKIN_SECRET_KEY=DEV_SECRET_KEY
    )
    assert added.exit_code == 1
    assert added.output.splitlines()[:2] == [f"Error: {REFUSED}", added.output.splitlines()[1]]
    assert "CHECKIN_SECRET_KEY" in added.output and "set-password" not in added.output
    # checkin check still reports everything, the key among them.
    check = run("check", CHECKIN_SECRET_KEY=DEV_SECRET_KEY, CHECKIN_SMTP_HOST=None)
    assert "refused: CHECKIN_SECRET_KEY" in check.output and "refused: CHECKIN_SMTP_HOST" in check.output
