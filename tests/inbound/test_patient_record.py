"""A patient's record as staff read it: found by MRN or reference, with both sides of the
conversation, alerts and timeline, and an audit row for the look."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from checkin.deps import Services
from checkin.inbound.process import InboundSms, handle_sms
from checkin.store.models import AuditEvent
from checkin.store.patient_record import find_patient, read_record
from tests.inbound.support import ANA_PHONE, NOW, add_outbox, add_patient, new_sid


def test_it_finds_by_mrn_or_reference_and_shows_the_conversation_alerts_and_audit(services: Services) -> None:
    with services.sessions.begin() as s:
        patient = add_patient(s)
        question = add_outbox(
            s, patient, message="wound_check", ask="wound_check", sent_at=NOW - timedelta(hours=1)
        )
        mrn, ref, question_id = patient.mrn, patient.reference, question.id
    handle_sms(services, InboundSms(new_sid(), ANA_PHONE, "yes it is leaking pus"), NOW)

    with services.sessions.begin() as s:
        assert find_patient(s, "no-such") is None
        by_ref = find_patient(s, ref.lower())
        assert by_ref is not None and find_patient(s, mrn) is by_ref
        record = read_record(s, by_ref, actor="cli:nurse", now=NOW)

    turns = [(t.direction, t.message) for t in record.conversation]
    assert ("out", "wound_check") in turns  # the question we sent
    inbound = next(t for t in record.conversation if t.direction == "in")
    assert inbound.text == "yes it is leaking pus" and "urgent" in inbound.note
    assert ("out", "reply_urgent") in turns  # the answer, which only the audit log names
    assert [t.direction for t in record.conversation] == ["out", "in", "out"]  # in time order
    (alert,) = record.alerts
    assert alert.kind == "red_flag"
    ((_, timeline),) = record.enrollments or [(None, [])]
    assert question_id in {r.id for r in timeline}
    with services.sessions() as s:
        viewed = s.scalars(select(AuditEvent).where(AuditEvent.action == "patient.viewed")).all()
    assert [(v.actor, v.patient_ref) for v in viewed] == [("cli:nurse", ref)]
