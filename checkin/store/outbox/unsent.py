"""Rows that are not being sent: what the re-check at send time decides, what enrollment,
opt-out, alerts and sweeps do to unsent rows, and adding rows.

``held`` is the opt-out state: an SMS row waits there while the patient has texted STOP
(we learn it from their STOP or from the provider refusing the number), and goes back to
``pending`` when they text START.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from checkin.states import OUTBOX_UNSENT, ChannelName, OutboxStatus
from checkin.store import audit
from checkin.store.db import insert_new, rowcount
from checkin.store.models import OutboxMessage, Patient

OPTED_OUT = "patient opted out of SMS"


def enqueue(session: Session, values: Mapping[str, Any]) -> bool:
    """Add one row unless a row with its ``key`` exists (the key makes planning, reminders,
    escalations and digests idempotent across workers); True if it was added."""
    return enqueue_new(session, values) is not None


def enqueue_new(session: Session, values: Mapping[str, Any]) -> int | None:
    """``enqueue``, returning the new row's id; None if a row with its ``key`` exists."""
    new_id = insert_new(session, OutboxMessage, values, ["key"])
    return None if new_id is None else int(new_id)


def record_reply(session: Session, values: Mapping[str, Any]) -> int:
    """Add a row for a message already sent another way (the webhook's own reply), so the
    answer it asks for can be matched; returns its id."""
    row = OutboxMessage(**values)
    session.add(row)
    session.flush()
    return row.id


# ---- the re-check at send time: a claimed row that must not go now ------------------------


def defer(
    session: Session,
    row: OutboxMessage,
    *,
    until: datetime | None,
    reason: str,
    now: datetime,
    patient_ref: str | None,
) -> None:
    """Claimed → ``pending`` from ``until`` on (outside the send window); audited
    ``outbox.deferred``. No provider call was made, so the claim's attempt is uncounted."""
    row.next_attempt_at = until
    _settle(session, row, OutboxStatus.PENDING, "outbox.deferred", reason, now, patient_ref, uncount=True)


def skip(
    session: Session, row: OutboxMessage, *, reason: str, now: datetime, patient_ref: str | None
) -> None:
    """Claimed → ``skipped`` (expired, or the patient cannot be reached on this channel);
    audited ``outbox.skipped``; the attempt is uncounted."""
    _settle(session, row, OutboxStatus.SKIPPED, "outbox.skipped", reason, now, patient_ref, uncount=True)


def hold(
    session: Session, row: OutboxMessage, *, reason: str, now: datetime, patient_ref: str | None
) -> None:
    """Claimed → ``held`` (the patient opted out of SMS); audited ``outbox.held``; the attempt
    is uncounted."""
    _settle(session, row, OutboxStatus.HELD, "outbox.held", reason, now, patient_ref, uncount=True)


def cancel(
    session: Session, row: OutboxMessage, *, reason: str, now: datetime, patient_ref: str | None
) -> None:
    """Claimed → ``cancelled`` (the enrollment was withdrawn); audited ``outbox.cancelled``;
    the attempt is uncounted."""
    _settle(session, row, OutboxStatus.CANCELLED, "outbox.cancelled", reason, now, patient_ref, uncount=True)


def reject(
    session: Session,
    row: OutboxMessage,
    *,
    reason: str,
    now: datetime,
    patient_ref: str | None,
    uncount: bool = True,
) -> None:
    """Claimed → ``dead`` before any provider call (no recipient, a broken template);
    audited ``outbox.dead``."""
    _settle(session, row, OutboxStatus.DEAD, "outbox.dead", reason, now, patient_ref, uncount=uncount)


def _settle(
    session: Session,
    row: OutboxMessage,
    status: OutboxStatus,
    action: str,
    reason: str,
    now: datetime,
    patient_ref: str | None,
    *,
    uncount: bool,
) -> None:
    if uncount:
        row.attempts = max(row.attempts - 1, 0)
    row.status, row.status_reason, row.updated_at = status, reason, now
    row.claimed_by, row.lease_until = None, None
    audit.record_outbox(session, now, action, patient_ref, row.id, reason=reason)


# ---- sweeps over unsent rows ---------------------------------------------------------------


