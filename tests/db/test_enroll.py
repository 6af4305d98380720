from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from checkin.core.schedule import Schedule
from checkin.core.schedule.load import parse_schedule_text
from checkin.enrollment.enroll import EnrollRequest, enroll, enroll_many, parse_request, reschedule, withdraw
from checkin.enrollment.importer import import_csv
from checkin.errors import EnrollmentError
from checkin.store.models import AuditEvent, Enrollment, OutboxMessage, Patient

NOW = datetime(2026, 3, 1, 15, 0, tzinfo=UTC)
SURGERY = date(2026, 3, 10)

SCHEDULE_YAML = """\
id: test-fusion
name: Test fusion
send_window: ["09:00", "20:00"]
steps:
  - id: smoking
    day: -7
    time: "11:00"
    when: smoker
    message: smoking_cessation
  - id: fever
    day: 1
    time: "10:00"
    every: 1
    until: 14
    message: fever_check
    ask: fever_check
  - id: calcium
    day: 1
    time: "18:00"
    every: 7
    until: 84
    message: calcium_vitamin_d
"""


@pytest.fixture
def schedules() -> dict[str, Schedule]:
    return {"test-fusion": parse_schedule_text(SCHEDULE_YAML, "test-fusion.yaml")}


def request(mrn: str = "M1", **kw: object) -> dict[str, object]:
    base: dict[str, object] = {
        "mrn": mrn,
        "first_name": "Ana",
        "phone": "(617) 555-0123",
        "procedure": "test-fusion",
        "surgery_date": SURGERY.isoformat(),
        "timezone": "America/New_York",
    }
    base.update(kw)
    return base


def parse(schedules: dict[str, Schedule], **kw: object) -> EnrollRequest:
    return parse_request(
        request(**kw), schedules=schedules, default_region="US", default_timezone="America/New_York"
    )


def outbox(session: Session) -> list[OutboxMessage]:
    return list(session.scalars(select(OutboxMessage).order_by(OutboxMessage.due_at, OutboxMessage.key)))


# ---- parse_request -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"mrn": ""}, "mrn"),
        ({"first_name": "  "}, "first_name"),
        ({"first_name": "A" * 31}, "first_name"),  # texts are measured with names up to 30
        ({"phone": "12"}, "phone"),
        ({"phone": "not a phone"}, "phone"),
        ({"phone": ""}, "phone"),  # sms needs a phone
        ({"procedure": "knee"}, "procedure"),
        ({"surgery_date": "03/10/2026"}, "surgery_date"),
        ({"timezone": "EST5"}, "timezone"),
        ({"language": "fr"}, "language"),
        ({"channel": "fax"}, "channel"),
        ({"channel": "email"}, "email"),
        ({"email": "not-an-address"}, "email"),
        ({"smoker": "sometimes"}, "smoker"),
        ({"attributes": "brace,wings"}, "attributes"),
    ],
)
def test_it_names_the_bad_field(
    schedules: dict[str, Schedule], change: dict[str, object], field: str
) -> None:
    with pytest.raises(EnrollmentError) as e:
        parse(schedules, **change)
    assert e.value.field == field


def test_it_normalizes_phone_numbers_to_e164(schedules: dict[str, Schedule]) -> None:
    assert parse(schedules, phone="617.555.0123").phone == "+16175550123"


def test_it_reads_smoker_and_attributes(schedules: dict[str, Schedule]) -> None:
    req = parse(schedules, smoker="Yes", attributes="brace; diabetic")
    assert req.attributes == {"smoker", "brace", "diabetic"}


# ---- enroll ------------------------------------------------------------------------------


def test_it_plans_the_timeline_in_the_same_transaction(
    session: Session, schedules: dict[str, Schedule]
) -> None:
    enroll(session, parse(schedules, smoker=True), schedules=schedules, now=NOW)
    session.commit()
    rows = outbox(session)
    steps = [r.step_id for r in rows]
    assert steps.count("fever") == 14 and steps.count("calcium") == 12 and steps.count("smoking") == 1
    assert len({r.key for r in rows}) == len(rows)
    assert all(r.status == "pending" and r.due_at.tzinfo is not None for r in rows)
    patient = session.scalar(select(Patient))
    assert patient is not None and patient.reference.startswith("P-")


def test_it_skips_steps_only_for_patients_they_do_not_apply_to(
    session: Session, schedules: dict[str, Schedule]
) -> None:
    enroll(session, parse(schedules), schedules=schedules, now=NOW)
    assert "smoking" not in {r.step_id for r in outbox(session)}


