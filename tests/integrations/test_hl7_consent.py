"""An SIU^S12 records the patient's consent as the feed's: sender and control id, the clock's
time; a refused or resent message records none."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.engine import Engine

from checkin.clock import ManualClock
from checkin.store.consents import Consent
from checkin.store.db import session_factory
from checkin.store.models import Patient
from tests.integrations.support import feed, pid, siu
from tests.support import NOW


def _consents(engine: Engine) -> list[tuple[str, str, str, str, str | None]]:
    with session_factory(engine)() as s:
        return [
            (c.channel, c.decision, c.source, c.recorded_by, c.evidence)
            for c in s.scalars(select(Consent).order_by(Consent.id))
        ]


def test_an_s12_records_consent_by_the_sending_facility_and_control_id(
    engine: Engine, default_schedules: dict
) -> None:
    clock = ManualClock(NOW + timedelta(minutes=7))
    message = siu(control="C-77", pid_segment=pid(email="maria@example.org"))
    assert feed(engine, default_schedules, clock).handle(message).code == "AA"
    by = "hl7:EPIC^RIVERSIDE C-77"  # MSH-3^MSH-4, MSH-10
    assert _consents(engine) == [
        ("sms", "granted", "hl7", by, "SIU^S12"),
        ("email", "granted", "hl7", by, "SIU^S12"),
    ]
    with session_factory(engine)() as s:
        row = s.scalars(select(Consent)).first()
        patient = s.scalars(select(Patient)).one()
        assert row is not None and row.recorded_at == clock.now() and row.patient_id == patient.id


def test_a_resent_s12_records_no_second_consent(engine: Engine, default_schedules: dict) -> None:
    f = feed(engine, default_schedules)
    message = siu(control="C-78")
    assert f.handle(message).code == "AA"
    assert f.handle(message).duplicate
    assert [c[:3] for c in _consents(engine)] == [("sms", "granted", "hl7")]


def test_a_refused_message_records_no_consent(engine: Engine, default_schedules: dict) -> None:
    f = feed(engine, default_schedules)
    assert f.handle(siu(pid_segment=pid(phone="555-01"))).code == "AE"
    assert f.handle(siu(code="99999^Unknown^CPT")).code == "AE"
    assert _consents(engine) == []
