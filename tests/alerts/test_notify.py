"""Opening an alert queues the care team's first messages at once: who, how many, what they say."""

from __future__ import annotations

import shutil
from datetime import timedelta
from pathlib import Path

from checkin.alerts.sweeps import escalate_once
from checkin.channels.memory import MemoryChannel
from checkin.deps import Services
from checkin.tokens import ALERT_SALT, read_token
from tests.alerts.support import (
    NOW,
    NURSES,
    ON_CALL_PHONE,
    SECRET,
    add_patient,
    alerts,
    audit,
    make_services,
    reply,
    staff_rows,
)
from tests.support import ROOT

FEVER = "I have a fever of 102 since last night"
LEAK = "there is some pus leaking from the incision"
BLADDER = "I can't pee since this morning"


def test_it_queues_one_email_per_nurse_and_nothing_more_for_an_urgent_reply(services: Services) -> None:
    _, _ref, phone = add_patient(services)
    result = reply(services, phone, FEVER)
    assert result.severity == "urgent" and result.alert_opened
    rows = staff_rows(services)
    assert sorted((r.channel, r.recipient) for r in rows) == [("email", n) for n in NURSES]
    assert all(r.urgent and r.status == "pending" and r.patient_id is None and r.due_at == NOW for r in rows)
    assert {r.key for r in rows} == {f"alert:{result.alert_id}:r0:urgent:0:team_email:{n}" for n in NURSES}


def test_it_pages_the_on_call_phone_at_once_for_an_emergency_with_no_phi(services: Services) -> None:
    _, ref, phone = add_patient(services, first_name="Zelda")
    reply(services, phone, BLADDER)
    sms = [r for r in staff_rows(services) if r.channel == "sms"]
    assert [r.recipient for r in sms] == [ON_CALL_PHONE]
    body = sms[0].body or ""
    assert body.startswith("Riverside Spine: EMERGENCY alert, patient " + ref)
    assert "email" in body and "Zelda" not in body and "pee" not in body and len(body) <= 160


def test_it_makes_ten_red_flags_one_alert_and_one_notification_per_new_flag_or_rise(
    services: Services,
) -> None:
    _, _, phone = add_patient(services)
    for i in range(10):
        reply(services, phone, FEVER if i % 2 else LEAK, NOW + timedelta(minutes=i))
    assert len(alerts(services)) == 1
    # The first notification and the news of the fever; the eight repeats page nobody.
    assert len(staff_rows(services)) == 2 * len(NURSES)
    reply(services, phone, BLADDER, NOW + timedelta(minutes=11))
    (alert,) = alerts(services)
    assert alert.severity == "emergency" and alert.escalation_level == 1
    rows = staff_rows(services)
    assert len(rows) == 3 * len(NURSES) + 1  # re-notified once: team emails and the on-call page
    assert sum(":emergency:0:" in r.key for r in rows) == len(NURSES) + 1
    reply(services, phone, BLADDER, NOW + timedelta(minutes=12))  # same severity again: silence
    assert len(staff_rows(services)) == len(rows)


def test_it_writes_severity_first_and_the_reference_not_the_name_in_the_subject(services: Services) -> None:
    _, ref, phone = add_patient(services, first_name="Zelda")
    reply(services, phone, FEVER)
    for row in staff_rows(services):
        assert row.subject is not None and row.subject.startswith("URGENT")
        assert ref in row.subject and "Zelda" not in row.subject


def test_it_puts_the_reply_verbatim_and_escaped_the_evidence_the_conversation_and_the_phone(
    services: Services,
) -> None:
    _, _ref, phone = add_patient(services)
    reply(services, phone, "feeling ok today", NOW - timedelta(hours=20))
    text = "fever 102 <script>alert('x')</script> & pus from the incision"
    reply(services, phone, text)
    row = next(r for r in staff_rows(services) if r.recipient == NURSES[0])
    body, html = row.body or "", row.html or ""
    assert text in body  # plain text: verbatim
    assert "<script>" not in html and "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; pus" in html
    for part in (body, html):
        assert 'fever: "102"' in part.replace("&ldquo;<mark>", '"').replace("</mark>&rdquo;", '"')
        assert "wound drainage" in part and "pus" in part
        assert "feeling ok today" in part  # the earlier message is in the last messages
        assert phone in part


