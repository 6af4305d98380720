"""The patient page and the nurse's actions: every view audited, the thread verbatim and
escaped with its triage, charts, another team's patient refused; every POST needs CSRF and is
audited under the signed-in nurse; a reply goes through the outbox exactly once."""

from __future__ import annotations

from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from checkin.app.bootstrap import Services
from checkin.outbound.dispatch import run_once
from checkin.store.models import Alert, InboundMessage, OutboxMessage, Patient, StaffNote
from tests.alerts.support import NOW, add_patient, alerts, reply
from tests.console.support import add_staff, audit_rows, hidden, sign_in

NURSE = "dana@example.org"
NASTY = 'fever 102.5 <script>alert("x")</script> & "quotes" <b>bold</b>'


@pytest.fixture
def patient(services: Services, client: TestClient) -> tuple[int, str, str]:
    pid, ref, phone = add_patient(services, first_name="Zelda")
    reply(services, phone, NASTY)
    add_staff(services, NURSE)
    sign_in(client, NURSE)
    return pid, ref, phone


def post(client: TestClient, ref: str, action: str, **fields: str) -> tuple[int, str]:
    page = client.get(f"/console/patients/{ref}").text
    done = client.post(
        f"/console/patients/{ref}/{action}", data={"csrf": hidden(page), **fields}, follow_redirects=False
    )
    return done.status_code, done.headers.get("location", done.text)


def test_the_page_shows_the_reply_verbatim_escaped_with_its_triage_and_is_audited(
    services: Services, client: TestClient, patient: tuple[int, str, str]
) -> None:
    _, ref, _ = patient
    html = client.get(f"/console/patients/{ref}").text
    assert "Zelda" in html and "<script>alert" not in html
    assert (
        "fever 102.5 &lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt; &amp; &#34;quotes&#34; &lt;b&gt;bold&lt;/b&gt;"
        in html
    )
    assert "URGENT" in html and "fever" in html and "<mark>" in html  # flags and evidence words
    assert '<svg xmlns="http://www.w3.org/2000/svg"' in html and "fever ≥ 101.0 °F" in html
    assert "day 2: 102.5°F" in html  # the chart's description lists the reading by post-op day
    views = audit_rows(services, "patient.viewed")
    assert [(e.actor, e.patient_ref) for e in views] == [(NURSE, ref)]


def test_another_teams_patient_is_refused_and_audited(
    services: Services, client: TestClient, patient: tuple[int, str, str]
) -> None:
    _, other_ref, other = add_patient(services, first_name="Ned", care_team="neuro")
    reply(services, other, "fever 103")
    page = client.get(f"/console/patients/{other_ref}")
    assert page.status_code == 403 and "Ned" not in page.text and "103" not in page.text
    _, ref, _ = patient
    csrf = hidden(client.get(f"/console/patients/{ref}").text)
    alert_id = next(a.id for a in alerts(services) if a.patient_id != patient[0])
    act = client.post(f"/console/patients/{other_ref}/ack", data={"csrf": csrf, "alert": str(alert_id)})
    assert act.status_code == 403
    assert next(a for a in alerts(services) if a.id == alert_id).status == "open"
    refused = audit_rows(services, "patient.view_refused")
    assert [(e.actor, e.patient_ref, e.detail["attempted"]) for e in refused] == [
        (NURSE, other_ref, "view"),
        (NURSE, other_ref, "ack"),
    ]


def test_a_post_without_csrf_is_refused_and_audited(
    services: Services, client: TestClient, patient: tuple[int, str, str]
) -> None:
    _, ref, _ = patient
    alert_id = alerts(services)[0].id
    for data in ({"alert": str(alert_id)}, {"alert": str(alert_id), "csrf": "forged"}):
        assert client.post(f"/console/patients/{ref}/ack", data=data).status_code == 403
    assert alerts(services)[0].status == "open"
    assert [e.actor for e in audit_rows(services, "staff.csrf_refused")] == [NURSE, NURSE]


