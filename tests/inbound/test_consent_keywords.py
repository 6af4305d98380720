"""A patient's STOP and START are their word on SMS: each is kept in the consent history."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from checkin.deps import Services
from checkin.inbound.process import InboundSms, handle_sms
from checkin.store.consents import Consent
from checkin.store.models import InboundMessage
from tests.inbound.support import ANA_PHONE, NOW, add_patient, new_sid


def _sms(body: str) -> InboundSms:
    return InboundSms(message_sid=new_sid(), from_phone=ANA_PHONE, body=body)


def test_stop_then_start_records_revoked_then_granted(services: Services) -> None:
    with services.sessions.begin() as s:
        pid = add_patient(s).id
    later = NOW + timedelta(hours=3)
    handle_sms(services, _sms("STOP"), NOW)
    handle_sms(services, _sms("start"), later)
    handle_sms(services, _sms("HELP"), later)  # no decision: nothing recorded
    with services.sessions() as s:
        rows = list(s.scalars(select(Consent).order_by(Consent.id)))
        inbound = list(s.scalars(select(InboundMessage.id).order_by(InboundMessage.id)))
    assert [(c.patient_id, c.channel, c.decision, c.source, c.recorded_by, c.recorded_at) for c in rows] == [
        (pid, "sms", "revoked", "patient-keyword", "patient", NOW),
        (pid, "sms", "granted", "patient-keyword", "patient", later),
    ]
    assert [c.evidence for c in rows] == [f"STOP (inbound:{inbound[0]})", f"START (inbound:{inbound[1]})"]