def test_it_signs_each_nurses_link_for_that_nurse_and_that_alert(services: Services) -> None:
    _, _, phone = add_patient(services)
    result = reply(services, phone, FEVER)
    for row in staff_rows(services):
        token = (row.body or "").split("https://checkin.example.org/a/")[1].split()[0]
        assert read_token(SECRET, ALERT_SALT, token, 3600, now=NOW.timestamp()) == {
            "a": result.alert_id,
            "r": row.recipient,
        }
        assert f'href="https://checkin.example.org/a/{token}"' in (row.html or "")


def test_it_sends_the_builtin_text_when_a_staff_template_is_broken(db_url: str, tmp_path: Path) -> None:
    templates = tmp_path / "templates"
    shutil.copytree(ROOT / "templates", templates)
    (templates / "staff" / "alert.txt.j2").write_text("{{ no_such_variable }}", encoding="utf-8")
    (templates / "staff" / "on_call.txt.j2").write_text("{% if %}", encoding="utf-8")
    services = make_services(db_url, tmp_path, templates=templates)
    try:
        _, ref, phone = add_patient(services)
        reply(services, phone, BLADDER)
        rows = staff_rows(services)
        assert len(rows) == len(NURSES) + 1
        email = next(r for r in rows if r.channel == "email")
        assert email.subject == f"EMERGENCY: patient {ref} - red-flag reply"
        assert "EMERGENCY" in (email.body or "") and "https://checkin.example.org/a/" in (email.body or "")
        sms = next(r for r in rows if r.channel == "sms")
        assert "EMERGENCY" in (sms.body or "") and ref in (sms.body or "")
        assert audit(services, "alert.notified")[0].detail["template_fallbacks"] == len(rows)
    finally:
        services.engine.dispose()


def test_it_mails_the_patients_own_team_and_falls_back_to_email_without_an_on_call_phone(
    services: Services,
) -> None:
    _, _, phone = add_patient(services, care_team="neuro")
    reply(services, phone, BLADDER)
    assert sorted((r.channel, r.recipient) for r in staff_rows(services)) == [
        ("email", "neo@example.org"),
        ("sms", "+15555550177"),
    ]


def test_it_uses_checkin_alert_emails_for_the_default_team_without_a_care_team_file(
    db_url: str, tmp_path: Path
) -> None:
    services = make_services(
        db_url, tmp_path, care_teams=None, CHECKIN_ALERT_EMAILS="a@example.org, b@example.org"
    )
    try:
        _, _, phone = add_patient(services)
        reply(services, phone, BLADDER)  # the default ladder's on-call step: no on-call, so the team email
        assert sorted((r.channel, r.recipient) for r in staff_rows(services)) == [
            ("email", "a@example.org"),
            ("email", "b@example.org"),
        ]
    finally:
        services.engine.dispose()


def test_it_notifies_a_contact_problem_from_a_delivery_failure_on_the_next_sweep(services: Services) -> None:
    from checkin.outbound.delivery import open_contact_problem

    pid, _, _ = add_patient(services)
    with services.sessions.begin() as s:
        alert_id = open_contact_problem(s, pid, None, now=NOW, reason="SMS undelivered with error 30003")
    assert alert_id is not None and staff_rows(services) == []
    assert escalate_once(services, NOW + timedelta(seconds=30)) == len(NURSES)
    assert escalate_once(services, NOW + timedelta(minutes=5)) == 0
    rows = staff_rows(services)
    assert all(
        r.subject and r.subject.startswith("WATCH") and "cannot reach patient" in r.subject for r in rows
    )
    with services.sessions.begin() as s:  # a second failure joins the open alert: no second alert, no mail
        assert open_contact_problem(s, pid, None, now=NOW, reason="again") is None
    assert escalate_once(services, NOW + timedelta(minutes=6)) == 0 and len(alerts(services)) == 1


def test_it_never_holds_a_page_to_staff_when_the_patient_texts_stop(services: Services) -> None:
    _, _, phone = add_patient(services)
    reply(services, phone, BLADDER)
    reply(services, phone, "STOP")
    assert {r.status for r in staff_rows(services)} == {"pending"}
    assert isinstance(services.sms, MemoryChannel)
