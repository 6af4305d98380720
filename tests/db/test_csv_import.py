"""CSV files as spreadsheets write them: header problems, encodings, delimiters, case, rejects,
size limits, and rows that would smuggle line breaks into email headers."""

from __future__ import annotations

import csv
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from checkin.core.schedule import Schedule
from checkin.core.schedule.load import parse_schedule_text
from checkin.enrollment.csvfile import MAX_FIELD, detect_format
from checkin.enrollment.importer import import_csv
from checkin.errors import ImportRowError
from checkin.store.models import Enrollment, Patient

NOW = datetime(2026, 3, 1, 15, 0, tzinfo=UTC)


@pytest.fixture
def schedules() -> dict[str, Schedule]:
    yaml = (
        'id: test-fusion\nname: Test fusion\nsend_window: ["09:00", "20:00"]\nsteps:\n'
        '  - id: fever\n    day: 1\n    time: "10:00"\n    every: 1\n    until: 3\n    message: fever_check\n'
    )
    return {"test-fusion": parse_schedule_text(yaml, "test-fusion.yaml")}


HEADER = "mrn,first_name,phone,email,procedure,surgery_date,timezone,language,smoker,channel\n"
ANA = "A1,Ana,6175550123,,test-fusion,2026-03-10,,en,no,sms\n"
BO = "A2,Bo,6175550124,,test-fusion,2026-03-11,,en,no,sms\n"


def write(tmp_path: Path, text: str | bytes) -> Path:
    path = tmp_path / "patients.csv"
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


def run(session: Session, schedules: dict[str, Schedule], path: Path, **kw: object):  # type: ignore[no-untyped-def]
    return import_csv(
        session,
        path,
        schedules=schedules,
        default_region="US",
        default_timezone="America/New_York",
        now=NOW,
        **kw,
    )  # type: ignore[arg-type]


def patients(session: Session) -> int:
    return session.scalar(select(func.count()).select_from(Patient)) or 0


# ---- header ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "column", "says"),
    [
        (HEADER.replace("channel\n", "channel,notes\n"), "notes", "delete the column"),
        (HEADER.replace("first_name", "First Name"), "first name", "did you mean first_name?"),
        (HEADER.replace("procedure", "procedre"), "procedre", "did you mean procedure?"),
    ],
)
def test_a_header_problem_is_a_header_error_with_a_suggestion(
    session: Session, schedules: dict[str, Schedule], tmp_path: Path, header: str, column: str, says: str
) -> None:
    width = header.count(",") + 1
    row = ANA.rstrip("\n") + ",x" * (width - ANA.count(",") - 1) + "\n"
    report = run(session, schedules, write(tmp_path, header + row), skip_bad_rows=True)
    assert report.file_errors and not report.written
    assert report.rows == 0  # no row was judged against a wrong header
    (error,) = [e for e in report.errors if e.column == column]
    assert error.line == 1 and says in error.problem
    assert patients(session) == 0


def test_a_header_missing_a_required_column_names_it(
    session: Session, schedules: dict[str, Schedule], tmp_path: Path
) -> None:
    report = run(session, schedules, write(tmp_path, "mrn,first_name,phone,procedure\nA1,Ana,6175550123,x\n"))
    assert report.file_errors
    assert [(e.line, e.column, e.problem) for e in report.errors] == [
        (1, "surgery_date", "required column is missing")
    ]


def test_header_names_ignore_case_and_spaces(
    session: Session, schedules: dict[str, Schedule], tmp_path: Path
) -> None:
    header = " MRN , First_Name,Phone,EMAIL,Procedure,Surgery_Date,timezone,language,smoker,channel\n"
    report = run(session, schedules, write(tmp_path, header + ANA))
    assert report.written and not report.errors


# ---- encoding and delimiter --------------------------------------------------------------


def test_a_semicolon_file_from_excel_is_read(
    session: Session, schedules: dict[str, Schedule], tmp_path: Path
) -> None:
    text = (HEADER + ANA + BO).replace(",", ";")
    report = run(session, schedules, write(tmp_path, text))
    assert report.written and not report.errors
    assert report.format is not None and report.format.delimiter == ";"
    assert patients(session) == 2


def test_a_windows_1252_file_is_detected_and_names_read_right(
    session: Session, schedules: dict[str, Schedule], tmp_path: Path
) -> None:
    text = HEADER + ANA.replace("Ana", "Zoë") + BO.replace("Bo", "José")
    report = run(session, schedules, write(tmp_path, text.encode("cp1252")))
    session.commit()
    assert report.written and not report.errors
    assert report.format is not None and report.format.encoding == "cp1252"
    assert "line 2" in report.format.note
    assert set(session.scalars(select(Patient.first_name))) == {"Zoë", "José"}


def test_a_byte_no_encoding_can_read_is_reported_on_its_line(
    session: Session, schedules: dict[str, Schedule], tmp_path: Path
) -> None:
    data = (HEADER + ANA).encode() + b"A2,B\x81o,6175550124,,test-fusion,2026-03-11,,en,no,sms\n"
    report = run(session, schedules, write(tmp_path, data))
    assert report.file_errors and not report.written
    (error,) = report.errors
    assert error.line == 3 and "0x81" in error.problem and "CSV UTF-8" in error.problem


def test_the_bad_byte_line_is_right_across_read_chunks(tmp_path: Path) -> None:
    from checkin.enrollment import csvfile

    body = (ANA * 40_000).encode()  # ~1.9 MB: past the first 1 MiB chunk
    path = write(tmp_path, HEADER.encode() + body + b"A9,\x81,1,,x,y,,,,\n")
    with pytest.raises(ImportRowError) as info:
        csvfile.detect_format(path)
    assert info.value.line == 40_002


