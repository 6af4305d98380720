"""The HL7 feed on SQLite and PostgreSQL: each message type changes what it should, ACKs say so,
resends change nothing, and a wrong message changes nothing but its stored row."""

from __future__ import annotations

from dataclasses import replace
from datetime import date

import hl7
import pytest
from sqlalchemy import func, select
from sqlalchemy.engine import Engine

from checkin.states import EnrollmentStatus
from checkin.store.db import session_factory
from checkin.store.hl7_messages import Hl7Message
from checkin.store.models import Appointment, AuditEvent, Enrollment, OutboxMessage, Patient
from tests.integrations.support import adt, feed, pid, siu


def _ack(text: str) -> tuple[str, str, str]:
    """(MSA-1, MSA-2, ERR-8 or '') of an ACK."""
    msg = hl7.parse(text.strip("\r"))
    err = msg.segment("ERR") if "\rERR|" in text else None
    return str(msg["MSA.F1"]), str(msg["MSA.F2"]), str(msg.unescape(str(err(8)))) if err else ""


def _counts(engine: Engine) -> tuple[int, int, int, int]:
    with session_factory(engine)() as s:
        return tuple(  # type: ignore[return-value]
            s.scalar(select(func.count()).select_from(m)) or 0
            for m in (Patient, Enrollment, OutboxMessage, AuditEvent)
        )


def _enrollment(engine: Engine) -> Enrollment:
    with session_factory(engine)() as s:
        return s.scalars(select(Enrollment).order_by(Enrollment.id.desc())).first()  # type: ignore[return-value]


def test_s12_enrolls_on_the_mapped_schedule(engine: Engine, default_schedules: dict) -> None:
    out = feed(engine, default_schedules).handle(siu(control="C1", pid_segment=pid(lang="SPA")))
    assert _ack(out.ack)[:2] == ("AA", "C1") and out.code == "AA"
    e = _enrollment(engine)
    assert (e.procedure, e.surgery_date, e.status) == (
        "lumbar-fusion",
        date(2026, 3, 20),
        EnrollmentStatus.ACTIVE,
    )
    with session_factory(engine)() as s:
        p = s.scalars(select(Patient)).one()
        row = s.scalars(select(Hl7Message)).one()
        planned = s.scalar(select(func.count()).select_from(OutboxMessage))
        assert (p.mrn, p.phone, p.language, p.timezone) == ("100234", "+13125550147", "es", "America/Chicago")
        assert (row.outcome, row.ack_code, row.patient_ref, row.message_type) == (
            "accepted",
            "AA",
            p.reference,
            "SIU^S12",
        )
        assert planned and planned > 10


def test_a_resent_message_gets_the_same_ack_and_changes_nothing(
    engine: Engine, default_schedules: dict
) -> None:
    f = feed(engine, default_schedules)
    first = f.handle(siu(control="SAME"))
    before = _counts(engine)
    again = f.handle(siu(control="SAME", start="20260401073000"))
    assert again.ack == first.ack and again.duplicate
    assert _counts(engine) == before
    assert _enrollment(engine).surgery_date == date(2026, 3, 20)


def test_s13_moves_the_timeline_and_s15_withdraws(engine: Engine, default_schedules: dict) -> None:
    f = feed(engine, default_schedules)
    f.handle(siu())
    moved = f.handle(siu("S13", start="20260327080000"))
    assert moved.code == "AA"
    assert _enrollment(engine).surgery_date == date(2026, 3, 27)
    assert f.handle(siu("S15")).code == "AA"
    assert _enrollment(engine).status == EnrollmentStatus.WITHDRAWN


def test_a03_sets_the_discharge_date(engine: Engine, default_schedules: dict) -> None:
    f = feed(engine, default_schedules)
    f.handle(siu())
    pv1 = "|".join(["PV1", "1", "I", *[""] * 42, "20260323143000"])  # PV1-45: discharge date/time
    out = f.handle(adt("A03", pid(), pv1))
    assert out.code == "AA", out.ack
    assert _enrollment(engine).discharge_date == date(2026, 3, 23)


def test_a_follow_up_visit_becomes_the_patients_appointment(engine: Engine, default_schedules: dict) -> None:
    f = feed(engine, default_schedules)
    f.handle(siu())
    out = f.handle(
        siu(code="", appointment_type="POSTOP-6W^Six week visit", start="20260501093000", booking="V77")
    )
    assert out.code == "AA", out.ack
    with session_factory(engine)() as s:
        a = s.scalars(select(Appointment)).one()
        assert (a.kind, a.source, a.external_id, a.status) == ("six_week_visit", "hl7", "V77-F", "booked")
    assert f.handle(siu("S15", code="", appointment_type="POSTOP-6W", booking="V77")).code == "AA"
    with session_factory(engine)() as s:
        assert s.scalars(select(Appointment.status)).one() == "cancelled"


def test_a08_updates_contact_details_and_a40_merges(engine: Engine, default_schedules: dict) -> None:
    f = feed(engine, default_schedules)
    f.handle(siu())
    assert f.handle(adt("A08", pid(phone="312-555-0199", email="maria@example.org", lang="SPA"))).code == "AA"
    assert f.handle(adt("A40", pid("200999"), "MRG|100234^^^RIV^MR")).code == "AA"
    with session_factory(engine)() as s:
        p = s.scalars(select(Patient)).one()
        assert (p.mrn, p.phone, p.email, p.language) == ("200999", "+13125550199", "maria@example.org", "es")


