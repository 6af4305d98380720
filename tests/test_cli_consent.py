"""`checkin enroll` and `checkin import` record consent with their source, who and the clock's
time; `checkin patients show` lists the history."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from click.testing import CliRunner, Result
from sqlalchemy import select

from checkin.app.cli.context import App
from checkin.app.cli.main import cli
from checkin.clock import ManualClock
from checkin.store.consents import Consent
from checkin.store.db import make_engine, session_factory

ROOT = Path(__file__).resolve().parents[1]
NOW = datetime(2026, 3, 3, 15, 0, tzinfo=UTC)
SOON = (NOW + timedelta(days=20)).date().isoformat()


def _run(tmp_path: Path, *args: str, now: datetime = NOW) -> Result:
    env = {
        "CHECKIN_DATABASE_URL": f"sqlite:///{tmp_path / 'cli.db'}",
        "CHECKIN_SCHEDULES_DIR": str(ROOT / "schedules"),
        "CHECKIN_TEMPLATES_DIR": str(ROOT / "templates"),
        "CHECKIN_DEFAULT_TIMEZONE": "America/Chicago",
    }
    env_file = str(tmp_path / "none.env")
    return CliRunner().invoke(
        cli,
        ["--env-file", env_file, *args],
        env=env,
        obj=App(env_file, clock=ManualClock(now)),
        catch_exceptions=False,
    )


def _consents(tmp_path: Path) -> list[tuple[str, str, str, str, datetime]]:
    engine = make_engine(f"sqlite:///{tmp_path / 'cli.db'}")
    try:
        with session_factory(engine)() as s:
            return [
                (c.channel, c.decision, c.source, c.recorded_by, c.recorded_at)
                for c in s.scalars(select(Consent).order_by(Consent.id))
            ]
    finally:
        engine.dispose()


def test_enroll_records_cli_consent_and_show_lists_it(tmp_path: Path) -> None:
    assert _run(tmp_path, "db", "upgrade").exit_code == 0
    enrolled = _run(
        tmp_path,
        *("enroll", "--mrn", "100234", "--first-name", "Maria", "--phone", "(312) 555-0147"),
        *("--procedure", "lumbar-fusion", "--surgery-date", SOON),
    )
    assert enrolled.exit_code == 0, enrolled.output
    assert _consents(tmp_path) == [("sms", "granted", "cli", "cli", NOW)]
    shown = _run(tmp_path, "patients", "show", "100234")
    assert shown.exit_code == 0, shown.output
    assert "Consent (1)" in shown.output
    assert "2026-03-03 09:00 CST   sms   granted cli             by cli" in shown.output


def test_import_records_the_file_and_line(tmp_path: Path) -> None:
    assert _run(tmp_path, "db", "upgrade").exit_code == 0
    csv = tmp_path / "week10.csv"
    csv.write_text(
        "mrn,first_name,phone,procedure,surgery_date\n"
        f"100234,Maria,(312) 555-0147,lumbar-fusion,{SOON}\n"
        f"100235,Ana,(312) 555-0148,lumbar-fusion,{SOON}\n",
        encoding="utf-8",
    )
    later = NOW + timedelta(minutes=5)
    result = _run(tmp_path, "import", str(csv), now=later)
    assert result.exit_code == 0, result.output
    assert _consents(tmp_path) == [
        ("sms", "granted", "csv", "csv:week10.csv:2", later),
        ("sms", "granted", "csv", "csv:week10.csv:3", later),
    ]
