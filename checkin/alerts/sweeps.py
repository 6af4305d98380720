"""The worker's single-step sweeps for alerts: escalation, missed check-ins, reminders, digest.

Each ``*_once(services, now)`` does one bounded pass and returns how much it did; the worker
calls it on an interval (APScheduler is only the tick: the state lives in the database). All of
them are safe to run in two workers at once:

- ``escalate_once``: per alert, ``checkin.alerts.notify.escalate`` claims a step with a compare-and-set
  on ``alerts.escalation_level`` and inserts its messages under unique keys.
- ``missed_once`` / ``remind_once``: a compare-and-set on ``outbox.missed_at`` /
  ``outbox.reminded_at`` (``… WHERE id = ? AND missed_at IS NULL``) decides who acts.
- ``digest_once`` (``checkin.alerts.digest``, re-exported here): the day's claim row
  ``digest:<team>:<date>`` is inserted with ``ON CONFLICT DO NOTHING``; only the transaction
  that inserted it composes the emails.

Each alert or row is handled in its own short transaction, so one bad row cannot stall the rest.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from sqlalchemy import exists, or_, select
from sqlalchemy.orm import Session

from checkin.alerts import inbox, notify
from checkin.alerts import lifecycle as alerts
from checkin.alerts.digest import DIGEST_HOUR, Digest, collect_digest, digest_once
from checkin.deps import Services
from checkin.states import AlertKind, AlertStatus, EnrollmentStatus, OutboxStatus
from checkin.store import audit, outbox
from checkin.store.models import (
    Alert,
    Enrollment,
    OutboxMessage,
    Patient,
)

log = logging.getLogger(__name__)
ops = logging.getLogger("checkin.ops")

# Questions sent longer ago than this are history, not a missed check-in to report today (this
# also keeps a first deployment from alerting about every unanswered question of the past).
LOOKBACK = timedelta(days=3)
REMINDER_LIFETIME = timedelta(hours=12)  # when the question sets no missed_after
INTERVALS = {"escalate_once": 30, "missed_once": 60, "remind_once": 60, "digest_once": 300}  # seconds


# ---- escalation ---------------------------------------------------------------------------


def escalate_once(services: Services, now: datetime, *, limit: int = 200) -> int:
    """Issue every escalation step (and news of a new red flag) due at ``now`` for open alerts; returns outbox rows
    inserted. Acknowledged and resolved alerts have no ``next_escalation_at`` and are never
    selected (and the compare-and-set re-checks ``status = 'open'``)."""
    with services.sessions() as session:
        ids = list(
            session.scalars(
                select(Alert.id)
                .where(
                    Alert.status == AlertStatus.OPEN,
                    or_(Alert.next_escalation_at <= now, Alert.news_at <= now),
                )
                .order_by(Alert.next_escalation_at, Alert.id)
                .limit(limit)
            )
        )
    teams = services.care_teams.current()
    inserted = 0
    for alert_id in ids:
        with services.sessions() as session, session.begin():
            alert = session.get(Alert, alert_id)
            if alert is None or alert.status != AlertStatus.OPEN:
                continue
            inserted += notify.escalate(
                session, alert, settings=services.settings, renderer=services.renderer, now=now, teams=teams
            )
    return inserted


# ---- missed check-ins and unreachable patients --------------------------------------------


def _deadline(sent_at: datetime | None, seconds: int | None) -> datetime | None:
    return sent_at + timedelta(seconds=seconds) if sent_at is not None and seconds is not None else None


def missed_once(services: Services, now: datetime, *, limit: int = 500) -> int:
    """Open (or join) a ``missed_checkin`` alert for each sent question unanswered past
    ``sent_at + missed_after``, once per question (``outbox.missed_at``); a question whose
    reminder was answered counts as answered. Also opens a ``contact_problem`` alert, once per
    opt-out, for an enrolled patient who opted out of SMS (STOP, or Twilio's 21610): the team
    must find another way to follow their recovery. And puts what waited too long for a person
    on the ladder (``checkin.alerts.inbox.waiting_once``). Notifications go out at once (ladder
    step 0). Returns alerts opened or joined."""
    with services.sessions() as session:
        candidates = session.execute(
            select(OutboxMessage.id, OutboxMessage.key, OutboxMessage.sent_at, OutboxMessage.missed_after_s)
            .where(
                OutboxMessage.ask.is_not(None),
                OutboxMessage.status == OutboxStatus.SENT,
                OutboxMessage.answered_at.is_(None),
                OutboxMessage.missed_at.is_(None),
                OutboxMessage.missed_after_s.is_not(None),
                OutboxMessage.patient_id.is_not(None),
                OutboxMessage.sent_at >= now - LOOKBACK - timedelta(days=2),
                OutboxMessage.sent_at <= now,
            )
            .order_by(OutboxMessage.sent_at)
            .limit(limit)
        ).all()
    done = 0
    for row_id, key, sent_at, missed_after in candidates:
        deadline = _deadline(sent_at, missed_after)
        if deadline is None or deadline > now or deadline < now - LOOKBACK:
            continue
        with services.sessions() as session, session.begin():
            done += _missed(session, services, row_id, key, now)
    return done + _opted_out(services, now) + inbox.waiting_once(services, now)


def _missed(session: Session, services: Services, row_id: int, key: str, now: datetime) -> int:
    reminder_answered = session.scalar(
        select(OutboxMessage.answered_at).where(
            OutboxMessage.key == f"{key}:remind", OutboxMessage.answered_at.is_not(None)
        )
    )
    if reminder_answered is not None:
        # The patient answered the nudge (replies match the latest question): so the question.
        outbox.adopt_answer(session, row_id, reminder_answered, now)
        return 0
    if not outbox.mark_missed(session, row_id, now):
        return 0  # another worker had it
    row = session.get(OutboxMessage, row_id)
    assert row is not None and row.patient_id is not None
    patient = session.get(Patient, row.patient_id)
    enrollment = session.get(Enrollment, row.enrollment_id) if row.enrollment_id is not None else None
    if patient is None or (enrollment is not None and enrollment.status != EnrollmentStatus.ACTIVE):
        return 0
    change = alerts.open_missed_checkin(
        session, patient=patient, enrollment=enrollment, question=row, now=now
    )
    notify.alert_changed(
        session,
        change,
        settings=services.settings,
        renderer=services.renderer,
        now=now,
        teams=services.care_teams.current(),
    )
    return 1


def _opted_out(services: Services, now: datetime) -> int:
    told = exists().where(
        Alert.patient_id == Patient.id,
        Alert.kind == AlertKind.CONTACT_PROBLEM,
        Alert.updated_at >= Patient.sms_opted_out_at,
    )
    active = exists().where(Enrollment.patient_id == Patient.id, Enrollment.status == EnrollmentStatus.ACTIVE)
    with services.sessions() as session:
        ids = list(
            session.scalars(
                select(Patient.id)
                .where(
                    Patient.sms_opted_out.is_(True),
                    Patient.sms_opted_out_at.is_not(None),
                    Patient.sms_opted_out_at >= now - LOOKBACK,
                    active,
                    ~told,
                )
                .limit(200)
            )
        )
    done = 0
    for pid in ids:
        with services.sessions() as session, session.begin():
            patient = session.get(Patient, pid, with_for_update=not services.is_sqlite)
            if patient is None or not patient.sms_opted_out:
                continue
            if session.scalar(
                select(Alert.id)
                .where(
                    Alert.patient_id == pid,
                    Alert.kind == AlertKind.CONTACT_PROBLEM,
                    Alert.updated_at >= patient.sms_opted_out_at,
                )
                .limit(1)
            ):
                continue  # told already (another worker, or the inbound path's opt-out candidate)
            change = alerts.open_contact_problem(session, patient=patient, reason="opted_out", now=now)
            notify.alert_changed(
                session,
                change,
                settings=services.settings,
                renderer=services.renderer,
                now=now,
                teams=services.care_teams.current(),
            )
            done += 1
    return done


# ---- reminders ----------------------------------------------------------------------------


def remind_once(services: Services, now: datetime, *, limit: int = 500) -> int:
    """Nudge once for each sent question unanswered past ``sent_at + remind_after``: a new
    outbox row, key ``<original key>:remind``, same patient, message, ask and channel, due now,
    not urgent (so the dispatcher keeps it inside the send window), expiring at the question's
    ``missed_after`` deadline (a nudge after the team was told is pointless). ``reminded_at``
    is set on the original by compare-and-set. Returns reminders planned."""
    with services.sessions() as session:
        candidates = session.execute(
            select(OutboxMessage.id, OutboxMessage.sent_at, OutboxMessage.remind_after_s)
            .where(
                OutboxMessage.ask.is_not(None),
                OutboxMessage.status == OutboxStatus.SENT,
                OutboxMessage.answered_at.is_(None),
                OutboxMessage.reminded_at.is_(None),
                OutboxMessage.remind_after_s.is_not(None),
                OutboxMessage.patient_id.is_not(None),
                OutboxMessage.sent_at >= now - LOOKBACK,
                OutboxMessage.sent_at <= now,
            )
            .order_by(OutboxMessage.sent_at)
            .limit(limit)
        ).all()
    planned = 0
    for row_id, sent_at, remind_after in candidates:
        due = _deadline(sent_at, remind_after)
        if due is None or due > now:
            continue
        with services.sessions() as session, session.begin():
            planned += _remind(session, row_id, now)
    return planned


def _remind(session: Session, row_id: int, now: datetime) -> int:
    if not outbox.mark_reminded(session, row_id, now):
        return 0
    row = session.get(OutboxMessage, row_id)
    assert row is not None and row.sent_at is not None
    expires = _deadline(row.sent_at, row.missed_after_s) or now + REMINDER_LIFETIME
    if expires <= now:
        return 0
    inserted = outbox.enqueue(
        session,
        {
            "key": f"{row.key}:remind"[:200],
            "enrollment_id": row.enrollment_id,
            "patient_id": row.patient_id,
            "step_id": row.step_id,
            "occurrence": row.occurrence,
            "channel": row.channel,
            "message": row.message,
            "ask": row.ask,
            "recipient": row.recipient,
            "urgent": False,
            "due_at": now,
            "expires_at": expires,
            # The nudge itself is never nudged nor reported missed: the original carries both.
            "remind_after_s": None,
            "missed_after_s": None,
            "status": OutboxStatus.PENDING,
            "attempts": 0,
            "created_at": now,
            "updated_at": now,
        },
    )
    if inserted:
        ref = session.scalar(select(Patient.reference).where(Patient.id == row.patient_id))
        audit.record(
            session,
            at=now,
            actor="system",
            action="outbox.reminder_planned",
            patient_ref=ref,
            subject=f"outbox:{row.id}",
            message=row.message,
        )
    return int(inserted)


__all__ = [
    "DIGEST_HOUR",
    "INTERVALS",
    "Digest",
    "collect_digest",
    "digest_once",
    "escalate_once",
    "missed_once",
    "remind_once",
]