def test_acknowledge_assign_resolve_and_note_are_recorded_under_the_nurse(
    services: Services, client: TestClient, patient: tuple[int, str, str]
) -> None:
    _, ref, _ = patient
    alert_id = str(alerts(services)[0].id)
    assert post(client, ref, "ack", alert=alert_id) == (303, f"/console/patients/{ref}?done=acknowledged")
    assert post(client, ref, "ack", alert=alert_id)[1].endswith("?done=already")
    assert post(client, ref, "assign", alert=alert_id)[1].endswith("?done=assigned")
    assert post(client, ref, "resolve", alert=alert_id, note="  ")[0] == 400
    assert post(client, ref, "resolve", alert=alert_id, note="Called back; <ok>")[1].endswith(
        "?done=resolved"
    )
    assert post(client, ref, "note", text="Wife says <he> is resting")[1].endswith("?done=noted")
    (alert,) = alerts(services)
    assert (alert.status, alert.acknowledged_by, alert.assigned_to, alert.resolved_by) == (
        "resolved",
        NURSE,
        NURSE,
        NURSE,
    )
    html = client.get(f"/console/patients/{ref}").text
    assert "Wife says &lt;he&gt; is resting" in html and "Called back; &lt;ok&gt;" in html
    for action in ("alert.acknowledged", "alert.assigned", "alert.resolved", "patient.noted"):
        assert [e.actor for e in audit_rows(services, action)] == [NURSE], action
    with services.sessions() as s:
        assert s.scalars(select(StaffNote.author)).all() == [NURSE]


def test_a_reply_goes_through_the_outbox_once_even_if_the_form_is_sent_twice(
    services: Services, client: TestClient, patient: tuple[int, str, str]
) -> None:
    _, ref, phone = patient
    page = client.get(f"/console/patients/{ref}").text
    assert '<label for="reply">Reply</label>' in page and ">Send</button>" in page
    form = {
        "csrf": hidden(page),
        "once": hidden(page, "once"),
        "reply": "Please <call> us at 555-0100 & rest.",
    }
    first = client.post(f"/console/patients/{ref}/reply", data=form, follow_redirects=False)
    again = client.post(f"/console/patients/{ref}/reply", data=form, follow_redirects=False)
    assert first.headers["location"].endswith("?done=replied")
    assert again.headers["location"].endswith("?done=reply_repeat")
    services.clock.advance(timedelta(seconds=5))  # type: ignore[attr-defined]
    run_once(services, services.clock.now(), worker_id="test")
    sent = [m for m in services.sms.sent if m.to == phone and "call" in m.text]  # type: ignore[attr-defined]
    assert [m.text for m in sent] == ["Please <call> us at 555-0100 & rest."]
    html = client.get(f"/console/patients/{ref}").text
    assert "Please &lt;call&gt; us at 555-0100 &amp; rest." in html and f"Reply by {NURSE} (sent)" in html
    assert [e.actor for e in audit_rows(services, "patient.replied")] == [NURSE]


def test_a_reply_to_a_patient_who_texted_stop_is_held(
    services: Services, client: TestClient, patient: tuple[int, str, str]
) -> None:
    _pid, ref, phone = patient
    reply(services, phone, "STOP")
    page = client.get(f"/console/patients/{ref}").text
    client.post(
        f"/console/patients/{ref}/reply",
        data={"csrf": hidden(page), "once": hidden(page, "once"), "reply": "Hello"},
    )
    run_once(services, services.clock.now(), worker_id="test")
    assert not [m for m in services.sms.sent if m.text == "Hello"]  # type: ignore[attr-defined]
    with services.sessions() as s:
        row = s.scalars(select(OutboxMessage).where(OutboxMessage.key.like("staff-reply:%"))).one()
    assert (row.status, row.status_reason) == ("held", "patient opted out of SMS")


def test_a_reply_outside_the_send_window_waits(
    services: Services, client: TestClient, patient: tuple[int, str, str]
) -> None:
    _, ref, _ = patient
    services.clock.set(NOW.replace(hour=3))  # type: ignore[attr-defined]  # 22:00 in New York
    sign_in(client, NURSE)
    page = client.get(f"/console/patients/{ref}").text
    client.post(
        f"/console/patients/{ref}/reply",
        data={"csrf": hidden(page), "once": hidden(page, "once"), "reply": "Night"},
    )
    run_once(services, services.clock.now(), worker_id="test")
    assert not [m for m in services.sms.sent if m.text == "Night"]  # type: ignore[attr-defined]


