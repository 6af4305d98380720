"""A reply stored unprocessed (processing failed) is processed later by the worker's sweep."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, select

from checkin.deps import Services
from checkin.inbound.process import InboundSms, insert_once
from checkin.inbound.reprocess import SETTLE, reprocess_once
from checkin.store.models import Alert, InboundMessage
from tests.inbound.support import ANA_PHONE, NOW, add_patient


def arrange(services: Services) -> None:
    with services.sessions.begin() as s:
        add_patient(s)


def store_unprocessed(services: Services, body: str, sid: str, phone: str) -> None:
    with services.sessions.begin() as s:
        insert_once(s, InboundSms(message_sid=sid, from_phone=phone, body=body), NOW)


def test_it_processes_a_stored_reply_once_things_work_again(services: Services) -> None:
    arrange(services)
    store_unprocessed(services, "fever of 103 and chills", "SMlate1", ANA_PHONE)
    assert reprocess_once(services, NOW + SETTLE / 2) == 0  # its own webhook may still be running
    assert reprocess_once(services, NOW + SETTLE) == 1
    with services.sessions() as s:
        row = s.scalars(select(InboundMessage)).one()
        assert row.processed_at is not None and row.severity == "urgent" and "fever" in row.flags
        assert row.received_at == NOW and row.patient_id is not None
        assert s.scalar(select(func.count()).select_from(Alert)) == 1
    assert reprocess_once(services, NOW + timedelta(hours=1)) == 0  # done once


def test_it_leaves_a_reply_that_fails_again_for_the_next_pass(services: Services, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    import checkin.inbound.process as inbound_mod

    arrange(services)
    store_unprocessed(services, "my incision is leaking", "SMlate2", ANA_PHONE)

    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("still broken")

    monkeypatch.setattr(inbound_mod, "process", broken)
    assert reprocess_once(services, NOW + SETTLE) == 0
    with services.sessions() as s:
        row = s.scalars(select(InboundMessage)).one()
        assert row.message_sid == "SMlate2" and row.processed_at is None