def skip_expired(session: Session, now: datetime) -> int:
    """Mark unsent rows whose ``expires_at`` has passed ``skipped`` ("expired"), with one
    audit row each; returns how many. Never sends: a late reminder is worse than none."""
    rows = session.execute(
        select(OutboxMessage.id, Patient.reference)
        .outerjoin(Patient, Patient.id == OutboxMessage.patient_id)
        .where(OutboxMessage.status.in_(OUTBOX_UNSENT), OutboxMessage.expires_at <= now)
    ).all()
    if not rows:
        return 0
    ids = [r[0] for r in rows]
    for chunk in _chunks(ids, 500):
        session.execute(
            update(OutboxMessage)
            .where(OutboxMessage.id.in_(chunk), OutboxMessage.status.in_(OUTBOX_UNSENT))
            .values(
                status=OutboxStatus.SKIPPED,
                status_reason="expired",
                claimed_by=None,
                lease_until=None,
                updated_at=now,
            )
            .execution_options(synchronize_session=False)
        )
    audit.record_outbox_many(
        session.connection(), now, "outbox.skipped", [(ref, oid) for oid, ref in rows], reason="expired"
    )
    return len(ids)


def plan_email_fallback(
    session: Session, row: OutboxMessage, patient: Patient, *, now: datetime, email_template_exists: bool
) -> int | None:
    """When an SMS cannot reach the patient (bad or landline number), plan the same step and
    occurrence by email, if the patient has an address and consented, the email template
    exists, the row is a timeline step and it has not expired. Returns the new row's id, or
    None (also when the email row already exists: its key is unique)."""
    if (
        row.channel != ChannelName.SMS
        or row.enrollment_id is None
        or row.body is not None
        or not patient.email
        or not patient.email_consent
        or not email_template_exists
        or now >= row.expires_at
    ):
        return None
    key = f"{row.enrollment_id}:{row.step_id}:{row.occurrence}:email"
    values = {
        "key": key,
        "enrollment_id": row.enrollment_id,
        "patient_id": row.patient_id,
        "step_id": row.step_id,
        "occurrence": row.occurrence,
        "channel": ChannelName.EMAIL,
        "message": row.message,
        "ask": row.ask,
        "urgent": row.urgent,
        "due_at": now,
        "expires_at": row.expires_at,
        "remind_after_s": row.remind_after_s,
        "missed_after_s": row.missed_after_s,
        "status": OutboxStatus.PENDING,
        "attempts": 0,
        "created_at": now,
        "updated_at": now,
    }
    new_id = enqueue_new(session, values)
    if new_id is None:
        return None
    audit.record_outbox(
        session,
        now,
        "outbox.fallback_planned",
        patient.reference,
        new_id,
        instead_of=f"outbox:{row.id}",
        channel=ChannelName.EMAIL,
    )
    return new_id


# ---- enrollment changes --------------------------------------------------------------------


def cancel_unsent(session: Session, enrollment_id: int, *, reason: str, now: datetime) -> int:
    """Every unsent row of a withdrawn enrollment → ``cancelled``; returns how many (the
    caller audits the withdrawal once, not each row)."""
    result = session.execute(
        update(OutboxMessage)
        .where(OutboxMessage.enrollment_id == enrollment_id, OutboxMessage.status.in_(OUTBOX_UNSENT))
        .values(status=OutboxStatus.CANCELLED, status_reason=reason[:200], updated_at=now)
        .execution_options(synchronize_session=False)
    )
    return rowcount(result)


def cancel_rescheduled(row: OutboxMessage, now: datetime) -> None:
    """An unsent row the new surgery date no longer plans → ``cancelled`` ("rescheduled")."""
    row.status, row.status_reason, row.updated_at = OutboxStatus.CANCELLED, "rescheduled", now


def move(
    row: OutboxMessage,
    *,
    due_at: datetime,
    expires_at: datetime,
    now: datetime,
    sms_opted_out: bool,
    followup_at: datetime | None = None,
    followup_where: str | None = None,
) -> None:
    """Give a planned row its new times after a reschedule or an anchor change (and the visit
    it names, for a visit reminder). A row that had not gone out (even one skipped or
    cancelled) is planned again: ``pending``, or ``held`` for an SMS while the patient is
    opted out."""
    row.due_at, row.expires_at, row.updated_at = due_at, expires_at, now
    row.followup_at, row.followup_where = followup_at, followup_where
    row.next_attempt_at = None
    if row.status not in OUTBOX_UNSENT:
        row.status, row.status_reason = OutboxStatus.PENDING, None
    if row.status == OutboxStatus.PENDING and row.channel == ChannelName.SMS and sms_opted_out:
        row.status = OutboxStatus.HELD


# ---- opting out and back in ----------------------------------------------------------------