def test_pause_resume_withdraw_and_mark_handled(
    services: Services, client: TestClient, patient: tuple[int, str, str]
) -> None:
    _pid, ref, phone = patient
    reply(services, phone, "can I shower yet?")
    with services.sessions() as s:
        q = s.scalars(select(InboundMessage).where(InboundMessage.body == "can I shower yet?")).one()
    assert "can I shower yet?" in client.get("/console").text
    assert post(client, ref, "handled", inbound=str(q.id))[1].endswith("?done=handled")
    assert "can I shower yet?" not in client.get("/console").text
    assert post(client, ref, "pause")[1].endswith("?done=paused")
    assert "messages paused" in client.get(f"/console/patients/{ref}").text
    assert post(client, ref, "resume")[1].endswith("?done=resumed")
    assert post(client, ref, "withdraw")[0] == 400  # needs the confirmation box
    assert post(client, ref, "withdraw", confirm="yes")[1].endswith("?done=withdrawn")
    for action in ("inbound.handled", "patient.paused", "patient.resumed", "enrollment.withdrawn"):
        assert [e.actor for e in audit_rows(services, action)] == [NURSE], action


def test_marking_the_last_waiting_reply_handled_stops_its_waiting_ladder(
    services: Services, client: TestClient, patient: tuple[int, str, str]
) -> None:
    from checkin.alerts.sweeps import missed_once

    _pid, ref, phone = patient
    reply(services, phone, "can I shower yet?")
    services.clock.advance(timedelta(hours=4))  # type: ignore[attr-defined]
    assert missed_once(services, services.clock.now()) == 1
    (waiting,) = [a for a in alerts(services) if a.kind == "waiting"]
    assert waiting.status == "open"
    assert sign_in(client, NURSE).status_code == 303  # four idle hours ended the session
    assert "waiting too long for a person" in client.get("/console").text
    with services.sessions() as s:
        q = s.scalars(select(InboundMessage).where(InboundMessage.body == "can I shower yet?")).one()
    assert post(client, ref, "handled", inbound=str(q.id))[1].endswith("?done=handled")
    (waiting,) = [a for a in alerts(services) if a.kind == "waiting"]
    assert (waiting.status, waiting.resolved_by) == ("resolved", NURSE)


def test_search_is_a_post_and_finds_by_name_mrn_or_reference_within_the_team(
    services: Services, client: TestClient, patient: tuple[int, str, str]
) -> None:
    pid, ref, _ = patient
    add_patient(services, first_name="Zeke", care_team="neuro")
    with services.sessions() as s:
        mrn = s.get(Patient, pid).mrn  # type: ignore[union-attr]
    csrf = hidden(client.get("/console").text)
    for q in ("zel", mrn, ref.lower()):
        found = client.post("/console/search", data={"csrf": csrf, "q": q})
        assert found.status_code == 200 and f"/console/patients/{ref}" in found.text, q
        assert "Zeke" not in found.text
    assert client.get("/console/search?q=zel").status_code == 405  # never a name in a URL
    assert next(e.detail for e in audit_rows(services, "patient.searched")) == {"chars": 3, "found": 1}


def test_an_alert_opened_after_the_page_loaded_can_still_be_acknowledged(
    services: Services, client: TestClient
) -> None:
    add_staff(services, NURSE)
    sign_in(client, NURSE)
    _, ref, phone = add_patient(services)
    reply(services, phone, "I fell and can't get up")
    alert: Alert = alerts(services)[0]
    assert post(client, ref, "ack", alert=str(alert.id))[1].endswith("?done=acknowledged")
    assert post(client, ref, "ack", alert="999999")[0] == 404


def test_the_page_shows_the_current_consent_per_channel(
    services: Services, client: TestClient, patient: tuple[int, str, str]
) -> None:
    from checkin.store import consents

    pid, ref, _ = patient
    assert "Consent: none recorded" in client.get(f"/console/patients/{ref}").text
    with services.sessions.begin() as s:
        feed = consents.Provenance("hl7", "hl7:EPIC^RIVERSIDE C1")
        stop = consents.Provenance("patient-keyword", "patient", "STOP")
        consents.record(s, pid, "sms", consents.GRANTED, feed, at=NOW - timedelta(days=3))
        consents.record(s, pid, "email", consents.GRANTED, feed, at=NOW - timedelta(days=3))
        consents.record(s, pid, "sms", consents.REVOKED, stop, at=NOW - timedelta(days=1))
    html = client.get(f"/console/patients/{ref}").text
    assert "SMS revoked (patient-keyword, " in html and "email granted (hl7, " in html
    assert "SMS granted" not in html