@pytest.mark.parametrize(
    ("message", "code", "text"),
    [
        (siu(pid_segment=pid(phone="555-01")), "AE", "PID-13: '555-01' has the wrong number of digits"),
        (siu(pid_segment=pid(phone="call me")), "AE", "PID-13: 'call me' is not a phone number"),
        (
            siu(pid_segment="PID|1||^^^RIV^MR||Reyes^Maria"),
            "AE",
            "PID-3: the patient identifier (MRN) is missing",
        ),
        (siu(start="2026-03-20"), "AE", "AIS-4: '2026-03-20' is not a date like 20270314"),
        (siu(start="20260231"), "AE", "AIS-4: '20260231' is not a date that exists"),
        (siu(code="99999^Unknown^CPT"), "AE", "AIS-3: code '99999' is not a procedure or appointment type"),
        (siu(facility="ELSEWHERE"), "AR", "MSH-6: facility 'ELSEWHERE' is not served here"),
        (siu().replace("SIU^S12^SIU_S12", "ORU^R01^ORU_R01"), "AR", "MSH-9: message type 'ORU^R01'"),
        ("PID|1||100234\r", "AR", "MSH: the message does not start with an MSH segment"),
        (
            siu(extra=("this is not a segment",)),
            "AE",
            "segment 6: 'this is not a segmen' is not a segment id",
        ),
        (siu(start="20240101"), "AE", "AIS-4: surgery date 2024-01-01 is 792 day(s) in the past"),
    ],
)
def test_a_wrong_message_is_refused_naming_the_field_and_changes_nothing(
    engine: Engine, default_schedules: dict, message: str, code: str, text: str
) -> None:
    before = _counts(engine)
    out = feed(engine, default_schedules).handle(message)
    msa, _, err = _ack(out.ack)
    assert (msa, out.code) == (code, code)
    assert err.startswith(text) or text in err, err
    assert _counts(engine) == before
    with session_factory(engine)() as s:
        row = s.scalars(select(Hl7Message)).one()
        assert row.outcome == ("error" if code == "AE" else "rejected") and row.raw == message
        assert row.problem is not None and text.split(":")[0] in row.problem


def test_nothing_is_half_applied(engine: Engine, default_schedules: dict) -> None:
    """A08 with a good phone and a bad email: the phone is not changed either."""
    f = feed(engine, default_schedules)
    f.handle(siu())
    out = f.handle(adt("A08", pid(phone="312-555-0199", email="not an address")))
    assert out.code == "AE" and "PID-13.4: 'not an address' is not an email address" in _ack(out.ack)[2]
    with session_factory(engine)() as s:
        assert s.scalars(select(Patient.phone)).one() == "+13125550147"


def test_a_refused_message_is_replayed_once_the_mapping_knows_its_code(
    engine: Engine, default_schedules: dict
) -> None:
    f = feed(engine, default_schedules)
    refused = f.handle(siu(control="R1", code="22614^Fusion, extra level^CPT"))
    assert refused.code == "AE" and refused.message_id is not None
    fixed = replace(f.mapping, procedures={**f.mapping.procedures, "22614": "lumbar-fusion"})
    f.mapping = fixed
    out = f.replay(refused.message_id)
    assert out.code == "AA"
    with session_factory(engine)() as s:
        row = s.get(Hl7Message, refused.message_id)
        assert row is not None and (row.outcome, row.replays, row.ack) == ("accepted", 1, out.ack)
    assert f.handle(siu(control="R1", code="22614^Fusion, extra level^CPT")).ack == out.ack
    assert _enrollment(engine).procedure == "lumbar-fusion"


def test_patient_data_stays_out_of_the_logs(
    engine: Engine, default_schedules: dict, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("DEBUG")
    f = feed(engine, default_schedules)
    f.handle(siu(pid_segment=pid("778899", first="Zelda", phone="555-01")))
    f.handle(siu(pid_segment=pid("778899", first="Zelda")))
    logged = " ".join(f"{r.getMessage()} {r.__dict__}" for r in caplog.records)
    assert "hl7.refused" in logged and "hl7.accepted" in logged
    for phi in ("778899", "Zelda", "555-01", "5550147", "Reyes"):
        assert phi not in logged


def test_adt_about_a_patient_checkin_does_not_follow_is_acknowledged_and_ignored(
    engine: Engine, default_schedules: dict
) -> None:
    """An ADT feed carries the whole hospital: an A08 or A03 for someone never enrolled (or
    withdrawn) is not an error for the engine to chase."""
    f = feed(engine, default_schedules)
    before = _counts(engine)
    pv1 = "|".join(["PV1", "1", "I", *[""] * 42, "20260323"])
    outs = [f.handle(adt("A08", pid("999001"))), f.handle(adt("A03", pid("999001"), pv1))]
    assert [o.code for o in outs] == ["AA", "AA"]
    assert _counts(engine) == before
    f.handle(siu(pid_segment=pid("999002")))
    f.handle(siu("S15", pid_segment=pid("999002")))
    assert f.handle(adt("A03", pid("999002"), pv1)).code == "AA"  # withdrawn: nothing to move
    assert _enrollment(engine).discharge_date is None
    with session_factory(engine)() as s:
        refs = s.scalars(select(Hl7Message.patient_ref).where(Hl7Message.message_type.like("ADT%"))).all()
        assert refs == [None, None, None]
