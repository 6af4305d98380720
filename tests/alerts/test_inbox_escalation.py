"""Inbox items never wait forever: a reply that needs a person, or an open watch-level alert,
left unhandled past CHECKIN_INBOX_ESCALATE_MINUTES enters the team's urgent ladder once, pages
again for something new after an acknowledgement, and stops when the replies are handled."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from sqlalchemy import update

from checkin.alerts import inbox
from checkin.alerts import lifecycle as alerts_mod
from checkin.alerts.sweeps import escalate_once, missed_once
from checkin.deps import Services
from checkin.store.models import Alert, InboundMessage, Patient
from tests.alerts.support import (
    NOW,
    NURSES,
    ON_CALL_PHONE,
    add_patient,
    alerts,
    make_services,
    reply,
    staff_rows,
)

QUESTION = "when is my appointment?"
AFTER = timedelta(minutes=240)  # the default


def waiting(services: Services) -> list[Alert]:
    return [a for a in alerts(services) if a.kind == "waiting"]


def test_a_question_nobody_handles_enters_the_urgent_ladder_once(services: Services) -> None:
    _, _, phone = add_patient(services)
    reply(services, phone, QUESTION)
    # Triage asks for a person: a watch alert, one email to the team, and its ladder ends there.
    assert len(staff_rows(services)) == len(NURSES)
    assert escalate_once(services, NOW + AFTER - timedelta(minutes=1)) == 0
    assert missed_once(services, NOW + AFTER - timedelta(minutes=1)) == 0
    assert waiting(services) == []
    assert missed_once(services, NOW + AFTER) == 1
    (alert,) = waiting(services)
    assert (alert.severity, alert.status) == ("urgent", "open")
    assert alert.flags == ["waiting:red_flag", "waiting:reply"]  # the reply and its watch alert
    assert sorted(r.recipient or "" for r in staff_rows(services)) == sorted(NURSES * 2)
    # Told once: the next sweeps add nothing; the ladder goes on to on-call and repeats.
    assert missed_once(services, NOW + AFTER + timedelta(minutes=1)) == 0
    escalate_once(services, NOW + AFTER + timedelta(minutes=30))
    assert [r.recipient for r in staff_rows(services) if r.channel == "sms"] == [ON_CALL_PHONE]


def test_handling_the_reply_resolves_it_and_a_new_one_after_an_ack_pages_again(services: Services) -> None:
    pid, _, phone = add_patient(services)
    reply(services, phone, QUESTION)
    missed_once(services, NOW + AFTER)
    (alert,) = waiting(services)
    with services.sessions.begin() as s:
        assert alerts_mod.acknowledge(s, alert.id, by=NURSES[0], now=NOW + AFTER + timedelta(minutes=5))
    before = len(staff_rows(services))
    later = NOW + timedelta(hours=6)
    reply(services, phone, "can I drive yet?", later)
    assert missed_once(services, later + AFTER) == 1
    (alert,) = waiting(services)
    assert (alert.status, alert.escalation_round) == ("open", 1)  # something new waited: a new round
    assert len(staff_rows(services)) == before + len(NURSES)
    with services.sessions.begin() as s:
        s.execute(
            update(InboundMessage)
            .where(InboundMessage.patient_id == pid, InboundMessage.body == QUESTION)
            .values(handled_at=later + AFTER, handled_by=NURSES[1])
        )
        # One reply still waits: the alert stays.
        assert not inbox.resolve_when_handled(s, pid, by=NURSES[1], now=later + AFTER)
        s.execute(
            update(InboundMessage)
            .where(InboundMessage.patient_id == pid)
            .values(handled_at=later + AFTER, handled_by=NURSES[1])
        )
        assert inbox.resolve_when_handled(s, pid, by=NURSES[1], now=later + AFTER)
    (alert,) = waiting(services)
    assert (alert.status, alert.resolved_by) == ("resolved", NURSES[1])
    assert escalate_once(services, later + AFTER + timedelta(hours=2)) == 0


def test_an_open_watch_alert_waits_into_the_ladder_but_an_acknowledged_one_does_not(
    services: Services,
) -> None:
    p1, _, _ = add_patient(services)
    p2, _, _ = add_patient(services)
    ids = []
    with services.sessions.begin() as s:
        for pid in (p1, p2):
            patient = s.get(Patient, pid)
            assert patient is not None
            ids.append(
                alerts_mod.open_contact_problem(s, patient=patient, reason="shared_phone", now=NOW).alert.id
            )
    with services.sessions.begin() as s:
        assert alerts_mod.acknowledge(s, ids[1], by=NURSES[0], now=NOW + timedelta(minutes=1))
    assert missed_once(services, NOW + AFTER) == 1
    (alert,) = waiting(services)
    assert alert.patient_id == p1 and alert.flags == ["waiting:contact_problem"]


def test_old_history_is_not_paged_about(services: Services) -> None:
    _, _, phone = add_patient(services)
    reply(services, phone, QUESTION)
    assert missed_once(services, NOW + inbox.LOOKBACK + timedelta(minutes=1)) == 0
    assert waiting(services) == []


def test_the_delay_is_a_setting(db_url: str, tmp_path: Path) -> None:
    services = make_services(db_url, tmp_path, CHECKIN_INBOX_ESCALATE_MINUTES="30")
    try:
        _, _, phone = add_patient(services)
        reply(services, phone, QUESTION)
        assert missed_once(services, NOW + timedelta(minutes=29)) == 0
        assert missed_once(services, NOW + timedelta(minutes=30)) == 1
    finally:
        services.engine.dispose()