def test_it_does_not_plan_steps_already_past_at_enrollment(
    session: Session, schedules: dict[str, Schedule]
) -> None:
    late = SURGERY + timedelta(days=5)
    enroll(session, parse(schedules), schedules=schedules, now=datetime(2026, 3, 15, 20, tzinfo=UTC))
    rows = outbox(session)
    assert min(r.due_at for r in rows).date() >= late
    assert all(r.due_at >= datetime(2026, 3, 15, 20, tzinfo=UTC) for r in rows)


def test_it_refuses_to_enroll_the_same_mrn_twice_on_one_procedure(
    session: Session, schedules: dict[str, Schedule]
) -> None:
    enroll(session, parse(schedules), schedules=schedules, now=NOW)
    session.commit()
    before = session.scalar(select(func.count()).select_from(OutboxMessage))
    with pytest.raises(EnrollmentError, match="already enrolled"):
        enroll(session, parse(schedules), schedules=schedules, now=NOW)
    session.rollback()
    assert session.scalar(select(func.count()).select_from(OutboxMessage)) == before
    assert session.scalar(select(func.count()).select_from(Enrollment)) == 1


def test_it_allows_a_new_enrollment_after_withdrawal(
    session: Session, schedules: dict[str, Schedule]
) -> None:
    enroll(session, parse(schedules), schedules=schedules, now=NOW)
    withdraw(session, "M1", now=NOW)
    enroll(session, parse(schedules, surgery_date="2026-06-01"), schedules=schedules, now=NOW)
    session.commit()
    assert session.scalar(select(func.count()).select_from(Enrollment)) == 2
    assert session.scalar(select(func.count()).select_from(Patient)) == 1


def test_it_writes_an_audit_event_without_patient_details(
    session: Session, schedules: dict[str, Schedule]
) -> None:
    enroll(session, parse(schedules), schedules=schedules, now=NOW)
    session.commit()
    event = session.scalar(select(AuditEvent).where(AuditEvent.action == "enrollment.created"))
    assert event is not None and event.patient_ref is not None
    dumped = repr(event.detail)
    assert "Ana" not in dumped and "555" not in dumped and "M1" not in dumped


def test_it_enrolls_many_with_one_plan_per_distinct_input(
    session: Session, schedules: dict[str, Schedule]
) -> None:
    reqs = [parse(schedules, mrn=f"M{i}") for i in range(50)]
    result = enroll_many(session, reqs, schedules=schedules, now=NOW)
    session.commit()
    assert result.enrollments == 50 and result.planned == 50 * 26
    assert session.scalar(select(func.count(func.distinct(OutboxMessage.key)))) == 50 * 26


# ---- reschedule / withdraw -------------------------------------------------------------


def test_it_reschedules_unsent_messages_under_the_same_keys(
    session: Session, schedules: dict[str, Schedule]
) -> None:
    enroll(session, parse(schedules), schedules=schedules, now=NOW)
    session.commit()
    before = {r.key: r.due_at for r in outbox(session)}
    result = reschedule(session, "M1", SURGERY + timedelta(days=7), schedules=schedules, now=NOW)
    session.commit()
    after = {r.key: r.due_at for r in outbox(session)}
    assert set(after) == set(before)
    assert all(after[k] - before[k] == timedelta(days=7) for k in before)
    assert result.updated == len(before) and result.added == 0


def test_it_keeps_sent_messages_as_history_when_rescheduling(
    session: Session, schedules: dict[str, Schedule]
) -> None:
    enroll(session, parse(schedules), schedules=schedules, now=NOW)
    session.commit()
    first = outbox(session)[0]
    first.status, first.sent_at = "sent", NOW
    sent_due = first.due_at
    session.commit()
    result = reschedule(session, "M1", SURGERY + timedelta(days=3), schedules=schedules, now=NOW)
    session.commit()
    rows = outbox(session)
    sent = [r for r in rows if r.status == "sent"]
    assert len(sent) == 1 and sent[0].due_at == sent_due
    assert result.kept_history == 1
    assert len({r.key for r in rows}) == len(rows)


def test_it_cancels_messages_that_fall_in_the_past_after_rescheduling(
    session: Session, schedules: dict[str, Schedule]
) -> None:
    enroll(session, parse(schedules), schedules=schedules, now=NOW)
    session.commit()
    result = reschedule(session, "M1", date(2026, 2, 20), schedules=schedules, now=NOW)
    session.commit()
    rows = outbox(session)
    assert result.cancelled > 0
    assert all(r.due_at >= NOW for r in rows if r.status == "pending")
    assert {r.status_reason for r in rows if r.status == "cancelled"} == {"rescheduled"}


