"""Missed check-ins, reminders, opt-outs and the daily digest."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select

from checkin.alerts.sweeps import digest_once, missed_once, remind_once
from checkin.deps import Services
from checkin.store.models import OutboxMessage, Patient
from tests.alerts.support import NOW, NURSES, add_patient, alerts, reply, staff_rows

H = timedelta(hours=1)


def question(
    services: Services,
    patient_id: int,
    *,
    sent_at: datetime = NOW,
    remind: timedelta | None = 4 * H,
    missed: timedelta | None = 24 * H,
    key: str | None = None,
    ask: str = "fever_check",
) -> int:
    with services.sessions.begin() as s:
        n = len(s.scalars(select(OutboxMessage.id)).all())
        row = OutboxMessage(
            key=key or f"q:{patient_id}:{n}",
            enrollment_id=None,
            patient_id=patient_id,
            step_id="fever-check",
            occurrence=n,
            channel="sms",
            message="fever_check",
            ask=ask,
            urgent=False,
            due_at=sent_at,
            expires_at=sent_at + 8 * H,
            status="sent",
            attempts=1,
            sent_at=sent_at,
            remind_after_s=int(remind.total_seconds()) if remind else None,
            missed_after_s=int(missed.total_seconds()) if missed else None,
            created_at=sent_at,
            updated_at=sent_at,
        )
        s.add(row)
        s.flush()
        return row.id


def row(services: Services, row_id: int) -> OutboxMessage:
    with services.sessions() as s:
        r = s.get(OutboxMessage, row_id)
        assert r is not None
        return r


def by_key(services: Services, key: str) -> OutboxMessage | None:
    with services.sessions() as s:
        return s.scalars(select(OutboxMessage).where(OutboxMessage.key == key)).first()


def test_it_opens_one_low_alert_for_a_missed_check_in_once(services: Services) -> None:
    pid, ref, _ = add_patient(services)
    q = question(services, pid)
    assert missed_once(services, NOW + 23 * H) == 0
    assert missed_once(services, NOW + 24 * H) == 1
    assert missed_once(services, NOW + 25 * H) == 0
    (alert,) = alerts(services)
    assert (alert.kind, alert.severity, alert.outbox_id) == ("missed_checkin", "watch", q)
    assert row(services, q).missed_at == NOW + 24 * H
    mails = staff_rows(services)  # the watch ladder: one team email each, at once
    assert sorted(r.recipient or "" for r in mails) == list(NURSES)
    assert all((r.subject or "").startswith(f"WATCH: patient {ref} - missed check-in") for r in mails)
    # The next day's question missed too: joins the open alert, no new mail for it. (The day-old
    # watch alert nobody acknowledged also goes on the urgent ladder: checkin.alerts.inbox.)
    question(services, pid, sent_at=NOW + 24 * H)
    assert missed_once(services, NOW + 48 * H) == 2
    missed = [a for a in alerts(services) if a.kind == "missed_checkin"]
    assert [a.id for a in missed] == [alert.id]
    assert len([r for r in staff_rows(services) if r.key.startswith(f"alert:{alert.id}:")]) == len(NURSES)
    assert [a.kind for a in alerts(services) if a.id != alert.id] == ["waiting"]


def test_it_does_not_report_an_answered_question_or_one_answered_through_its_reminder(
    services: Services,
) -> None:
    pid, _, phone = add_patient(services)
    q = question(services, pid)
    assert remind_once(services, NOW + 4 * H) == 1
    reminder = by_key(services, row(services, q).key + ":remind")
    assert reminder is not None
    with services.sessions.begin() as s:  # the dispatcher sent the nudge
        r = s.get(OutboxMessage, reminder.id)
        assert r is not None
        r.status, r.sent_at = "sent", NOW + 4 * H
    reply(services, phone, "no fever, 98.6", NOW + 5 * H)  # matches the latest question: the nudge
    assert row(services, reminder.id).answered_at == NOW + 5 * H
    assert missed_once(services, NOW + 30 * H) == 0
    assert alerts(services) == [] and row(services, q).answered_at == NOW + 5 * H


def test_it_nudges_once_with_the_same_message_inside_the_send_window(services: Services) -> None:
    pid, _, _ = add_patient(services)
    q = question(services, pid, key="7:fever-check:3:sms")
    assert remind_once(services, NOW + 3 * H) == 0
    assert remind_once(services, NOW + 4 * H) == 1
    assert remind_once(services, NOW + 5 * H) == 0
    nudge = by_key(services, "7:fever-check:3:sms:remind")
    assert nudge is not None
    original = row(services, q)
    assert original.reminded_at == NOW + 4 * H
    assert (nudge.patient_id, nudge.message, nudge.ask, nudge.channel, nudge.status) == (
        pid,
        original.message,
        original.ask,
        original.channel,
        "pending",
    )
    assert nudge.urgent is False and nudge.due_at == NOW + 4 * H  # the dispatcher keeps the window
    assert nudge.expires_at == NOW + 24 * H and nudge.remind_after_s is None and nudge.missed_after_s is None
    assert remind_once(services, NOW + 9 * H) == 0  # the nudge is never nudged


def test_it_does_not_nudge_an_answered_question(services: Services) -> None:
    pid, _, phone = add_patient(services)
    q = question(services, pid)
    reply(services, phone, "no fever", NOW + H)
    assert row(services, q).answered_at is not None
    assert remind_once(services, NOW + 5 * H) == 0


def test_it_opens_a_contact_problem_once_when_an_enrolled_patient_opts_out(services: Services) -> None:
    _pid, _, phone = add_patient(services)
    reply(services, phone, "STOP", NOW)
    assert missed_once(services, NOW + timedelta(minutes=1)) == 1
    assert missed_once(services, NOW + timedelta(minutes=2)) == 0
    (alert,) = alerts(services)
    assert (alert.kind, alert.flags, alert.severity) == ("contact_problem", ["opted_out"], "watch")
    # START then STOP again is a new episode: the open alert is joined (no new alert, no new mail).
    reply(services, phone, "START", NOW + H)
    reply(services, phone, "STOP", NOW + 2 * H)
    assert missed_once(services, NOW + 2 * H + timedelta(minutes=1)) == 1
    assert len(alerts(services)) == 1 and len(staff_rows(services)) == len(NURSES)


def _digests(services: Services) -> list[OutboxMessage]:
    with services.sessions() as s:
        return list(
            s.scalars(
                select(OutboxMessage).where(OutboxMessage.key.like("digest:%")).order_by(OutboxMessage.id)
            )
        )


SEVEN_AM = datetime(2026, 3, 4, 12, 0, tzinfo=UTC)  # 07:00 in New York (EST)


def test_it_sends_the_digest_once_per_team_and_day_at_seven(services: Services) -> None:
    _pid, ref, phone = add_patient(services)
    reply(services, phone, "I have a fever of 102", NOW)  # urgent, still open tomorrow morning
    pid2, ref2, phone2 = add_patient(services)
    reply(services, phone2, "pain is about a 6 today", SEVEN_AM - 3 * H)  # watch level
    q = question(services, pid2, sent_at=SEVEN_AM - 30 * H)
    missed_once(services, SEVEN_AM - 6 * H)
    assert row(services, q).missed_at is not None
    assert digest_once(services, SEVEN_AM - timedelta(minutes=1)) == 0
    assert digest_once(services, SEVEN_AM) == len(NURSES)
    assert digest_once(services, SEVEN_AM + timedelta(minutes=5)) == 0
    assert digest_once(services, SEVEN_AM + 10 * H) == 0
    rows = _digests(services)
    claim = next(r for r in rows if r.key == "digest:spine:2026-03-04")
    assert claim.status == "skipped"
    mails = [r for r in rows if r.recipient]
    assert sorted(r.recipient or "" for r in mails) == list(NURSES)
    assert all(r.key == f"digest:spine:2026-03-04:{r.recipient}" and r.status == "pending" for r in mails)
    text, html, subject = mails[0].body or "", mails[0].html or "", mails[0].subject or ""
    assert subject.startswith("Daily digest 2026-03-04 - Spine nurses: 2 open alert(s), 1 missed")
    assert "Open alerts: 2 | Missed check-ins (24 h): 1" in text
    assert text.index(ref) < text.index("missed check-in")  # oldest open alert first
    assert "URGENT  " + ref in text and ref2 in text and "pain is about a 6 today" in text
    assert "Ana" not in text and "Ana" not in html and "Ana" not in subject
    # The next day at 07:00 is a new digest.
    assert digest_once(services, SEVEN_AM + 24 * H) == len(NURSES)


def test_it_sends_no_digest_on_a_day_with_nothing_to_report_and_does_not_reconsider(
    services: Services,
) -> None:
    assert digest_once(services, SEVEN_AM) == 0
    claims = _digests(services)
    assert [(r.key, r.status, r.status_reason) for r in claims if r.key.startswith("digest:spine")] == [
        ("digest:spine:2026-03-04", "skipped", "nothing to report")
    ]
    _, _, phone = add_patient(services)
    reply(services, phone, "I have a fever of 102", SEVEN_AM + H)  # notified on its own, at once
    assert digest_once(services, SEVEN_AM + 2 * H) == 0


def test_it_gives_each_team_only_its_own_patients(services: Services) -> None:
    _, ref_spine, phone_spine = add_patient(services)
    _, ref_neuro, phone_neuro = add_patient(services, care_team="neuro")
    reply(services, phone_spine, "I have a fever of 102", NOW)
    reply(services, phone_neuro, "I have a fever of 102", NOW)
    digest_once(services, SEVEN_AM)
    mails: dict[str, Any] = {r.recipient: r.body for r in _digests(services) if r.recipient}
    assert ref_spine in mails[NURSES[0]] and ref_neuro not in mails[NURSES[0]]
    assert ref_neuro in mails["neo@example.org"] and ref_spine not in mails["neo@example.org"]
    with services.sessions() as s:
        assert s.scalar(select(Patient.id).where(Patient.reference == ref_neuro)) is not None
