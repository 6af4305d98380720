"""`checkin import` and `patients show` on what spreadsheets and forms really contain."""

from __future__ import annotations

import csv
from datetime import date, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from checkin.app.cli.main import cli
from tests.support import clinic_today

ROOT = Path(__file__).resolve().parents[1]
HEADER = "mrn,first_name,phone,procedure,surgery_date\n"
SOON = (date.today() + timedelta(days=60)).isoformat()  # a plausible surgery date, no --force


@pytest.fixture
def run(tmp_path: Path):  # type: ignore[no-untyped-def]
    env = {
        "CHECKIN_DATABASE_URL": f"sqlite:///{tmp_path / 'cli.db'}",
        "CHECKIN_SCHEDULES_DIR": str(ROOT / "schedules"),
        "CHECKIN_TEMPLATES_DIR": str(ROOT / "templates"),
        "CHECKIN_DEFAULT_TIMEZONE": "America/Chicago",
    }

    def invoke(*args: str) -> Result:
        return CliRunner().invoke(cli, ["--env-file", str(tmp_path / "none.env"), *args], env=env)

    assert invoke("db", "upgrade").exit_code == 0
    return invoke


def test_a_header_problem_is_reported_as_one_not_as_bad_rows(run, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "p.csv"
    path.write_text(
        f"MRN,First Name,phone,procedure,surgery_date,notes\n1,Ana,6175550123,lumbar-fusion,{SOON},x\n"
    )
    result = run("import", str(path), "--skip-bad-rows")
    assert result.exit_code == 1
    assert f"{path}:1:first name: unknown column; did you mean first_name?" in result.output
    assert f"{path}:1:notes: unknown column; delete the column" in result.output
    assert "cannot be imported as it is; nothing was written" in result.output
    assert "bad row(s)" not in result.output and "--skip-bad-rows" not in result.output


def test_rejects_are_written_and_errors_read_row_column(run, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "p.csv"
    path.write_text(HEADER + f"1,Ana,6175550123,Lumbar-Fusion,{SOON}\n2,Bo,6175550124,knee,{SOON}\n")
    rejects = tmp_path / "rejects.csv"
    result = run("import", str(path), "--skip-bad-rows", "--rejects", str(rejects))
    assert result.exit_code == 0, result.output
    assert f"{path}:3:procedure: 'knee' is not a schedule" in result.output
    assert "enrolled 1 patient(s)" in result.output and "1 bad row(s) written to" in result.output
    rows = list(csv.reader(rejects.open()))
    assert rows[1][:2] == ["2", "Bo"] and rows[1][-2] == "3"


def test_a_latin1_file_from_excel_is_imported_and_the_guess_said(run, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "p.csv"
    path.write_bytes(
        (HEADER + f"1;Zoë;6175550123;lumbar-fusion;{SOON}\n").replace(",", ";").encode("latin-1")
    )
    result = run("import", str(path))
    assert result.exit_code == 0, result.output
    assert "read as Windows-1252" in result.output and "line 2" in result.output
    assert "Zoë" in run("patients", "show", "1").output


def test_patients_show_strips_terminal_control_characters(run, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "p.csv"
    name = "\x1b]0;pwned\x07\x1b[2JAna\u202e"
    path.write_text(HEADER + f"1,{name},6175550123,lumbar-fusion,{SOON}\n", encoding="utf-8")
    assert run("import", str(path)).exit_code == 0
    shown = run("patients", "show", "1").output
    assert "Ana" in shown
    assert not any(c in shown for c in "\x1b\x07\u202e")
    listed = run("patients", "list").output
    assert "\x1b" not in listed


def test_a_past_surgery_date_is_a_bad_row_saying_what_would_be_missed(run, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    past = (clinic_today() - timedelta(days=262)).isoformat()
    path = tmp_path / "p.csv"
    path.write_text(HEADER + f"1,Ana,6175550123,lumbar-fusion,{past}\n")
    refused = run("import", str(path))
    assert refused.exit_code == 1
    assert f"{path}:2:surgery_date: surgery date {past} is 262 day(s) in the past" in refused.output
    assert "would not" in refused.output and "--force" in refused.output
    forced = run("import", str(path), "--force")
    assert forced.exit_code == 0, forced.output
    assert f"{path}:2:surgery_date: surgery date {past}" in forced.output and "(warning)" in forced.output
    assert "enrolled 1 patient(s)" in forced.output


def test_a_phone_shared_in_the_file_or_with_an_enrolled_patient_warns(run, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    first = tmp_path / "first.csv"
    first.write_text(HEADER + f"1,Ana,6175550123,lumbar-fusion,{SOON}\n")
    assert run("import", str(first)).exit_code == 0
    second = tmp_path / "second.csv"
    second.write_text(
        HEADER + f"2,Bo,6175550123,lumbar-fusion,{SOON}\n3,Cy,6175550199,lumbar-fusion,{SOON}\n"
        f"4,Di,6175550199,lumbar-fusion,{SOON}\n"
    )
    result = run("import", str(second))
    assert result.exit_code == 0, result.output
    assert f"{second}:2:phone: +16175550123 is also the phone of enrolled patient(s)" in result.output
    assert f"{second}:4:phone: +16175550199 is also the phone of line 3's patient" in result.output
    assert "enrolled 3 patient(s)" in result.output
