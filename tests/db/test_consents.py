"""The consent history: what enrollment records (CSV file and line, the Python API), that a bad
file records nothing, that rows cannot be changed, and the migration on both databases."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, datetime, timedelta
from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import inspect, select, text
from sqlalchemy.orm import Session

from checkin.core.schedule import Schedule
from checkin.enrollment.enroll import EnrollRequest, enroll, enroll_many
from checkin.store import consents
from checkin.store.consents import Consent, Provenance
from checkin.store.db import alembic_config, make_engine, upgrade
from checkin.store.models import AppendOnlyError, Patient
from tests.conftest import throwaway_database
from tests.db import test_csv_import
from tests.db.test_csv_import import ANA, HEADER, NOW
from tests.db.test_csv_import import run as _import

schedules = test_csv_import.schedules  # the same one-step schedule, as a fixture here
BO = "A2,Bo,6175550124,bo@example.org,test-fusion,2026-03-11,,en,no,both\n"


def _rows(session: Session) -> list[tuple[str, str, str, str, str, datetime]]:
    return [
        (mrn, c.channel, c.decision, c.source, c.recorded_by, c.recorded_at)
        for c, mrn in session.execute(
            select(Consent, Patient.mrn).join(Patient, Patient.id == Consent.patient_id).order_by(Consent.id)
        )
    ]


def _request(mrn: str = "M1", email: str | None = None) -> EnrollRequest:
    return EnrollRequest(
        mrn=mrn,
        first_name="Ana",
        phone="+16175550123",
        email=email,
        procedure="test-fusion",
        surgery_date=date(2026, 3, 10),
        timezone="America/New_York",
    )


def test_a_csv_import_records_each_row_by_file_and_line(
    session: Session, schedules: dict[str, Schedule], tmp_path: Path
) -> None:
    path = tmp_path / "march.csv"
    path.write_text(HEADER + ANA + BO, encoding="utf-8")
    report = _import(session, schedules, path)
    assert report.written, report.errors
    session.commit()
    assert _rows(session) == [
        ("A1", "sms", "granted", "csv", "csv:march.csv:2", NOW),
        ("A2", "sms", "granted", "csv", "csv:march.csv:3", NOW),
        ("A2", "email", "granted", "csv", "csv:march.csv:3", NOW),
    ]


def test_a_csv_with_a_bad_row_records_nothing(
    session: Session, schedules: dict[str, Schedule], tmp_path: Path
) -> None:
    path = tmp_path / "march.csv"
    path.write_text(HEADER + ANA + BO.replace("6175550124", "555-01"), encoding="utf-8")
    report = _import(session, schedules, path)
    assert not report.written and report.errors
    session.commit()
    assert _rows(session) == []


def test_the_python_api_records_its_actor_unless_told_the_source(
    session: Session, schedules: dict[str, Schedule]
) -> None:
    enroll(session, _request("M1"), schedules=schedules, now=NOW, actor="importer-job")
    later = NOW + timedelta(hours=1)
    enroll(session, _request("M2"), schedules=schedules, now=later, consent=Provenance("cli", "cli"))
    session.commit()
    assert _rows(session) == [
        ("M1", "sms", "granted", "api", "importer-job", NOW),
        ("M2", "sms", "granted", "cli", "cli", later),
    ]


@pytest.mark.parametrize("given", [0, 2])
def test_a_batch_with_the_wrong_number_of_provenances_records_nothing(
    session: Session, schedules: dict[str, Schedule], given: int
) -> None:
    with pytest.raises(ValueError, match=f"{given} consent provenance"):
        enroll_many(
            session, [_request("M1")], schedules=schedules, now=NOW, consent=[Provenance("api", "a")] * given
        )
    assert _rows(session) == [] and session.scalar(select(Patient.id)) is None


def test_current_is_the_latest_decision_per_channel(session: Session, schedules: dict[str, Schedule]) -> None:
    enroll(session, _request("M1", email="ana@example.org"), schedules=schedules, now=NOW)
    pid = session.scalars(select(Patient.id)).one()
    stop = Provenance("patient-keyword", "patient", "STOP")
    consents.record(session, pid, "sms", consents.REVOKED, stop, at=NOW + timedelta(days=1))
    now = {c: (r.decision, r.source) for c, r in consents.current(consents.history(session, pid)).items()}
    assert now == {"sms": ("revoked", "patient-keyword"), "email": ("granted", "api")}


def test_a_consent_row_cannot_be_changed(session: Session, schedules: dict[str, Schedule]) -> None:
    enroll(session, _request("M1"), schedules=schedules, now=NOW)
    session.commit()
    row = session.scalars(select(Consent)).one()
    row.decision = consents.REVOKED
    with pytest.raises(AppendOnlyError):
        session.commit()
    session.rollback()
    session.delete(session.scalars(select(Consent)).one())
    with pytest.raises(AppendOnlyError):
        session.commit()


def test_an_unknown_source_or_channel_is_refused() -> None:
    with pytest.raises(ValueError, match="not one of"):
        Provenance("fax", "x")
    with pytest.raises(ValueError, match="not one of"):
        consents.values(1, "pager", consents.GRANTED, Provenance("api", "x"), NOW)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def fresh_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'fresh.db'}"
        return
    with throwaway_database("checkin_consents") as url:
        yield url


def test_the_migration_adds_consents_to_a_database_with_patients(fresh_url: str) -> None:
    upgrade(fresh_url, "0012")
    engine = make_engine(fresh_url)
    try:
        with engine.begin() as conn:
            conn.execute(
                text(
                    "INSERT INTO patients (reference, mrn, first_name, email_consent, language, timezone,"
                    " sms_opted_out, phone_status, created_at)"
                    " VALUES ('P-AAAAAAA', 'M1', 'Ana', false, 'en', 'UTC', false, 'ok', :at)"
                ),
                {"at": NOW.replace(tzinfo=None)},
            )
        assert "consents" not in inspect(engine).get_table_names()
        upgrade(fresh_url)
        with engine.begin() as conn:
            conn.execute(
                text(
                    "INSERT INTO consents (patient_id, channel, decision, source, recorded_at, recorded_by)"
                    " SELECT id, 'sms', 'granted', 'api', :at, 'migration-test' FROM patients"
                ),
                {"at": NOW.replace(tzinfo=None)},
            )
            assert conn.execute(text("SELECT count(*) FROM consents")).scalar_one() == 1
        columns = {c["name"] for c in inspect(engine).get_columns("consents")}
        assert {"patient_id", "channel", "decision", "source", "recorded_at", "recorded_by"} <= columns
        command.downgrade(alembic_config(fresh_url), "0012")
        assert "consents" not in inspect(engine).get_table_names()
    finally:
        engine.dispose()
