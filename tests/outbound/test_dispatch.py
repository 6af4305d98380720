"""dispatch.run_once on both databases: claiming, re-checks at send time, rendering, pacing."""

from __future__ import annotations

import logging
import threading
from datetime import timedelta

import pytest
from sqlalchemy import select

from checkin.channels import OutgoingMessage, Receipt
from checkin.channels.memory import MemoryChannel
from checkin.deps import Services
from checkin.outbound.dispatch import run_once
from checkin.outbound.ratelimit import Pacer
from checkin.store.models import AuditEvent, OutboxMessage, Patient
from checkin.tokens import CHECKIN_SALT, read_token
from tests.outbound.support import NOW, add_patient, add_row, get_row, statuses

W = "worker-a"


def sms(services: Services) -> MemoryChannel:
    assert isinstance(services.sms, MemoryChannel)
    return services.sms


def test_it_sends_a_due_row_once_and_records_the_receipt(services: Services) -> None:
    with services.sessions() as s, s.begin():
        p, e = add_patient(s)
        row_id = add_row(s, p, e).id

    assert run_once(services, NOW, worker_id=W) == 1
    assert run_once(services, NOW + timedelta(minutes=5), worker_id=W) == 0

    row = get_row(services, row_id)
    assert (row.status, row.attempts, row.claimed_by, row.lease_until) == ("sent", 1, None, None)
    assert row.provider_id == "SM000001" and row.sent_at == NOW
    assert row.delivery_status == "accepted"
    assert [m.outbox_id for m in sms(services).sent] == [row_id]
    assert sms(services).sent[0].text.startswith("Ana, daily check from")


def test_it_commits_the_claim_before_calling_the_provider(services: Services) -> None:
    with services.sessions() as s, s.begin():
        p, e = add_patient(s)
        row_id = add_row(s, p, e).id
    seen: list[tuple[str, str | None]] = []

    class Peeking:
        def send(self, message: OutgoingMessage) -> Receipt:
            # A separate connection sees the claim: it was committed before this call.
            with services.sessions() as other:
                row = other.get(OutboxMessage, message.outbox_id)
                assert row is not None
                seen.append((row.status, row.claimed_by))
            return Receipt("SMpeek", "queued")

    services.sms = Peeking()
    run_once(services, NOW, worker_id=W)
    assert seen == [("sending", W)]
    assert get_row(services, row_id).status == "sent"


def test_it_claims_urgent_rows_before_an_earlier_wave(services: Services) -> None:
    with services.sessions() as s, s.begin():
        wave = []
        for _ in range(3):
            p, e = add_patient(s)
            wave.append(add_row(s, p, e, due=NOW - timedelta(minutes=30)).id)
        p, e = add_patient(s)
        urgent = add_row(
            s, p, None, step="safety", body="Call 911 now.", urgent=True, due=NOW, message="-", ask=None
        ).id

    run_once(services, NOW, worker_id=W, limit=1)
    assert [m.outbox_id for m in sms(services).sent] == [urgent]
    run_once(services, NOW, worker_id=W, limit=10)
    assert [m.outbox_id for m in sms(services).sent][1:] == wave


def test_it_leaves_rows_that_are_not_due_or_are_backing_off(services: Services) -> None:
    with services.sessions() as s, s.begin():
        p, e = add_patient(s)
        add_row(s, p, e, due=NOW + timedelta(seconds=1))
        add_row(s, p, e, step="b", due=NOW, next_attempt_at=NOW + timedelta(seconds=30))
        add_row(s, p, e, step="c", status="held")
    assert run_once(services, NOW, worker_id=W) == 0
    assert sms(services).attempts == []


def test_it_skips_an_expired_row_instead_of_sending_it_late(services: Services) -> None:
    with services.sessions() as s, s.begin():
        p, e = add_patient(s)
        row_id = add_row(s, p, e, due=NOW - timedelta(hours=7), expires=NOW - timedelta(seconds=1)).id
    run_once(services, NOW, worker_id=W)
    row = get_row(services, row_id)
    assert (row.status, row.status_reason, row.attempts) == ("skipped", "expired", 0)
    assert sms(services).attempts == []


