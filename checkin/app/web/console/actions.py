"""The nurse's actions on a patient, each in the caller's transaction and audited under the
signed-in person. Every function returns the key of the message the page then shows
(``DONE``), or a Refusal; none commits.

A reply to the patient is an outbox row like any other message to them: the dispatcher sends
it through the patient's channel, inside their send window, held while they have texted STOP.
Its key carries a nonce from the form, so a double click or a resubmitted form queues it once;
and the same words to the same patient within ``REPEAT_WINDOW`` are taken as the same reply
(the back button re-renders the form with a fresh nonce but the browser refills the text).
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from checkin.alerts import inbox, lifecycle
from checkin.app.web.console.access import Refusal
from checkin.app.web.console.patient import STAFF_REPLY_PREFIX
from checkin.enrollment import pause as pausing
from checkin.errors import CheckinError
from checkin.staff.signin import Current
from checkin.states import ChannelName, OutboxStatus
from checkin.store import audit, outbox
from checkin.store.db import rowcount
from checkin.store.models import (
    Alert,
    Enrollment,
    InboundMessage,
    OutboxMessage,
    Patient,
    StaffNote,
)

MAX_REPLY = 640  # four SMS segments; longer belongs in a phone call
MAX_NOTE = lifecycle.MAX_NOTE
REPLY_LIFETIME = timedelta(days=2)
REPEAT_WINDOW = timedelta(minutes=10)

DONE = {
    "acknowledged": "Acknowledged. Escalation stopped.",
    "already": "Already acknowledged; nothing changed.",
    "assigned": "Assigned to you.",
    "resolved": "Resolved.",
    "already_resolved": "Already resolved; nothing changed.",
    "noted": "Note added.",
    "replied": "Reply queued; it shows below once sent.",
    "reply_repeat": "That reply was already queued; it was not sent twice.",
    "paused": "Messages paused.",
    "resumed": "Messages resumed.",
    "rescheduled": "Surgery date changed; the plan is updated.",
    "withdrawn": "Withdrawn; no more messages will be sent.",
    "handled": "Marked as handled.",
}


def _alert_of(session: Session, patient: Patient, form: dict[str, str]) -> Alert | Refusal:
    raw = form.get("alert", "")
    alert = session.get(Alert, int(raw)) if raw.isdigit() else None
    if alert is None or alert.patient_id != patient.id:
        return Refusal(404, "No such alert for this patient.")
    return alert


def acknowledge(
    session: Session, who: Current, patient: Patient, form: dict[str, str], now: datetime
) -> str | Refusal:
    alert = _alert_of(session, patient, form)
    if isinstance(alert, Refusal):
        return alert
    done = lifecycle.acknowledge(session, alert.id, by=who.email, now=now)
    return "acknowledged" if done is not None and done.changed else "already"


def assign(
    session: Session, who: Current, patient: Patient, form: dict[str, str], now: datetime
) -> str | Refusal:
    alert = _alert_of(session, patient, form)
    if isinstance(alert, Refusal):
        return alert
    lifecycle.assign(session, alert.id, to=who.email, now=now)
    return "assigned"


def resolve(
    session: Session, who: Current, patient: Patient, form: dict[str, str], now: datetime
) -> str | Refusal:
    alert = _alert_of(session, patient, form)
    if isinstance(alert, Refusal):
        return alert
    note = form.get("note", "").strip()
    if not note:
        return Refusal(400, "Write a short note to resolve the alert.")
    done = lifecycle.resolve(session, alert.id, by=who.email, note=note, now=now)
    return "resolved" if done is not None and done.changed else "already_resolved"


def add_note(
    session: Session, who: Current, patient: Patient, form: dict[str, str], now: datetime
) -> str | Refusal:
    text = form.get("text", "").strip()
    if not text:
        return Refusal(400, "The note is empty.")
    note = StaffNote(patient_id=patient.id, author=who.email, at=now, text=text[:MAX_NOTE])
    session.add(note)
    session.flush()
    # The note's text may be clinical: the audit row says only that one was written.
    audit.record(
        session,
        at=now,
        actor=who.email,
        action="patient.noted",
        patient_ref=patient.reference,
        subject=f"note:{note.id}",
    )
    return "noted"


def reply(
    session: Session, who: Current, patient: Patient, form: dict[str, str], now: datetime
) -> str | Refusal:
    text = " ".join(form.get("reply", "").split())  # one paragraph: SMS has no layout
    once = form.get("once", "")
    if not text:
        return Refusal(400, "The reply is empty.")
    if len(text) > MAX_REPLY:
        return Refusal(400, f"The reply is longer than {MAX_REPLY} characters; call the patient instead.")
    if not once.isalnum() or not 16 <= len(once) <= 64:
        return Refusal(400, "This form is incomplete. Reload the page and try again.")
    enrollment = session.scalar(
        select(Enrollment)
        .where(Enrollment.patient_id == patient.id)
        .order_by(Enrollment.created_at.desc(), Enrollment.id.desc())
        .limit(1)
    )
    recent = session.scalar(
        select(OutboxMessage.id).where(
            OutboxMessage.patient_id == patient.id,
            OutboxMessage.key.startswith(STAFF_REPLY_PREFIX),
            OutboxMessage.body == text,
            OutboxMessage.created_at > now - REPEAT_WINDOW,
        )
    )
    if recent is not None:
        return "reply_repeat"  # the same words again within minutes: a resubmitted form, not news
    channel = "sms" if patient.phone and (enrollment is None or enrollment.channel != "email") else "email"
    key = f"{STAFF_REPLY_PREFIX}{patient.id}:{once}"
    held = channel == ChannelName.SMS and patient.sms_opted_out
    inserted = outbox.enqueue(
        session,
        {
            "key": key,
            "enrollment_id": enrollment.id if enrollment else None,
            "patient_id": patient.id,
            "step_id": "staff_reply",
            "occurrence": 0,
            "channel": channel,
            "message": "staff_reply",
            "body": text,
            "subject": "A message from your care team" if channel == "email" else None,
            "urgent": False,  # a nurse's reply waits for the patient's send window like any message
            "due_at": now,
            "expires_at": now + REPLY_LIFETIME,
            "status": OutboxStatus.HELD if held else OutboxStatus.PENDING,
            "status_reason": outbox.OPTED_OUT if held else None,
            "attempts": 0,
            "created_at": now,
            "updated_at": now,
        },
    )
    if not inserted:
        return "reply_repeat"
    row_id = session.scalar(select(OutboxMessage.id).where(OutboxMessage.key == key))
    audit.record(
        session,
        at=now,
        actor=who.email,
        action="patient.replied",
        patient_ref=patient.reference,
        subject=f"outbox:{row_id}",
        channel=channel,
        chars=len(text),
    )
    return "replied"


def pause(
    session: Session, who: Current, patient: Patient, form: dict[str, str], now: datetime
) -> str | Refusal:
    pausing.pause(session, patient, now=now, actor=who.email)
    return "paused"


def resume(
    session: Session, who: Current, patient: Patient, form: dict[str, str], now: datetime
) -> str | Refusal:
    pausing.resume(session, patient, now=now, actor=who.email)
    return "resumed"


def reschedule(
    session: Session, who: Current, patient: Patient, form: dict[str, str], now: datetime, schedules: Any
) -> str | Refusal:
    from checkin.enrollment.enroll import reschedule as move

    try:
        new_date = date.fromisoformat(form.get("surgery_date", ""))
    except ValueError:
        return Refusal(400, "Surgery date: use YYYY-MM-DD.")
    try:
        move(session, patient.mrn, new_date, schedules=schedules, now=now, actor=who.email)
    except (CheckinError, ValueError) as exc:
        return Refusal(400, f"Not rescheduled: {exc}")
    return "rescheduled"


def withdraw(
    session: Session, who: Current, patient: Patient, form: dict[str, str], now: datetime
) -> str | Refusal:
    from checkin.enrollment.enroll import withdraw as end

    if form.get("confirm") != "yes":
        return Refusal(400, "Tick the box to confirm the withdrawal.")
    try:
        end(session, patient.mrn, now=now, actor=who.email, reason="withdrawn by staff")
    except (CheckinError, ValueError) as exc:
        return Refusal(400, f"Not withdrawn: {exc}")
    return "withdrawn"


def handled(
    session: Session, who: Current, patient: Patient, form: dict[str, str], now: datetime
) -> str | Refusal:
    raw = form.get("inbound", "")
    if not raw.isdigit():
        return Refusal(404, "No such message for this patient.")
    changed = rowcount(
        session.execute(
            update(InboundMessage)
            .where(
                InboundMessage.id == int(raw),
                InboundMessage.patient_id == patient.id,
                InboundMessage.handled_at.is_(None),
            )
            .values(handled_at=now, handled_by=who.email)
            .execution_options(synchronize_session=False)
        )
    )
    audit.record(
        session,
        at=now,
        actor=who.email,
        action="inbound.handled" if changed else "inbound.handle_repeated",
        patient_ref=patient.reference,
        subject=f"inbound:{raw}",
    )
    if changed:
        inbox.resolve_when_handled(session, patient.id, by=who.email, now=now)
    return "handled"


ACTIONS = {
    "ack": acknowledge,
    "assign": assign,
    "resolve": resolve,
    "note": add_note,
    "reply": reply,
    "pause": pause,
    "resume": resume,
    "withdraw": withdraw,
    "handled": handled,
}