def hold_sms_for_opt_out(
    session: Session, patient: Patient, *, now: datetime, actor: str, source: str, subject: str | None = None
) -> int:
    """The patient opted out of SMS (texted STOP, or the provider refuses their number for
    it): flag them and move their ``pending`` SMS rows to ``held`` (kept, so START can
    release them). Audited once as ``patient.sms_opted_out`` with ``source``; returns how many
    rows were held."""
    if not patient.sms_opted_out:
        patient.sms_opted_out, patient.sms_opted_out_at = True, now
    result = session.execute(
        update(OutboxMessage)
        .where(
            OutboxMessage.patient_id == patient.id,
            OutboxMessage.channel == ChannelName.SMS,
            OutboxMessage.status == OutboxStatus.PENDING,
        )
        .values(status=OutboxStatus.HELD, status_reason=OPTED_OUT, updated_at=now)
        .execution_options(synchronize_session=False)
    )
    held = rowcount(result)
    audit.record(
        session,
        at=now,
        actor=actor,
        action="patient.sms_opted_out",
        patient_ref=patient.reference,
        subject=subject,
        source=source,
        held=held,
    )
    return held


def release_sms_hold(
    session: Session, patient: Patient, *, now: datetime, actor: str, subject: str | None = None
) -> int:
    """The patient texted START: SMS back on; ``held`` rows that can still go out become
    ``pending``, expired ones ``skipped``. Audited ``patient.sms_opted_in``; returns how many
    were released."""
    patient.sms_opted_out = False
    patient.sms_opted_out_at = None
    base = (
        OutboxMessage.patient_id == patient.id,
        OutboxMessage.channel == ChannelName.SMS,
        OutboxMessage.status == OutboxStatus.HELD,
    )
    released = rowcount(
        session.execute(
            update(OutboxMessage)
            .where(*base, OutboxMessage.expires_at > now)
            .values(status=OutboxStatus.PENDING, status_reason=None, updated_at=now)
            .execution_options(synchronize_session=False)
        )
    )
    expired = rowcount(
        session.execute(
            update(OutboxMessage)
            .where(*base, OutboxMessage.expires_at <= now)
            .values(status=OutboxStatus.SKIPPED, status_reason="expired while opted out", updated_at=now)
            .execution_options(synchronize_session=False)
        )
    )
    audit.record(
        session,
        at=now,
        actor=actor,
        action="patient.sms_opted_in",
        patient_ref=patient.reference,
        subject=subject,
        released=int(released),
        skipped=int(expired),
    )
    return int(released)


# ---- alerts, answers, reminders and missed check-ins ----------------------------------------


def cancel_alert_notifications(session: Session, alert_id: int, *, now: datetime, why: str) -> int:
    """An alert's escalation messages not yet claimed → ``cancelled`` (someone has it in
    hand). Only ``pending`` rows: a row already claimed is sent, exactly once, anyway."""
    result = session.execute(
        update(OutboxMessage)
        .where(OutboxMessage.key.like(f"alert:{alert_id}:%"), OutboxMessage.status == OutboxStatus.PENDING)
        .values(status=OutboxStatus.CANCELLED, status_reason=why, updated_at=now)
        .execution_options(synchronize_session=False)
    )
    return rowcount(result)


def mark_reminded(session: Session, row_id: int, now: datetime) -> bool:
    """Claim the one reminder of an unanswered question; False if another worker has it."""
    won = rowcount(
        session.execute(
            update(OutboxMessage)
            .where(
                OutboxMessage.id == row_id,
                OutboxMessage.reminded_at.is_(None),
                OutboxMessage.answered_at.is_(None),
            )
            .values(reminded_at=now, updated_at=now)
            .execution_options(synchronize_session=False)
        )
    )
    return bool(won)


def mark_missed(session: Session, row_id: int, now: datetime) -> bool:
    """Claim the one missed-check-in report of an unanswered question; False if another
    worker has it."""
    won = rowcount(
        session.execute(
            update(OutboxMessage)
            .where(
                OutboxMessage.id == row_id,
                OutboxMessage.missed_at.is_(None),
                OutboxMessage.answered_at.is_(None),
            )
            .values(missed_at=now, updated_at=now)
            .execution_options(synchronize_session=False)
        )
    )
    return bool(won)


def _chunks(items: Sequence[Any], size: int) -> Iterable[Sequence[Any]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


__all__ = [
    "OPTED_OUT",
    "cancel",
    "cancel_alert_notifications",
    "cancel_rescheduled",
    "cancel_unsent",
    "defer",
    "enqueue",
    "hold",
    "hold_sms_for_opt_out",
    "mark_missed",
    "mark_reminded",
    "move",
    "plan_email_fallback",
    "record_reply",
    "reject",
    "release_sms_hold",
    "skip",
    "skip_expired",
]