def test_utf8_with_a_bom_is_read(tmp_path: Path) -> None:
    fmt = detect_format(write(tmp_path, "\ufeff" + HEADER + ANA))
    assert fmt.encoding == "utf-8-sig" and fmt.delimiter == "," and fmt.note == ""


# ---- rows --------------------------------------------------------------------------------


def test_procedure_ids_match_ignoring_case(
    session: Session, schedules: dict[str, Schedule], tmp_path: Path
) -> None:
    report = run(session, schedules, write(tmp_path, HEADER + ANA.replace("test-fusion", "Test-Fusion")))
    session.commit()
    assert report.written and not report.errors
    assert session.scalar(select(Enrollment.procedure)) == "test-fusion"


def test_rejects_file_gets_every_bad_row_with_line_and_problem(
    session: Session, schedules: dict[str, Schedule], tmp_path: Path
) -> None:
    bad = "A3,Cy,12,,test-fusion,2026-03-11,,en,no,sms\n"
    rejects = tmp_path / "rejects.csv"
    report = run(
        session, schedules, write(tmp_path, HEADER + ANA + bad + BO), skip_bad_rows=True, rejects=rejects
    )
    assert report.written and report.rejects == 1 and patients(session) == 2
    rows = list(csv.reader(rejects.open(encoding="utf-8")))
    assert rows[0][-2:] == ["line", "problem"]
    assert rows[1][:3] == ["A3", "Cy", "12"] and rows[1][-2] == "3" and rows[1][-1].startswith("phone: ")


def test_an_email_with_a_line_break_is_refused(
    session: Session, schedules: dict[str, Schedule], tmp_path: Path
) -> None:
    row = 'A1,Ana,6175550123,"ana@example.org\r\nBcc: all@example.org",test-fusion,2026-03-10,,en,no,both\n'
    report = run(session, schedules, write(tmp_path, HEADER + row))
    assert not report.written
    assert [(e.line, e.column) for e in report.errors] == [(2, "email")]


def test_an_over_long_field_is_an_error_of_its_row_and_column(
    session: Session, schedules: dict[str, Schedule], tmp_path: Path
) -> None:
    long = ANA.replace("Ana", "A" * 5000)
    report = run(session, schedules, write(tmp_path, HEADER + long + BO), skip_bad_rows=True)
    assert [(e.line, e.column) for e in report.errors] == [(2, "first_name")]
    assert f"limit is {MAX_FIELD:,}" in report.errors[0].problem
    assert report.written and patients(session) == 1


def test_a_128_kib_field_does_not_crash_the_import(
    session: Session, schedules: dict[str, Schedule], tmp_path: Path
) -> None:
    huge = ANA.replace("Ana", '"' + "A" * (128 * 1024 + 10) + '"')
    report = run(session, schedules, write(tmp_path, HEADER + BO + huge), skip_bad_rows=True)
    assert report.file_errors and not report.written
    (error,) = report.errors
    assert error.line == 3 and "field larger than field limit" in error.problem
    assert patients(session) == 0


def test_rows_keep_the_line_they_start_on_after_a_quoted_line_break(
    session: Session, schedules: dict[str, Schedule], tmp_path: Path
) -> None:
    multi = 'A1,"Ana\nMaria",6175550123,,test-fusion,2026-03-10,,en,no,sms\n'
    bad = "A2,Bo,6175550124,,nope,2026-03-11,,en,no,sms\n"
    report = run(session, schedules, write(tmp_path, HEADER + multi + bad))
    assert [(e.line, e.column) for e in report.errors] == [(4, "procedure")]


def test_many_rows_enroll_in_chunks_in_one_transaction(
    session: Session, schedules: dict[str, Schedule], tmp_path: Path
) -> None:
    rows = "".join(f"M{i},Pat,617555{i:04d},,test-fusion,2026-03-10,,en,no,sms\n" for i in range(1100))
    report = run(session, schedules, write(tmp_path, HEADER + rows))
    session.commit()
    assert report.written and report.enrolled is not None and report.enrolled.enrollments == 1100
    assert session.scalar(select(func.count()).select_from(Enrollment)) == 1100


def test_a_repeat_past_the_first_chunk_is_still_found(
    session: Session, schedules: dict[str, Schedule], tmp_path: Path
) -> None:
    rows = "".join(f"M{i},Pat,617555{i:04d},,test-fusion,2026-03-10,,en,no,sms\n" for i in range(1200))
    rows += "M3,Pat,6175550003,,test-fusion,2026-03-10,,en,no,sms\n"
    report = run(session, schedules, write(tmp_path, HEADER + rows))
    assert not report.written
    assert [(e.line, e.column) for e in report.errors] == [(1202, "mrn")]
    assert "already on line 5" in report.errors[0].problem


def test_an_odd_surgery_date_is_refused_unless_forced_and_then_a_warning(
    session: Session, schedules: dict[str, Schedule], tmp_path: Path
) -> None:
    far = "A3,Cy,6175550125,,test-fusion,2027-06-01,,en,no,sms\n"  # 457 days after NOW
    path = write(tmp_path, HEADER + ANA + far)
    refused = run(session, schedules, path)
    assert not refused.written and patients(session) == 0
    assert [(e.line, e.column) for e in refused.errors] == [(3, "surgery_date")]
    assert "more than a year" in refused.errors[0].problem
    forced = run(session, schedules, path, force=True)
    assert forced.written and patients(session) == 2 and not forced.errors
    assert [(w.line, w.column) for w in forced.warnings] == [(3, "surgery_date")]
