"""The `checkin` command end to end on a SQLite file, through click's runner."""

from __future__ import annotations

import json
from datetime import UTC, date, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from checkin.app.cli.main import cli

ROOT = Path(__file__).resolve().parents[1]
SOON = (date.today() + timedelta(days=60)).isoformat()  # a plausible surgery date, no --force
LATER = (date.today() + timedelta(days=67)).isoformat()


@pytest.fixture
def run(tmp_path: Path):  # type: ignore[no-untyped-def]
    env = {
        "CHECKIN_DATABASE_URL": f"sqlite:///{tmp_path / 'cli.db'}",
        "CHECKIN_SCHEDULES_DIR": str(ROOT / "schedules"),
        "CHECKIN_TEMPLATES_DIR": str(ROOT / "templates"),
        "CHECKIN_DEFAULT_TIMEZONE": "America/Chicago",
    }

    def invoke(*args: str, **extra_env: str) -> Result:
        return CliRunner().invoke(
            cli,
            ["--env-file", str(tmp_path / "none.env"), *args],
            env={**env, **extra_env},
            catch_exceptions=False,
        )

    return invoke


def test_it_validates_the_default_schedules(run) -> None:  # type: ignore[no-untyped-def]
    result = run("schedules", "validate")
    assert result.exit_code == 0, result.output
    assert "ok: 3 file(s) valid" in result.output  # two schedules, the HL7 mapping


def test_it_fails_validation_with_file_line_and_key(run, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        'id: bad\nname: Bad\nsend_window: ["09:00", "20:00"]\nsteps:\n'
        '  - id: a\n    day: 1\n    time: "25:00"\n    message: fever_check\n'
    )
    result = run("schedules", "validate", str(bad))
    assert result.exit_code == 1
    assert f"{bad}:7: time:" in result.output


def test_it_previews_a_timeline_as_json(run) -> None:  # type: ignore[no-untyped-def]
    result = run(
        "schedules",
        "preview",
        "lumbar-fusion",
        "--surgery-date",
        "2026-03-14",
        "--timezone",
        "America/New_York",
        "--smoker",
        "--format",
        "json",
    )
    assert result.exit_code == 0, result.output
    rows = json.loads(result.output)
    assert rows and {"step", "due_local", "due_utc", "channel", "text"} <= set(rows[0])
    assert any(r["step"].startswith("smoking") for r in rows)
    # The 10:00 step keeps 10:00 local across the 2026-03-08 change (before surgery) and after.
    assert all("T" in r["due_local"] for r in rows)


def test_it_previews_in_spanish_without_naming_the_procedure(run) -> None:  # type: ignore[no-untyped-def]
    result = run(
        "schedules",
        "preview",
        "cervical-fusion",
        "--surgery-date",
        "2026-03-14",
        "--language",
        "es",
        "--format",
        "json",
    )
    rows = json.loads(result.output)
    texts = " ".join(r["text"] for r in rows).lower()
    assert "fusión" not in texts and "cervical" not in texts and "columna" not in texts


def test_it_refuses_to_enroll_before_migration_and_says_how_to_fix_it(run) -> None:  # type: ignore[no-untyped-def]
    result = run(
        "enroll",
        "--mrn",
        "1",
        "--first-name",
        "Ana",
        "--phone",
        "6175550123",
        "--procedure",
        "lumbar-fusion",
        "--surgery-date",
        SOON,
    )
    assert result.exit_code == 1
    assert "checkin db upgrade" in result.output


def test_it_enrolls_shows_reschedules_and_withdraws(run) -> None:  # type: ignore[no-untyped-def]
    assert run("db", "upgrade").exit_code == 0
    result = run(
        "enroll",
        "--mrn",
        "100234",
        "--first-name",
        "Maria",
        "--phone",
        "(312) 555-0147",
        "--procedure",
        "lumbar-fusion",
        "--surgery-date",
        SOON,
        "--language",
        "es",
        "--smoker",
    )
    assert result.exit_code == 0, result.output
    planned = int(result.output.split(": ")[1].split()[0])
    assert planned > 20

    shown = run("patients", "show", "100234")
    assert shown.exit_code == 0 and "+13125550147" in shown.output and "pending" in shown.output

    again = run(
        "enroll",
        "--mrn",
        "100234",
        "--first-name",
        "Maria",
        "--phone",
        "(312) 555-0147",
        "--procedure",
        "lumbar-fusion",
        "--surgery-date",
        SOON,
    )
    assert again.exit_code == 1 and "already enrolled" in again.output

    moved = run("reschedule", "100234", "--surgery-date", LATER, "--yes")
    assert moved.exit_code == 0 and f"{planned} moved" in moved.output

    gone = run("withdraw", "100234")
    assert gone.exit_code == 0 and f"{planned} pending message(s) cancelled" in gone.output

    listed = run("patients", "list")
    assert "withdrawn" in listed.output