def test_it_defers_a_row_outside_the_patients_send_window_to_the_next_opening(services: Services) -> None:
    # 15:00 UTC is midnight in Tokyo: the window opens at 09:00 JST = 00:00 UTC next day.
    with services.sessions() as s, s.begin():
        p, e = add_patient(s, timezone="Asia/Tokyo")
        later = add_row(s, p, e, expires=NOW + timedelta(hours=12)).id
        soon = add_row(s, p, e, step="b", expires=NOW + timedelta(hours=2)).id
    run_once(services, NOW, worker_id=W)
    deferred, skipped = get_row(services, later), get_row(services, soon)
    assert (deferred.status, deferred.next_attempt_at, deferred.attempts) == (
        "pending",
        NOW + timedelta(hours=9),
        0,
    )
    assert deferred.due_at == NOW  # the planned time stays as history
    assert (skipped.status, skipped.status_reason) == ("skipped", "expired (send window closed)")
    assert sms(services).attempts == []

    run_once(services, NOW + timedelta(hours=9), worker_id=W)
    assert get_row(services, later).status == "sent"


def test_it_sends_an_urgent_row_outside_the_send_window(services: Services) -> None:
    with services.sessions() as s, s.begin():
        p, e = add_patient(s, timezone="Asia/Tokyo")
        row_id = add_row(s, p, e, urgent=True).id
    run_once(services, NOW, worker_id=W)
    assert get_row(services, row_id).status == "sent"


def test_it_holds_sms_when_the_patient_opted_out_after_planning(services: Services) -> None:
    with services.sessions() as s, s.begin():
        p, e = add_patient(s)
        row_id = add_row(s, p, e).id
        p.sms_opted_out = True
    run_once(services, NOW, worker_id=W)
    row = get_row(services, row_id)
    assert (row.status, row.status_reason) == ("held", "patient opted out of SMS")
    assert sms(services).attempts == []


def test_it_cancels_rows_of_a_withdrawn_enrollment(services: Services) -> None:
    with services.sessions() as s, s.begin():
        p, e = add_patient(s)
        row_id = add_row(s, p, e).id
        e.status = "withdrawn"
    run_once(services, NOW, worker_id=W)
    assert get_row(services, row_id).status == "cancelled"
    assert sms(services).attempts == []


def test_it_renders_in_the_patients_language(services: Services) -> None:
    with services.sessions() as s, s.begin():
        p, e = add_patient(s, language="es")
        add_row(s, p, e)
    run_once(services, NOW, worker_id=W)
    text = sms(services).sent[0].text
    assert text.startswith("Ana, control de") and "Responda SÍ o NO" in text


def test_it_sends_a_prerendered_staff_message_as_it_is_to_its_recipient(services: Services) -> None:
    with services.sessions() as s, s.begin():
        p, _ = add_patient(s)
        add_row(
            s,
            p,
            None,
            channel="email",
            step="alert-1",
            message="-",
            ask=None,
            urgent=True,
            recipient="nurse@example.org",
            subject="[urgent] P-1",
            body="See alert 1.",
            html="<p>See alert 1.</p>",
        )
    run_once(services, NOW, worker_id=W)
    assert isinstance(services.email, MemoryChannel)
    (mail,) = services.email.sent
    assert (mail.to, mail.subject, mail.text, mail.html) == (
        "nurse@example.org",
        "[urgent] P-1",
        "See alert 1.",
        "<p>See alert 1.</p>",
    )


def test_it_puts_a_signed_checkin_link_in_an_emailed_question(services: Services) -> None:
    with services.sessions() as s, s.begin():
        p, e = add_patient(s, email="ana@example.org")
        row_id = add_row(s, p, e, channel="email").id
    run_once(services, NOW, worker_id=W)
    assert isinstance(services.email, MemoryChannel)
    (mail,) = services.email.sent
    assert mail.to == "ana@example.org" and mail.subject
    token = mail.text.split("https://checkin.example.org/c/")[1].split()[0]
    assert read_token(services.settings.secret_key, CHECKIN_SALT, token, 3600, now=NOW.timestamp()) == {
        "o": row_id
    }


def test_it_dead_letters_a_row_whose_template_is_missing(
    services: Services, caplog: pytest.LogCaptureFixture
) -> None:
    with services.sessions() as s, s.begin():
        p, e = add_patient(s)
        row_id = add_row(s, p, e, message="no_such_template").id
    with caplog.at_level(logging.ERROR, logger="checkin.ops"):
        run_once(services, NOW, worker_id=W)
    row = get_row(services, row_id)
    assert row.status == "dead" and row.status_reason.startswith("template error")
    (told,) = [r for r in caplog.records if r.name == "checkin.ops"]
    assert (told.event, told.outbox_id) == ("outbox.template_error", row_id)  # type: ignore[attr-defined]


