"""The re-check at send time and the message as it goes out: both pure functions of the
row, its patient and enrollment, and the loaded content, so reconciliation can call them
again to recognise a message in the provider's list.

A claimed row is re-checked before its provider call (and again after a rate wait): the
enrollment still active, not expired (``now >= expires_at`` → ``skipped``; never sent late),
the patient not opted out of SMS (→ ``held``), the number not known bad (→ ``skipped``, with
an email fallback), and, unless the row is urgent, the patient's local clock inside the send
window (else back to ``pending`` at the next opening, or ``skipped`` if that is past expiry).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, time
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from checkin.channels import OutgoingMessage
from checkin.config import Settings
from checkin.content.catalog import message_context
from checkin.core.schedule.anchors import followup_for
from checkin.core.window import Window, in_window, next_allowed
from checkin.deps import Services
from checkin.errors import TemplateError
from checkin.states import ChannelName, EnrollmentStatus, OutboxStatus, PhoneStatus
from checkin.store.models import Enrollment, OutboxMessage, Patient
from checkin.tokens import checkin_link, reply_address

# The send window of a row whose schedule is not loaded: daytime, patient-local.
DEFAULT_WINDOW: Window = (time(9, 0), time(20, 0))


@dataclass(frozen=True)
class Verdict:
    """Why a claimed row must not go now, and where it goes instead."""

    status: OutboxStatus
    reason: str
    retry_at: datetime | None = None  # for ``pending``: the next allowed instant
    email_fallback: bool = False  # the SMS cannot reach the patient: try email


@dataclass(frozen=True)
class Prepared:
    """A claimed row, rendered and ready for its provider call."""

    row_id: int
    message: OutgoingMessage
    attempts: int  # including this one
    patient_id: int | None  # set when it goes to the patient: permanent errors act on them
    enrollment_id: int | None
    rate_key: str | None
    claimed_at: datetime

    @property
    def patient_ref(self) -> str | None:
        """The patient reference for audit rows (None for a staff message)."""
        return None if self.message.reference == "staff" else self.message.reference


def recheck(
    row: OutboxMessage, patient: Patient | None, enrollment: Enrollment | None, window: Window, now: datetime
) -> Verdict | None:
    """None if ``row`` may be sent at ``now``; else what to do with it instead. Pure."""
    if enrollment is not None and enrollment.status != EnrollmentStatus.ACTIVE:
        return Verdict(OutboxStatus.CANCELLED, "enrollment withdrawn")
    if now >= row.expires_at:
        return Verdict(OutboxStatus.SKIPPED, "expired")
    if to_patient(row, patient):
        assert patient is not None
        if row.channel == ChannelName.SMS:
            if patient.sms_opted_out:
                return Verdict(OutboxStatus.HELD, "patient opted out of SMS")
            if patient.phone_status != PhoneStatus.OK:
                return Verdict(
                    OutboxStatus.SKIPPED, f"phone number {patient.phone_status}", email_fallback=True
                )
            if not patient.phone:
                return Verdict(OutboxStatus.SKIPPED, "no phone number", email_fallback=True)
        else:
            if not patient.email:
                return Verdict(OutboxStatus.SKIPPED, "no email address")
            if not patient.email_consent:
                return Verdict(OutboxStatus.SKIPPED, "no consent to email")
    elif not row.recipient:
        return Verdict(OutboxStatus.DEAD, "no recipient")
    if not row.urgent and to_patient(row, patient):
        assert patient is not None  # the window is the patient's, not a nurse's
        tz = ZoneInfo(patient.timezone)
        if not in_window(now, window, tz):
            opens = next_allowed(now, window, tz)
            if opens >= row.expires_at:
                return Verdict(OutboxStatus.SKIPPED, "expired (send window closed)")
            return Verdict(OutboxStatus.PENDING, "outside the send window", retry_at=opens)
    return None


def build_message(
    services: Services, row: OutboxMessage, patient: Patient | None, enrollment: Enrollment | None
) -> OutgoingMessage:
    """The message exactly as it goes to the provider. Raises ``TemplateError``.

    Reconciliation calls it again to recognise the message in the provider's list, so it must
    stay a function of the row, the patient and the templates only (no clock, no randomness).
    """
    reference = patient.reference if patient is not None else "staff"
    to = row.recipient or patient_address(row.channel, patient) or ""
    channel = ChannelName(row.channel)
    settings = services.settings
    row_key = f"{row.key}|{row.created_at.isoformat()}"
    reply_to = None
    if channel == ChannelName.EMAIL and settings.email_reply_to and to_patient(row, patient):
        # Replies to this email come back to `checkin mail receive` carrying the row's token.
        reply_to = reply_address(settings.email_reply_to, settings.secret_key, row.id)
    if row.body is not None:
        return OutgoingMessage(
            outbox_id=row.id,
            to=to,
            channel=channel,
            text=row.body,
            reference=reference,
            subject=row.subject,
            html=row.html,
            reply_to=reply_to,
            row_key=row_key,
        )
    if patient is None:
        raise TemplateError(row.message, "a timeline row without a patient cannot be rendered")
    link = ""
    if channel == ChannelName.EMAIL and row.ask:
        link = checkin_link(settings.public_url, settings.secret_key, row.id, now=services.clock.now())
    context = message_context(
        settings,
        first_name=patient.first_name,
        language=patient.language,
        day=row.occurrence,
        care_team=enrollment.care_team if enrollment is not None else None,
        followup=followup_for(row.followup_at, row.followup_where, patient.timezone, patient.language),
        checkin_link=link,
    )
    if channel == ChannelName.SMS:
        sms = services.renderer.render_sms(row.message, patient.language, context)
        return OutgoingMessage(
            outbox_id=row.id, to=to, channel=ChannelName.SMS, text=sms.text, reference=reference
        )
    mail = services.renderer.render_email(row.message, patient.language, context)
    return OutgoingMessage(
        outbox_id=row.id,
        to=to,
        channel=ChannelName.EMAIL,
        text=mail.text,
        reference=reference,
        subject=mail.subject,
        html=mail.html,
        reply_to=reply_to,
        row_key=row_key,
    )


def load(
    session: Session, ids: Sequence[int]
) -> list[tuple[OutboxMessage, Patient | None, Enrollment | None]]:
    """Rows with their patient and enrollment, most urgent first, then oldest due."""
    return [
        (r, p, e)
        for r, p, e in session.execute(
            select(OutboxMessage, Patient, Enrollment)
            .outerjoin(Patient, Patient.id == OutboxMessage.patient_id)
            .outerjoin(Enrollment, Enrollment.id == OutboxMessage.enrollment_id)
            .where(OutboxMessage.id.in_(ids))
            .order_by(OutboxMessage.urgent.desc(), OutboxMessage.due_at, OutboxMessage.id)
        )
    ]


def window_for(services: Services, enrollment: Enrollment | None) -> Window:
    schedule = services.schedules.get(enrollment.procedure) if enrollment is not None else None
    return schedule.send_window if schedule is not None else DEFAULT_WINDOW


def sender_key(settings: Settings, channel: str) -> str | None:
    """The rate-limit key of the sender a message goes out from (SMS only: an SMTP relay
    takes what it is given, and Twilio's limit is per sending number or service)."""
    if channel != ChannelName.SMS:
        return None
    twilio = settings.twilio
    if twilio is None:
        return "sms:console"
    return "sms:" + (twilio.messaging_service_sid or twilio.from_number or twilio.account_sid)


def to_patient(row: OutboxMessage, patient: Patient | None) -> bool:
    """Whether the row is addressed to its patient (not to staff)."""
    if patient is None:
        return False
    return row.recipient is None or row.recipient in (patient.phone, patient.email)


def patient_address(channel: str, patient: Patient | None) -> str | None:
    if patient is None:
        return None
    return patient.phone if channel == ChannelName.SMS else patient.email


__all__ = [
    "DEFAULT_WINDOW",
    "Prepared",
    "Verdict",
    "build_message",
    "load",
    "patient_address",
    "recheck",
    "sender_key",
    "to_patient",
    "window_for",
]