def test_it_rejects_a_bad_phone_with_the_reason(run) -> None:  # type: ignore[no-untyped-def]
    run("db", "upgrade")
    result = run(
        "enroll",
        "--mrn",
        "1",
        "--first-name",
        "Ana",
        "--phone",
        "555",
        "--procedure",
        "lumbar-fusion",
        "--surgery-date",
        SOON,
    )
    assert result.exit_code == 1 and "phone:" in result.output


def test_it_imports_a_csv_and_reports_bad_rows_by_line_and_column(run, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    run("db", "upgrade")
    csv_file = tmp_path / "p.csv"
    csv_file.write_text(
        "mrn,first_name,phone,procedure,surgery_date\n"
        f"1,Ana,6175550123,lumbar-fusion,{SOON}\n"
        f"2,Bo,6175550124,knee,{SOON}\n"
    )
    bad = run("import", str(csv_file))
    assert (
        bad.exit_code == 1
        and f"{csv_file}:3:procedure: " in bad.output
        and "nothing was written" in bad.output
    )
    ok = run("import", str(csv_file), "--skip-bad-rows")
    assert ok.exit_code == 0 and "enrolled 1 patient(s)" in ok.output


def test_it_names_a_bad_setting(run) -> None:  # type: ignore[no-untyped-def]
    result = run("patients", "list", CHECKIN_DEFAULT_TIMEZONE="Mars/Base")
    assert result.exit_code == 1 and "CHECKIN_DEFAULT_TIMEZONE" in result.output


def test_it_prints_a_triage_assessment_as_json(run) -> None:  # type: ignore[no-untyped-def]
    result = run("triage", "I can't feel my legs and I peed myself", "--context", "general")
    data = json.loads(result.output)
    assert data["severity"] == "emergency" and "bowel_bladder" in data["flags"]


def test_it_has_help_on_every_command() -> None:
    import click

    def walk(cmd: click.Command, path: list[str]) -> list[list[str]]:
        found = [path]
        if isinstance(cmd, click.Group):
            for name, sub in cmd.commands.items():
                found.extend(walk(sub, [*path, name]))
        return found

    for path in walk(cli, []):
        result = CliRunner().invoke(cli, [*path, "--help"])
        assert result.exit_code == 0 and "Usage:" in result.output, path
        cmd = cli
        for name in path:
            cmd = cmd.commands[name]  # type: ignore[attr-defined]
        assert (cmd.help or "").strip(), f"no help text for {' '.join(path)}"


def test_it_lists_acknowledges_and_resolves_alerts_with_an_audit_trail(run, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from datetime import datetime

    from sqlalchemy import create_engine, select
    from sqlalchemy.orm import Session

    from checkin.store.models import Alert, AuditEvent, Patient

    run("db", "upgrade")
    now = datetime(2026, 3, 1, tzinfo=UTC)
    engine = create_engine(f"sqlite:///{tmp_path / 'cli.db'}")
    with Session(engine) as s, s.begin():
        p = Patient(reference="P-CLI0001", mrn="9", first_name="Ana", timezone="UTC", created_at=now)
        s.add(p)
        s.flush()
        s.add(
            Alert(
                patient_id=p.id,
                kind="red_flag",
                severity="urgent",
                flags=["fever"],
                status="open",
                opened_at=now,
                updated_at=now,
                next_escalation_at=now,
            )
        )
    listed = run("alerts", "list", "--open")
    assert "URGENT" in listed.output and "P-CLI0001" in listed.output and "fever" in listed.output
    assert "Ana" not in listed.output

    assert "acknowledged" in run("alerts", "ack", "1", "--by", "dana").output
    assert "was already acknowledged" in run("alerts", "ack", "1", "--by", "dana").output
    assert run("alerts", "resolve", "1", "--note", "  ").exit_code != 0
    assert "resolved" in run("alerts", "resolve", "1", "--note", "called, fine", "--by", "dana").output
    assert run("alerts", "ack", "99", "--by", "dana").exit_code == 1
    with Session(engine) as s:
        alert = s.scalars(select(Alert)).one()
        assert alert.status == "resolved" and alert.next_escalation_at is None
        actions = [a for (a,) in s.execute(select(AuditEvent.actor)).all()]
    assert actions.count("cli:dana") >= 3
    assert "P-CLI0001" not in run("alerts", "list", "--open").output
