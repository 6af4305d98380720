"""The paths people trip over in the `checkin` command: odd surgery dates, zones, shared
phones, rescheduling, missing or unreachable databases, unknown names, and what `patients
show` prints. Each runs the real command through click's runner on a SQLite file."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from checkin.app.cli.main import cli
from tests.support import clinic_today

ROOT = Path(__file__).resolve().parents[1]
SOON = date.today() + timedelta(days=30)
Run = Callable[..., Result]
UNREACHABLE = "postgresql+psycopg://nurse:s3cret@127.0.0.1:9/checkin?connect_timeout=3"


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "cli.db"


@pytest.fixture
def run(tmp_path: Path, db_path: Path) -> Run:
    env = {
        "CHECKIN_DATABASE_URL": f"sqlite:///{db_path}",
        "CHECKIN_SCHEDULES_DIR": str(ROOT / "schedules"),
        "CHECKIN_TEMPLATES_DIR": str(ROOT / "templates"),
        "CHECKIN_DEFAULT_TIMEZONE": "America/Chicago",
    }

    def invoke(*args: str, input: str | None = None, **extra_env: str) -> Result:
        return CliRunner().invoke(
            cli, ["--env-file", str(tmp_path / "none.env"), *args], env={**env, **extra_env}, input=input
        )

    return invoke


def enroll(
    run: Run, *extra: str, mrn: str = "100234", surgery: date = SOON, phone: str = "(312) 555-0147"
) -> Result:
    return run(
        "enroll",
        "--mrn",
        mrn,
        "--first-name",
        "Maria",
        "--phone",
        phone,
        "--procedure",
        "lumbar-fusion",
        "--surgery-date",
        surgery.isoformat(),
        *extra,
    )


def one_line_error(result: Result) -> str:
    assert result.exit_code == 1, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in result.output, result.output
    return lines[0]


# ---- enrollment sanity -------------------------------------------------------------------


def test_a_past_surgery_date_needs_force_and_says_what_would_and_would_not_be_sent(run: Run) -> None:
    assert run("db", "upgrade").exit_code == 0
    past = clinic_today() - timedelta(days=262)
    refused = enroll(run, surgery=past)
    line = one_line_error(refused)
    assert (
        "262 day(s) in the past" in line
        and "would still be sent" in line
        and "would not (" in line
        and "daily-check" in line
    )
    assert "--force" in line
    assert "0 enrollment(s)" in run("patients", "list").output  # nothing written
    forced = enroll(run, "--force", surgery=past)
    assert forced.exit_code == 0 and "warning: surgery date" in forced.output


def test_a_surgery_date_years_ahead_needs_force(run: Run) -> None:
    run("db", "upgrade")
    line = one_line_error(enroll(run, surgery=date(2099, 1, 1)))
    assert "more than a year" in line and "--force" in line


def test_an_abbreviated_zone_is_refused_with_the_place_to_use(run: Run) -> None:
    run("db", "upgrade")
    line = one_line_error(enroll(run, "--timezone", "EST"))
    assert line.startswith("Error: timezone: 'EST' is an abbreviation") and "America/New_York" in line


def test_a_phone_shared_with_an_enrolled_patient_warns(run: Run) -> None:
    run("db", "upgrade")
    assert enroll(run, mrn="1").exit_code == 0
    second = enroll(run, mrn="2")
    assert second.exit_code == 0
    assert "warning: +13125550147 is also the phone of enrolled patient(s) P-" in second.output


def test_reschedule_shows_what_moves_and_asks_first(run: Run) -> None:
    run("db", "upgrade")
    enroll(run)
    earlier = (date.today() - timedelta(days=30)).isoformat()
    declined = run("reschedule", "100234", "--surgery-date", earlier, input="n\n")
    assert declined.exit_code == 1 and "Aborted" in declined.output
    assert f"surgery {SOON.isoformat()} -> {earlier}" in declined.output
    assert "would be cancelled, their time now past (" in declined.output and "daily-check" in declined.output
    shown = run("patients", "show", "100234", "--by", "nurse")
    assert "rescheduled" not in shown.output and "cancelled" not in shown.output  # nothing applied
    applied = run("reschedule", "100234", "--surgery-date", earlier, input="y\n")
    assert applied.exit_code == 0 and "rescheduled:" in applied.output
    assert "cancelled (rescheduled)" in run("patients", "show", "100234", "--by", "nurse").output


def test_reschedule_without_a_terminal_does_not_apply_silently(run: Run) -> None:
    run("db", "upgrade")
    enroll(run)
    result = run("reschedule", "100234", "--surgery-date", (SOON + timedelta(days=7)).isoformat())
    assert result.exit_code == 1 and "Aborted" in result.output  # no answer: no change
    ok = run("reschedule", "100234", "--surgery-date", (SOON + timedelta(days=7)).isoformat(), "--yes")
    assert ok.exit_code == 0 and "moved" in ok.output


# ---- databases ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "args",
    [("patients", "list"), ("status",), ("db", "current"), ("patients", "show", "1"), ("alerts", "list")],
)
def test_reading_a_missing_sqlite_database_creates_nothing(
    run: Run, db_path: Path, args: tuple[str, ...]
) -> None:
    line = one_line_error(run(*args))
    assert not db_path.exists()
    assert f"no database file at {db_path}" in line and "checkin db upgrade" in line


@pytest.mark.parametrize(
    "args", [("status",), ("db", "upgrade"), ("db", "current"), ("worker",), ("patients", "list")]
)
def test_an_unreachable_database_is_one_line(run: Run, args: tuple[str, ...]) -> None:
    line = one_line_error(run(*args, CHECKIN_DATABASE_URL=UNREACHABLE))
    assert "127.0.0.1:9" in line and "s3cret" not in line
    assert "Error" in line and "OperationalError" not in line


def test_db_upgrade_into_a_missing_folder_is_one_line(run: Run, tmp_path: Path) -> None:
    line = one_line_error(run("db", "upgrade", CHECKIN_DATABASE_URL=f"sqlite:///{tmp_path}/no/such/dir/x.db"))
    assert "unable to open database file" in line


# ---- names and messages ------------------------------------------------------------------


def test_an_unknown_triage_context_is_an_error_with_a_suggestion(run: Run) -> None:
    result = run("triage", "yes", "--context", "wound")
    assert result.exit_code == 2 and "did you mean wound_check?" in result.output
    assert run("triage", "yes", "--context", "wound_check").exit_code == 0
    assert run("triage", "yes", "--context", "brace_reminder").exit_code == 0


def test_an_unknown_preview_attribute_is_an_error_with_a_suggestion(run: Run) -> None:
    result = run(
        "schedules", "preview", "lumbar-fusion", "--surgery-date", SOON.isoformat(), "--attribute", "bracee"
    )
    line = one_line_error(result)
    assert "'bracee' is not a known attribute; did you mean brace?" in line


def test_errors_carry_no_class_names(run: Run) -> None:
    run("db", "upgrade")
    line = one_line_error(enroll(run, phone="555"))
    assert line.startswith("Error: phone: ") and "EnrollmentError" not in line


# ---- patients show -----------------------------------------------------------------------


def test_patients_show_takes_the_reference_and_shows_conversation_alerts_and_clean_text(
    run: Run, db_path: Path
) -> None:
    from sqlalchemy import select

    from checkin.app.bootstrap import build_services
    from checkin.channels.memory import MemoryChannel
    from checkin.clock import SystemClock
    from checkin.inbound.process import InboundSms, handle_sms
    from checkin.store.models import Patient
    from tests.support import make_settings

    run("db", "upgrade")
    assert enroll(run).exit_code == 0
    settings = make_settings(CHECKIN_DATABASE_URL=f"sqlite:///{db_path}")
    clock = SystemClock()
    services = build_services(settings, clock=clock, sms=MemoryChannel(clock), email=MemoryChannel(clock))
    with services.sessions.begin() as s:
        patient = s.scalar(select(Patient))
        assert patient is not None
        patient.first_name = "Maria\x1b[2J\x1b]52;c;aGk=\x07"  # clears the screen, writes the clipboard
        ref = patient.reference
    handle_sms(services, InboundSms("SM" + "1" * 32, "+13125550147", "I can't breathe\x1b[31m"), clock.now())
    services.engine.dispose()

    shown = run("patients", "show", ref.lower(), "--by", "nurse")
    assert shown.exit_code == 0, shown.output
    assert "\x1b" not in shown.output and "\x07" not in shown.output
    assert f"{ref}  Maria  MRN 100234" in shown.output
    assert '<- sms   "I can\'t breathe"' in shown.output  # what the patient wrote
    assert "-> sms   reply_emergency" in shown.output  # and what we answered
    assert "Alerts (1)" in shown.output and "EMERGENCY" in shown.output
    assert "lumbar-fusion (surgery" in shown.output and "pending" in shown.output
    missing = run("patients", "show", "P-NOSUCH1")
    assert one_line_error(missing) == "Error: no patient with MRN or reference 'P-NOSUCH1'"


def test_mail_receive_says_what_is_missing(run: Run) -> None:
    line = one_line_error(run("mail", "receive"))
    assert line == "Error: CHECKIN_EMAIL_REPLY_TO: is not set: there is no reply address to receive for"