def test_it_rechecks_a_row_after_waiting_for_its_send_slot(services: Services) -> None:
    with services.sessions() as s, s.begin():
        p, e = add_patient(s)
        first = add_row(s, p, e).id
        second = add_row(s, p, e, step="b").id
        patient_id = p.id
    clock = services.clock

    def sleep(seconds: float) -> bool:
        # While this worker waits for its next slot, the patient texts STOP.
        clock.advance(timedelta(seconds=seconds))  # type: ignore[attr-defined]
        with services.sessions() as other, other.begin():
            patient = other.get(Patient, patient_id)
            assert patient is not None
            patient.sms_opted_out = True
        return True

    pacer = Pacer(services.sessions, clock, rate=1.0, sleep=sleep)
    run_once(services, NOW, worker_id=W, pacer=pacer)
    assert [m.outbox_id for m in sms(services).sent] == [first]
    assert get_row(services, second).status == "held"


def test_it_releases_claimed_rows_it_did_not_send_when_stopped(services: Services) -> None:
    with services.sessions() as s, s.begin():
        ids = [add_row(s, *add_patient(s)).id for _ in range(3)]
    stop = threading.Event()

    def sleep(seconds: float) -> bool:
        stop.set()  # SIGTERM arrives while waiting for the second slot
        return False

    pacer = Pacer(services.sessions, services.clock, rate=1.0, sleep=sleep)
    assert run_once(services, NOW, worker_id=W, pacer=pacer, stop=stop) == 3
    assert [m.outbox_id for m in sms(services).sent] == ids[:1]
    for row_id in ids[1:]:
        row = get_row(services, row_id)
        assert (row.status, row.claimed_by, row.lease_until, row.attempts) == ("pending", None, None, 0)


def test_it_writes_no_phone_number_or_message_text_to_logs_or_audit(
    services: Services, caplog: pytest.LogCaptureFixture
) -> None:
    with services.sessions() as s, s.begin():
        p, e = add_patient(s, phone="+16175550199", email="ana@example.org")
        add_row(s, p, e)
        add_row(s, p, e, channel="email")
    with caplog.at_level(logging.DEBUG):
        run_once(services, NOW, worker_id=W)
    with services.sessions() as s:
        audit = " ".join(f"{a.action} {a.subject} {a.detail}" for a in s.scalars(select(AuditEvent)))
    assert "outbox.sent" in audit
    for secret in ("+16175550199", "6175550199", "ana@example.org", "incision"):
        assert secret not in caplog.text
        assert secret not in audit


def test_it_ignores_a_row_of_an_enrollment_whose_patient_has_no_phone(services: Services) -> None:
    with services.sessions() as s, s.begin():
        p, e = add_patient(s)
        row_id = add_row(s, p, e).id
        p.phone = None
    run_once(services, NOW, worker_id=W)
    assert get_row(services, row_id).status == "skipped"
    assert statuses(services) == {"skipped": 1}


def test_it_gives_each_concurrent_send_its_own_row(services: Services) -> None:
    with services.sessions() as s, s.begin():
        ids = [add_row(s, *add_patient(s)).id for _ in range(12)]
    assert run_once(services, NOW, worker_id=W, concurrency=4) == 12
    assert sorted(m.outbox_id for m in sms(services).sent) == ids
    assert statuses(services) == {"sent": 12}


def test_it_marks_sent_a_send_whose_receipt_cannot_be_stored(
    services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sqlalchemy.exc import DataError

    import checkin.outbound.receipts

    with services.sessions() as s, s.begin():
        row_id = add_row(s, *add_patient(s)).id

    def refuse(*args: object, **kwargs: object) -> None:
        raise DataError("UPDATE outbox", {}, ValueError("value too long"))

    monkeypatch.setattr(checkin.outbound.receipts, "record_sent", refuse)
    run_once(services, NOW, worker_id=W)
    row = get_row(services, row_id)
    assert (row.status, row.status_reason, row.claimed_by) == (
        "sent",
        "sent; receipt not stored (DataError)",
        None,
    )
    assert len(sms(services).attempts) == 1


def test_it_ignores_the_patients_window_for_staff_mail_about_them(services: Services) -> None:
    with services.sessions() as s, s.begin():
        p, _ = add_patient(s, timezone="Asia/Tokyo")  # midnight there
        row_id = add_row(
            s,
            p,
            None,
            channel="email",
            step="digest",
            message="-",
            ask=None,
            recipient="nurse@example.org",
            subject="Digest",
            body="2 open alerts",
        ).id
    run_once(services, NOW, worker_id=W)
    assert get_row(services, row_id).status == "sent"
