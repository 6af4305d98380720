"""What waits for a person, and how it enters the escalation ladder when nobody handles it.

``needs_person()`` says which patient replies a person should read: not handled yet, and a
question, a watch-level reply (a positive mood screen among them), one that answered nothing we
asked, or an opt-out. Red-flag replies are not here: their alert is the item. The console's
inbox lists them, with the open watch-level alerts (missed check-ins, contact problems,
undecided red-flag topics).

``waiting_once`` (run with the missed-check-in sweep) is the contract that nothing waits
forever: a reply that needs a person, or an open (unacknowledged) watch-level alert, left
longer than ``CHECKIN_INBOX_ESCALATE_MINUTES`` opens (or joins) the patient's ``waiting``
alert at ``urgent``, so the team's urgent ladder runs for it and repeats until someone
acknowledges it. Once per item: an item older than the patient's latest ``waiting`` alert
update has been told. Marking the patient's last waiting reply handled resolves the alert
(``resolve_when_handled``). Items older than ``LOOKBACK`` are history, not news (this also keeps
a first deployment from paging about every old question).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import exists, literal, or_, select
from sqlalchemy.orm import Session

from checkin.alerts import lifecycle, notify
from checkin.deps import Services
from checkin.states import AlertKind, AlertStatus
from checkin.store.models import Alert, InboundMessage, Patient

LOOKBACK = timedelta(days=3)
BATCH = 200


def needs_person() -> Any:
    """Replies a person should read (see the module docstring). Mirrors the partial index
    ``ix_inbound_needs_person`` so the inbox never scans the whole message history."""
    return (
        InboundMessage.handled_at.is_(None),
        InboundMessage.patient_id.is_not(None),
        or_(
            InboundMessage.keyword.is_(None),
            InboundMessage.keyword == "stop",
        ),
        or_(InboundMessage.severity.is_(None), InboundMessage.severity.in_(("none", "watch"))),
        or_(
            InboundMessage.severity == "watch",
            InboundMessage.outbox_id.is_(None),
            InboundMessage.body.like(literal("%?%", literal_execute=True)),
            InboundMessage.keyword == "stop",
        ),
    )


def _told(patient_id: Any, since: Any) -> Any:
    """The patient's ``waiting`` alert was opened or touched after ``since``."""
    waiting = Alert.__table__.alias("waiting")
    return exists().where(
        waiting.c.patient_id == patient_id,
        waiting.c.kind == AlertKind.WAITING,
        waiting.c.updated_at >= since,
    )


def _due(session: Session, now: datetime, after: timedelta) -> list[tuple[int, str, int | None]]:
    """(patient id, what, inbound id) for each item waiting longer than ``after`` and not told."""
    cutoff, oldest = now - after, now - LOOKBACK
    replies = session.execute(
        select(InboundMessage.patient_id, InboundMessage.id)
        .where(
            *needs_person(),
            InboundMessage.received_at <= cutoff,
            InboundMessage.received_at >= oldest,
            ~_told(InboundMessage.patient_id, InboundMessage.received_at),
        )
        .order_by(InboundMessage.received_at)
        .limit(BATCH)
    ).all()
    alerts = session.execute(
        select(Alert.patient_id, Alert.kind)
        .where(
            Alert.status == AlertStatus.OPEN,
            Alert.severity == "watch",
            Alert.kind != AlertKind.WAITING,
            Alert.opened_at <= cutoff,
            Alert.opened_at >= oldest,
            ~_told(Alert.patient_id, Alert.opened_at),
        )
        .order_by(Alert.opened_at)
        .limit(BATCH)
    ).all()
    found = [(int(p), "reply", int(i)) for p, i in replies if p is not None]
    return found + [(int(p), str(k), None) for p, k in alerts]


def waiting_once(services: Services, now: datetime) -> int:
    """Put what has waited too long on the ladder (module docstring); returns patients told."""
    after = timedelta(minutes=services.settings.inbox_escalate_minutes)
    with services.sessions() as session:
        due = _due(session, now, after)
    by_patient: dict[int, list[tuple[str, int | None]]] = {}
    for patient_id, what, inbound_id in due:
        by_patient.setdefault(patient_id, []).append((what, inbound_id))
    teams = services.care_teams.current()
    told = 0
    for patient_id, items in by_patient.items():
        with services.sessions() as session, session.begin():
            # Locked like an inbound reply, so a reply being processed now cannot race the join.
            patient = session.get(Patient, patient_id, with_for_update=not services.is_sqlite)
            if patient is None:
                continue
            first = next((i for _, i in items if i is not None), None)
            change = lifecycle.open_waiting(
                session,
                patient=patient,
                waiting=sorted({w for w, _ in items}),
                inbound=session.get(InboundMessage, first) if first is not None else None,
                now=now,
            )
            notify.alert_changed(
                session, change, settings=services.settings, renderer=services.renderer, now=now, teams=teams
            )
            told += 1
    return told


def resolve_when_handled(session: Session, patient_id: int, *, by: str, now: datetime) -> bool:
    """After a reply was marked handled: when none of the patient's replies waits any more,
    resolve their unresolved ``waiting`` alert (the ladder stops). True if one was resolved."""
    still = session.scalar(
        select(InboundMessage.id).where(*needs_person(), InboundMessage.patient_id == patient_id).limit(1)
    )
    if still is not None:
        return False
    alert = lifecycle.unresolved(session, patient_id, AlertKind.WAITING)
    if alert is None:
        return False
    done = lifecycle.resolve(session, alert.id, by=by, note="every waiting reply was handled", now=now)
    return done is not None and done.changed
