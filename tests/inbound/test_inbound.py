"""checkin.inbound.process on SQLite and PostgreSQL: keywords, matching, triage, alerts, safety replies."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select

from checkin.core.triage.model import Flag
from checkin.deps import Services
from checkin.inbound import process as inbound
from checkin.inbound.process import InboundSms, handle_sms
from checkin.store.models import Alert, AuditEvent, InboundMessage, OutboxMessage, Patient
from tests.inbound.support import (
    ANA_PHONE,
    CLINIC_NAME,
    CLINIC_PHONE,
    NOW,
    ScriptedAssess,
    add_outbox,
    add_patient,
    assessment,
    new_sid,
)


def sms(body: str, phone: str | None = ANA_PHONE, sid: str | None = None) -> InboundSms:
    return InboundSms(message_sid=sid or new_sid(), from_phone=phone, body=body)


def setup(services: Services, fn: Any) -> Any:
    with services.sessions.begin() as s:
        return fn(s)


def one(services: Services, model: Any, *where: Any) -> Any:
    with services.sessions() as s:
        return s.scalars(select(model).where(*where)).one()


def count(services: Services, model: Any, *where: Any) -> int:
    with services.sessions() as s:
        return int(s.scalar(select(func.count()).select_from(model).where(*where)) or 0)


# ---- keywords ------------------------------------------------------------------------------
def test_it_opts_out_on_stop_and_holds_pending_sms_without_deleting(services: Services) -> None:
    def arrange(s: Any) -> tuple[int, list[int]]:
        p = add_patient(s)
        pending = [add_outbox(s, p, status="pending", due_at=NOW + timedelta(days=d)).id for d in (1, 2)]
        add_outbox(s, p, status="pending", channel="email", due_at=NOW + timedelta(days=1))
        add_outbox(s, p, status="sent", sent_at=NOW - timedelta(days=1))
        return p.id, pending

    pid, pending = setup(services, arrange)
    result = handle_sms(services, sms("Stop."), NOW)
    assert result.keyword == "stop" and result.reply_template == "reply_stopped"
    assert "START" in (result.reply_text or "")
    patient = one(services, Patient, Patient.id == pid)
    assert patient.sms_opted_out and patient.sms_opted_out_at == NOW
    statuses = {r.id: r.status for r in _rows(services, pid)}
    assert all(statuses[i] == "held" for i in pending)
    assert sorted(statuses.values()) == ["held", "held", "pending", "sent"]  # email and history untouched


def test_it_resumes_on_start_and_releases_only_unexpired_held_rows(services: Services) -> None:
    def arrange(s: Any) -> tuple[int, int, int]:
        p = add_patient(s, opted_out=True)
        live = add_outbox(s, p, status="held", due_at=NOW + timedelta(hours=2)).id
        stale = add_outbox(
            s, p, status="held", due_at=NOW - timedelta(days=2), expires_at=NOW - timedelta(days=1)
        ).id
        return p.id, live, stale

    pid, live, stale = setup(services, arrange)
    result = handle_sms(services, sms("START"), NOW)
    assert result.reply_template == "reply_started"
    assert not one(services, Patient, Patient.id == pid).sms_opted_out
    statuses = {r.id: r.status for r in _rows(services, pid)}
    assert statuses[live] == "pending"
    assert statuses[stale] == "skipped"


def test_it_treats_yes_as_opt_in_only_for_an_opted_out_patient(services: Services) -> None:
    setup(services, lambda s: add_patient(s, opted_out=True))
    assert handle_sms(services, sms("YES"), NOW, assess=ScriptedAssess()).keyword == "start"


def test_it_answers_help_with_clinic_name_phone_and_the_911_warning(services: Services) -> None:
    setup(services, lambda s: add_patient(s))
    text = handle_sms(services, sms("HELP"), NOW).reply_text or ""
    assert CLINIC_NAME in text and CLINIC_PHONE in text
    assert "not monitored 24/7" in text and "911" in text


def test_it_answers_help_in_the_patients_language(services: Services) -> None:
    setup(services, lambda s: add_patient(s, language="es"))
    result = handle_sms(services, sms("HELP"), NOW)
    assert result.language == "es" and "911" in (result.reply_text or "")
    assert "24 horas" in (result.reply_text or "")


def test_it_answers_help_in_english_to_an_unknown_sender_and_spanish_to_ayuda(services: Services) -> None:
    assert handle_sms(services, sms("HELP", phone="+12125550199"), NOW).language == "en"
    assert handle_sms(services, sms("AYUDA", phone="+12125550199"), NOW).language == "es"


def test_it_applies_stop_to_every_patient_on_a_shared_phone(services: Services) -> None:
    ids = setup(services, lambda s: [add_patient(s).id, add_patient(s, first_name="Luis").id])
    handle_sms(services, sms("STOP"), NOW)
    assert all(one(services, Patient, Patient.id == i).sms_opted_out for i in ids)


def test_it_pauses_sms_and_asks_the_care_team_about_an_opt_out_candidate(services: Services) -> None:
    pid = setup(services, lambda s: (p := add_patient(s), add_outbox(s, p, status="pending"))[0].id)
    result = handle_sms(services, sms("please stop texting me"), NOW, assess=ScriptedAssess())
    assert result.keyword is None and result.reply_template == "reply_paused"
    assert one(services, Patient, Patient.id == pid).sms_opted_out
    assert [r.status for r in _rows(services, pid)] == ["held"]
    alert = one(services, Alert, Alert.patient_id == pid)
    assert alert.kind == "contact_problem" and "optout_candidate" in alert.flags


# ---- who sent it -----------------------------------------------------------------------------
def test_it_gives_an_unknown_sender_a_generic_reply_with_no_patient_information(services: Services) -> None:
    setup(services, lambda s: add_patient(s, first_name="Zelda"))
    result = handle_sms(services, sms("hi is my appointment tomorrow", phone="+12125550199"), NOW)
    assert result.matched == "unknown" and result.reply_template == "reply_unknown"
    assert "Zelda" not in (result.reply_text or "") and result.patient_ref is None
    row = one(services, InboundMessage, InboundMessage.id == result.inbound_id)
    assert row.patient_id is None and row.body == "hi is my appointment tomorrow"
    assert count(services, Alert) == 0


def test_it_still_tells_an_unknown_sender_with_an_emergency_to_call_911(services: Services) -> None:
    result = handle_sms(services, sms("no puedo respirar", phone="+12125550199"), NOW)
    assert result.reply_template == "reply_emergency" and result.language == "es"
    assert "911" in (result.reply_text or "")


def test_it_does_not_guess_between_patients_sharing_a_phone(services: Services) -> None:
    ids = setup(
        services, lambda s: [add_patient(s, first_name="Ana").id, add_patient(s, first_name="Luis").id]
    )
    setup(
        services, lambda s: [add_outbox(s, s.get(Patient, i), sent_at=NOW - timedelta(hours=1)) for i in ids]
    )
    result = handle_sms(services, sms("101.5"), NOW)
    assert result.matched == "shared" and result.patient_ref is None
    text = result.reply_text or ""
    assert "Ana" not in text and "Luis" not in text
    row = one(services, InboundMessage, InboundMessage.id == result.inbound_id)
    assert row.patient_id is None and row.outbox_id is None
    with services.sessions() as s:
        alerts = s.scalars(select(Alert).order_by(Alert.patient_id)).all()
        assert [a.patient_id for a in alerts] == ids
        assert all(a.kind == "contact_problem" and "shared_phone" in a.flags for a in alerts)
        # No question was marked answered: we do not know whose it was.
        assert (
            s.scalar(
                select(func.count()).select_from(OutboxMessage).where(OutboxMessage.answered_at.is_not(None))
            )
            == 0
        )


def test_it_ignores_patients_who_are_no_longer_enrolled_when_matching_content(services: Services) -> None:
    setup(services, lambda s: (add_patient(s, first_name="Old", enrolled=False), add_patient(s)))
    assert handle_sms(services, sms("doing fine"), NOW, assess=ScriptedAssess()).matched == "patient"


# ---- matching and triage ---------------------------------------------------------------------
def test_it_matches_the_latest_open_question_and_passes_its_context(services: Services) -> None:
    def arrange(s: Any) -> tuple[int, int, int]:
        p = add_patient(s)
        old = add_outbox(s, p, ask="fever_check", sent_at=NOW - timedelta(hours=6)).id
        new = add_outbox(s, p, message="pain_check", ask="pain_scale", sent_at=NOW - timedelta(hours=1)).id
        answered = add_outbox(s, p, ask="wound_check", sent_at=NOW - timedelta(minutes=5), answered_at=NOW).id
        return old, new, answered

    old, new, _ = setup(services, arrange)
    fake = ScriptedAssess()
    result = handle_sms(services, sms("4"), NOW, assess=fake)
    assert fake.calls == [("4", "pain_scale")]
    assert result.outbox_id == new
    assert one(services, OutboxMessage, OutboxMessage.id == new).answered_at == NOW
    assert one(services, OutboxMessage, OutboxMessage.id == old).answered_at is None


@pytest.mark.parametrize(
    ("reminder_hours_ago", "context", "answered"), [(1, None, False), (5, "fever_check", True)]
)
def test_a_bare_yes_after_a_reminder_answers_the_reminder_not_the_open_question(
    services: Services, reminder_hours_ago: int, context: str | None, answered: bool
) -> None:
    def arrange(s: Any) -> int:
        p = add_patient(s)
        q = add_outbox(s, p, ask="fever_check", sent_at=NOW - timedelta(hours=3)).id
        add_outbox(
            s, p, message="calcium_vitamin_d", ask=None, sent_at=NOW - timedelta(hours=reminder_hours_ago)
        )
        return q

    q = setup(services, arrange)
    fake = ScriptedAssess()
    handle_sms(services, sms("YES"), NOW, assess=fake)
    assert fake.calls == [("YES", context)]
    assert (one(services, OutboxMessage, OutboxMessage.id == q).answered_at is not None) is answered


def test_a_reading_after_a_reminder_still_answers_the_open_question(services: Services) -> None:
    def arrange(s: Any) -> None:
        p = add_patient(s)
        add_outbox(s, p, ask="fever_check", sent_at=NOW - timedelta(hours=3))
        add_outbox(s, p, message="calcium_vitamin_d", ask=None, sent_at=NOW - timedelta(hours=1))

    setup(services, arrange)
    result = handle_sms(services, sms("101.8"), NOW)
    assert result.severity == "urgent" and "fever" in result.flags


def test_it_does_not_match_a_question_older_than_48_hours(services: Services) -> None:
    setup(services, lambda s: add_outbox(s, add_patient(s), sent_at=NOW - timedelta(hours=49)))
    fake = ScriptedAssess()
    assert handle_sms(services, sms("4"), NOW, assess=fake).outbox_id is None
    assert fake.calls == [("4", None)]


def test_it_reads_a_bare_number_as_a_temperature_under_the_fever_question(services: Services) -> None:
    setup(services, lambda s: add_outbox(s, add_patient(s), sent_at=NOW - timedelta(hours=1)))
    result = handle_sms(services, sms("101.8"), NOW)
    assert result.severity == "urgent" and "fever" in result.flags
    row = one(services, InboundMessage, InboundMessage.id == result.inbound_id)
    assert row.assessment["temperature_f"] == pytest.approx(101.8)
    assert row.flags == ["fever"] and row.severity == "urgent" and row.processed_at == NOW


def test_it_reads_a_full_width_digit_as_a_pain_score(services: Services) -> None:
    setup(
        services,
        lambda s: add_outbox(
            s, add_patient(s), message="pain_check", ask="pain_scale", sent_at=NOW - timedelta(hours=1)
        ),
    )
    result = handle_sms(services, sms("３"), NOW)
    row = one(services, InboundMessage, InboundMessage.id == result.inbound_id)
    assert row.body == "３" and row.assessment["pain_score"] == 3


def test_it_sends_the_emergency_reply_at_three_in_the_morning_patient_time(services: Services) -> None:
    three_am = datetime(2026, 3, 4, 8, 0, tzinfo=UTC)  # 03:00 in New York
    setup(services, lambda s: add_patient(s))
    result = handle_sms(services, sms("I can't breathe and my chest hurts"), three_am)
    assert result.reply_template == "reply_emergency"
    assert "911" in (result.reply_text or "")
    assert result.alert_opened and result.severity == "emergency"


def test_it_sends_the_988_lifeline_for_self_harm(services: Services) -> None:
    setup(services, lambda s: add_patient(s, language="es"))
    result = handle_sms(services, sms("quiero matarme"), NOW)
    assert result.reply_template == "reply_self_harm"
    assert "988" in (result.reply_text or "") and "911" in (result.reply_text or "")


def test_a_yes_to_the_mood_screen_gets_the_crisis_line_and_waits_for_a_person(services: Services) -> None:
    setup(
        services,
        lambda s: add_outbox(
            s, add_patient(s), message="mood_check", ask="mood_check", sent_at=NOW - timedelta(hours=1)
        ),
    )
    result = handle_sms(services, sms("yes"), NOW)
    assert result.reply_template == "reply_mood"
    assert "988" in (result.reply_text or "") and "not alone" in (result.reply_text or "")
    row = one(services, InboundMessage, InboundMessage.id == result.inbound_id)
    assert row.severity == "watch" and row.handled_at is None  # in the console's inbox
    # "No" to the same screen is thanked as before.
    setup(
        services,
        lambda s: add_outbox(
            s,
            add_patient(s, phone="+16175550199"),
            message="mood_check",
            ask="mood_check",
            sent_at=NOW - timedelta(hours=1),
        ),
    )
    assert handle_sms(services, sms("no", phone="+16175550199"), NOW).reply_template == "reply_thanks"


def test_it_tells_an_urgent_patient_a_nurse_will_call(services: Services) -> None:
    setup(services, lambda s: add_patient(s))
    result = handle_sms(services, sms("my incision is leaking yellow pus"), NOW)
    assert result.reply_template == "reply_urgent" and "nurse will call" in (result.reply_text or "")


def test_it_asks_one_follow_up_on_ambiguity_and_the_care_team_sees_both(services: Services) -> None:
    pid = setup(
        services,
        lambda s: (
            (
                p := add_patient(s),
                add_outbox(
                    s, p, message="numbness_check", ask="numbness_check", sent_at=NOW - timedelta(hours=1)
                ),
            )[0].id
        ),
    )
    first = handle_sms(services, sms("my leg feels weird"), NOW)
    assert first.reply_template == "reply_clarify" and first.followup_outbox_id is not None
    follow = one(services, OutboxMessage, OutboxMessage.id == first.followup_outbox_id)
    assert follow.ask == "numbness_check" and follow.status == "sent" and follow.step_id == "followup"
    alert = one(services, Alert, Alert.patient_id == pid)
    assert alert.severity == "watch" and alert.kind == "red_flag"
    assert any(f.startswith("ambiguous:") for f in alert.flags)

    # Still ambiguous: no second follow-up (no loop); the answer joins the same alert.
    fake_later = NOW + timedelta(minutes=5)
    second = handle_sms(
        services,
        sms("still weird"),
        fake_later,
        assess=ScriptedAssess({"still weird": assessment(ambiguous=["numbness/weakness"])}),
    )
    assert second.reply_template == "reply_thanks" and second.followup_outbox_id is None
    assert second.outbox_id == first.followup_outbox_id
    assert count(services, Alert) == 1
    assert (
        one(services, OutboxMessage, OutboxMessage.id == first.followup_outbox_id).answered_at == fake_later
    )


def test_it_uses_the_question_context_for_the_answer_to_a_follow_up(services: Services) -> None:
    setup(
        services,
        lambda s: add_outbox(
            s,
            add_patient(s),
            ask="numbness_check",
            message="numbness_check",
            sent_at=NOW - timedelta(hours=1),
        ),
    )
    handle_sms(services, sms("my leg feels weird"), NOW)
    fake = ScriptedAssess()
    handle_sms(services, sms("yes it is new"), NOW + timedelta(minutes=3), assess=fake)
    assert fake.calls == [("yes it is new", "numbness_check")]


@pytest.mark.parametrize(
    "text",
    [
        "'); DROP TABLE patients;--",
        "{{7*7}}",
        "<script>alert(1)</script>",
        '=HYPERLINK("http://x","y")',
        "\r\nINFO fake log line",
    ],
)
def test_it_stores_injection_like_text_verbatim_and_never_renders_it(services: Services, text: str) -> None:
    setup(services, lambda s: add_patient(s))
    result = handle_sms(services, sms(text), NOW)
    assert one(services, InboundMessage, InboundMessage.id == result.inbound_id).body == text
    assert "49" not in (result.reply_text or "") and "<script>" not in (result.reply_text or "")
    assert count(services, Patient) == 1


# ---- dedupe, audit, logs -----------------------------------------------------------------------
def test_it_processes_a_replayed_message_sid_once_and_stays_silent_the_second_time(
    services: Services,
) -> None:
    setup(services, lambda s: add_patient(s))
    msg = sms("I fell in the bathroom")
    first = handle_sms(services, msg, NOW)
    second = handle_sms(services, msg, NOW + timedelta(seconds=5))
    assert first.alert_opened and not first.duplicate
    assert second.duplicate and second.reply_text is None
    assert count(services, InboundMessage) == 1 and count(services, Alert) == 1


def test_it_audits_in_and_out_without_text_or_phone(services: Services) -> None:
    setup(services, lambda s: add_patient(s))
    body = "fever 101.9 call me at 617-555-0123"
    handle_sms(services, sms(body), NOW)
    handle_sms(services, sms("HELP"), NOW)
    with services.sessions() as s:
        events = s.scalars(select(AuditEvent).order_by(AuditEvent.id)).all()
    actions = [e.action for e in events]
    assert actions.count("inbound.received") == 2 and actions.count("reply.sent") == 2
    assert "alert.opened" in actions
    dumped = json.dumps([e.detail for e in events])
    assert "101.9" not in dumped and "555" not in dumped and ANA_PHONE not in dumped
    assert all(e.patient_ref == "P-T" + e.patient_ref[3:] for e in events if e.patient_ref)


def test_it_logs_the_patient_reference_never_the_text_or_phone(
    services: Services, caplog: pytest.LogCaptureFixture
) -> None:
    ref = setup(services, lambda s: add_patient(s).reference)
    with caplog.at_level(logging.INFO, logger="checkin"):
        handle_sms(services, sms("my wound is leaking"), NOW)
    logged = " ".join(f"{r.getMessage()} {r.__dict__}" for r in caplog.records)
    assert ref in logged
    assert "leaking" not in logged and ANA_PHONE not in logged


def test_it_keeps_a_message_whose_processing_failed_out_of_the_database(services: Services) -> None:
    setup(services, lambda s: add_patient(s))

    def broken(text: str, context: str | None = None) -> Any:
        raise RuntimeError("triage bug")

    with pytest.raises(RuntimeError):
        inbound.handle_sms(services, sms("hello"), NOW, assess=broken)
    # One transaction: nothing half-done is left behind for a retry to trip over.
    assert count(services, InboundMessage) == 0 and count(services, AuditEvent) == 0


def _rows(services: Services, pid: int) -> list[OutboxMessage]:
    with services.sessions() as s:
        return list(
            s.scalars(select(OutboxMessage).where(OutboxMessage.patient_id == pid).order_by(OutboxMessage.id))
        )


def test_it_matches_by_patient_language_for_the_reply(services: Services) -> None:
    setup(services, lambda s: add_patient(s, language="es"))
    result = handle_sms(
        services,
        sms("me caí en el baño"),
        NOW,
        assess=ScriptedAssess({"me caí en el baño": assessment(Flag.FALL)}),
    )
    assert result.language == "es" and "enfermera" in (result.reply_text or "")


def test_it_counts_an_answer_on_one_channel_for_the_same_question_on_the_other(services: Services) -> None:
    # A patient who chose "both" gets each check-in by SMS and by email; a text answers both,
    # or the email copy would later be reported to the care team as a missed check-in.
    def arrange(s: Any) -> tuple[int, int, int]:
        p = add_patient(s)
        by_sms = add_outbox(s, p, ask="fever_check", sent_at=NOW - timedelta(hours=1))
        by_email = add_outbox(s, p, ask="fever_check", channel="email", sent_at=NOW - timedelta(hours=1))
        other = add_outbox(s, p, ask="wound_check", channel="email", sent_at=NOW - timedelta(hours=2))
        by_email.step_id = by_sms.step_id
        return by_sms.id, by_email.id, other.id

    by_sms, by_email, other = setup(services, arrange)
    handle_sms(services, sms("no fever"), NOW, assess=ScriptedAssess())
    assert one(services, OutboxMessage, OutboxMessage.id == by_sms).answered_at == NOW
    assert one(services, OutboxMessage, OutboxMessage.id == by_email).answered_at == NOW
    assert one(services, OutboxMessage, OutboxMessage.id == other).answered_at is None