def test_it_cancels_pending_messages_on_withdrawal(session: Session, schedules: dict[str, Schedule]) -> None:
    enroll(session, parse(schedules), schedules=schedules, now=NOW)
    session.commit()
    n = withdraw(session, "M1", now=NOW)
    session.commit()
    assert n == 26
    assert {r.status for r in outbox(session)} == {"cancelled"}


def test_it_says_when_there_is_nothing_to_reschedule(
    session: Session, schedules: dict[str, Schedule]
) -> None:
    with pytest.raises(EnrollmentError, match="no patient"):
        reschedule(session, "nobody", SURGERY, schedules=schedules, now=NOW)


# ---- CSV import --------------------------------------------------------------------------

HEADER = "mrn,first_name,phone,email,procedure,surgery_date,timezone,language,smoker,channel\n"


def write_csv(tmp_path: Path, body: str, header: str = HEADER) -> Path:
    path = tmp_path / "patients.csv"
    path.write_text(header + body, encoding="utf-8")
    return path


def run_import(session: Session, schedules: dict[str, Schedule], path: Path, **kw: object):  # type: ignore[no-untyped-def]
    return import_csv(
        session,
        path,
        schedules=schedules,
        default_region="US",
        default_timezone="America/New_York",
        now=NOW,
        **kw,
    )  # type: ignore[arg-type]


def test_it_imports_every_valid_row(session: Session, schedules: dict[str, Schedule], tmp_path: Path) -> None:
    path = write_csv(
        tmp_path,
        "A1,Ana,6175550123,,test-fusion,2026-03-10,America/Chicago,es,yes,sms\n"
        "A2,Bo,6175550124,bo@example.org,test-fusion,2026-03-11,,en,no,both\n",
    )
    report = run_import(session, schedules, path)
    session.commit()
    assert report.written and not report.errors
    assert session.scalar(select(func.count()).select_from(Enrollment)) == 2


def test_it_writes_nothing_when_any_row_is_bad_and_names_line_and_column(
    session: Session, schedules: dict[str, Schedule], tmp_path: Path
) -> None:
    path = write_csv(
        tmp_path,
        "A1,Ana,6175550123,,test-fusion,2026-03-10,,en,no,sms\n"
        "A2,Bo,12,,test-fusion,2026-03-11,,en,no,sms\n"
        "A3,Cy,6175550125,,test-fusion,2026-13-01,,en,no,sms\n",
    )
    report = run_import(session, schedules, path)
    session.commit()
    assert not report.written
    assert [(e.line, e.column) for e in report.errors] == [(3, "phone"), (4, "surgery_date")]
    assert session.scalar(select(func.count()).select_from(Patient)) == 0


def test_it_imports_the_good_rows_when_told_to_skip_bad_ones(
    session: Session, schedules: dict[str, Schedule], tmp_path: Path
) -> None:
    path = write_csv(
        tmp_path,
        "A1,Ana,6175550123,,test-fusion,2026-03-10,,en,no,sms\nA2,Bo,12,,test-fusion,2026-03-11,,en,no,sms\n",
    )
    report = run_import(session, schedules, path, skip_bad_rows=True)
    session.commit()
    assert report.written and len(report.errors) == 1
    assert session.scalar(select(func.count()).select_from(Patient)) == 1


def test_it_reports_an_mrn_repeated_in_the_file(
    session: Session, schedules: dict[str, Schedule], tmp_path: Path
) -> None:
    path = write_csv(
        tmp_path,
        "A1,Ana,6175550123,,test-fusion,2026-03-10,,en,no,sms\n"
        "A1,Ana,6175550123,,test-fusion,2026-03-10,,en,no,sms\n",
    )
    report = run_import(session, schedules, path)
    assert [(e.line, e.column) for e in report.errors] == [(3, "mrn")]
    assert "line 2" in report.errors[0].problem


@pytest.mark.parametrize(
    ("header", "column"),
    [
        ("mrn,first_name,procedure,surgery_date,shoe_size\n", "shoe_size"),
        ("mrn,first_name,procedure\n", "surgery_date"),
        ("mrn,mrn,first_name,procedure,surgery_date\n", "mrn"),
    ],
)
def test_it_rejects_a_bad_header(
    session: Session, schedules: dict[str, Schedule], tmp_path: Path, header: str, column: str
) -> None:
    report = run_import(session, schedules, write_csv(tmp_path, "", header=header))
    assert [(e.line, e.column) for e in report.errors] == [(1, column)]


def test_it_rejects_a_row_with_the_wrong_number_of_fields(
    session: Session, schedules: dict[str, Schedule], tmp_path: Path
) -> None:
    report = run_import(session, schedules, write_csv(tmp_path, "A1,Ana\n"))
    assert [e.line for e in report.errors] == [2] and "fields" in report.errors[0].problem
