"""Tell the care team about an alert: compose the escalation ladder's messages into the outbox.

Contract of ``escalate(session, alert, ...)`` (used at once when an alert opens or its severity
rises, via ``alert_changed``, and by the escalation sweep):

- **One step at a time, on time, once.** ``alert.escalation_level`` counts the steps of the
  team's ladder for the alert's severity already issued; step *k* is due ``after_k`` from the
  instant the alert opened (or its severity rose). A step is claimed with a compare-and-set
  (``UPDATE alerts SET escalation_level = k+1 … WHERE id = ? AND escalation_level = k AND
  status = 'open'``): of two sweeps racing, or a sweep racing an acknowledgement, exactly one
  wins; the loser issues nothing. The messages are outbox rows with deterministic keys
  ``alert:<id>:r<round>:<severity>:<step>:<target>:<recipient>`` inserted with ``ON CONFLICT DO
  NOTHING``, a second guard: whatever races, a step's message to one person exists once per
  round (``checkin.alerts.lifecycle`` starts a new round when a new red flag re-opens the alert,
  and for news: a new flag on an open alert tells step 0's people at once).
- **News at once.** A new red flag on an open alert (``alert.news_at``, set by
  ``checkin.alerts.lifecycle``) is told to step 0's people in the alert's new round, claimed
  with a compare-and-set; the ladder's level and clock do not move.
- **Never quiet.** For urgent and emergency alerts the last step repeats every
  ``repeat_every`` of the team until someone acknowledges; repeats are levels past the ladder's
  end (level *n+j* is due ``after_last + (j+1)·repeat_every``). A sweep that runs late sends the
  latest overdue repeat only, never a burst of missed ones.
- **Through the outbox.** Rows are ``urgent`` (first in the queue, ignore the patients' send
  window), prerendered (``body``/``subject``/``html``, ``recipient``) and carry no
  ``patient_id``: a patient's STOP or a Twilio 21610 holds *that patient's* SMS, never a page to
  the on-call nurse. The dispatcher then sends them with its retries, exactly once.
- **Never lost to a template.** Staff templates (``templates/staff/``, admin-editable, same
  sandbox) that fail to render fall back to a built-in plain text naming the severity, the
  patient reference and the acknowledgement link; the failure is logged for ops.
- **Recipients.** ``team_email``: every nurse of the patient's team with an email
  (``enrollment.care_team`` → ``CareTeams.for_name``; the default team without a care-team
  file is CHECKIN_ALERT_EMAILS), one message each with a link signed for that nurse.
  ``on_call_sms``/``on_call_email``: the team's on-call contact; a team without one (the
  default team) gets the team email instead, so a ladder step always tells someone. Step 0 of
  an alert with an assignee goes to the assignee instead of the team email (on-call targets
  stay): the person who has it in hand hears of the new red flag first.

Functions add to the caller's session and never commit.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from checkin import tokens
from checkin.alerts import lifecycle
from checkin.alerts.compose import (
    FLAG_LABELS,
    KIND_LABELS,
    Composed,
    alert_context,
    compose_email,
    compose_sms,
)
from checkin.alerts.lifecycle import AlertChange
from checkin.config import Settings
from checkin.content.render import Renderer
from checkin.core.care_teams import CareTeam, CareTeams
from checkin.states import (
    AlertStatus,
    ChannelName,
    EnrollmentStatus,
    OutboxStatus,
)
from checkin.store import audit, outbox
from checkin.store.models import (
    Alert,
    Enrollment,
    InboundMessage,
)

log = logging.getLogger(__name__)
ops = logging.getLogger("checkin.ops")

TEAM_EMAIL, ON_CALL_SMS, ON_CALL_EMAIL = "team_email", "on_call_sms", "on_call_email"
# A page that could not go out within this long is stale: the sweep's next step or the digest
# will have said more by then. Long enough to ride out an SMTP relay outage.
MESSAGE_LIFETIME = timedelta(hours=12)
KEY_LIMIT = 200  # outbox.key is VARCHAR(200)

# ---- care teams ----------------------------------------------------------------------------


def team_for(session: Session, alert: Alert, teams: CareTeams) -> CareTeam:
    name = None
    if alert.enrollment_id is not None:
        name = session.scalar(select(Enrollment.care_team).where(Enrollment.id == alert.enrollment_id))
    if name is None:
        name = session.scalar(
            select(Enrollment.care_team)
            .where(Enrollment.patient_id == alert.patient_id, Enrollment.status == EnrollmentStatus.ACTIVE)
            .order_by(Enrollment.created_at.desc())
            .limit(1)
        )
    return teams.for_name(name)


@dataclass(frozen=True)
class Recipient:
    target: str  # the ladder target that produced it
    channel: str  # "email" | "sms"
    address: str


def recipients(team: CareTeam, targets: Sequence[str], assignee: str | None = None) -> list[Recipient]:
    """Who a ladder step's ``targets`` reach, deduplicated per (channel, address); with an
    ``assignee``, the team email reaches the assignee only."""
    out: dict[tuple[str, str], Recipient] = {}

    def team_emails(target: str) -> None:
        for email in (assignee,) if assignee else team.emails:
            out.setdefault(("email", email), Recipient(target, "email", email))

    on_call = team.on_call
    for target in targets:
        if target == ON_CALL_SMS and on_call is not None and on_call.phone:
            out.setdefault(("sms", on_call.phone), Recipient(target, "sms", on_call.phone))
        elif target in (ON_CALL_SMS, ON_CALL_EMAIL) and on_call is not None and on_call.email:
            out.setdefault(("email", on_call.email), Recipient(target, "email", on_call.email))
        else:  # team_email, or an on-call step for a team without one
            team_emails(target)
    return list(out.values())


def ack_token(settings: Settings, alert_id: int, recipient: str, now: datetime) -> str:
    """The signed token of the nurse page, stamped with the service clock's ``now`` (the page
    checks its age against the same clock, so the demo's simulated days and tests agree)."""
    return tokens.make_token(settings.secret_key, tokens.ALERT_SALT, {"a": alert_id, "r": recipient}, now=now)


def ack_link(settings: Settings, alert_id: int, recipient: str, now: datetime) -> str:
    """The nurse page for ``alert_id``, signed for ``recipient`` (HIPAA unique user
    identification: the acknowledgement is attributed to the person the link was sent to).
    The token holds only the alert id and that address, never patient data."""
    base = (settings.public_url or "http://localhost:8000").rstrip("/")
    return f"{base}/a/{ack_token(settings, alert_id, recipient, now)}"


def outbox_key(alert: Alert, level: int, r: Recipient) -> str:
    """``alert:<id>:r<round>:<severity>:<level>:<target>:<address>``: one message per person,
    step and round, whichever worker composes it."""
    head = f"alert:{alert.id}:r{alert.escalation_round or 0}:{alert.severity}:{level}:{r.target}"
    key = f"{head}:{r.address}"
    if len(key) > KEY_LIMIT:  # a very long address: still deterministic, still unique
        key = f"{head}:{hashlib.sha256(r.address.encode()).hexdigest()[:24]}"
    return key


# ---- escalation ---------------------------------------------------------------------------


def _offset(team: CareTeam, severity: str, level: int) -> timedelta | None:
    """When level ``level`` is due after the ladder (re)started; None past a ladder's end
    that does not repeat."""
    steps = team.steps(severity)
    if level < len(steps):
        return steps[level].after
    every = team.repeat(severity)
    if every is None or not steps:
        return None
    return steps[-1].after + (level - len(steps) + 1) * every


@dataclass(frozen=True)
class _Due:
    level: int  # the alert's level now
    issue: int  # the level to issue (past ``level`` only when overdue repeats are skipped)
    at: datetime  # when ``level`` fell due
    next_at: datetime | None  # when the level after ``issue`` falls due


def _step_due(alert: Alert, team: CareTeam, now: datetime) -> _Due | None:
    """The next step of ``alert``'s ladder, or None if nothing is left.

    ``next_escalation_at`` holds, at level 0, the instant the ladder (re)started (set by
    ``checkin.alerts.lifecycle``); at level k > 0 the due time of step k. So the start is recoverable and
    every step stays on the ladder's clock even when the sweep runs late."""
    level = alert.escalation_level
    off = _offset(team, alert.severity, level)
    if alert.next_escalation_at is None or off is None:
        return None
    start = alert.next_escalation_at - (off if level > 0 else timedelta(0))
    due, issue = start + off, level
    every = team.repeat(alert.severity)
    if every is not None and level >= len(team.steps(alert.severity)) and now > due:
        issue = level + (now - due) // every  # a late sweep sends the latest repeat only
    nxt = _offset(team, alert.severity, issue + 1)
    return _Due(level, issue, due, start + nxt if nxt is not None else None)


def escalate(
    session: Session,
    alert: Alert,
    *,
    settings: Settings,
    renderer: Renderer,
    now: datetime,
    teams: CareTeams,
    actor: str = "system",
    current: InboundMessage | None = None,
) -> int:
    """Issue every step of ``alert``'s ladder that is due at ``now`` (see the module
    docstring); returns how many outbox rows were inserted."""
    session.flush()  # the CAS below must see the caller's pending changes to the alert
    team = team_for(session, alert, teams)
    inserted = 0
    # News is step 0's people told again, in the alert's new round; the ladder does not move.
    news = alert.news_at is not None and alert.news_at <= now
    if news and lifecycle.take_news(session, alert, now=now) and team.steps(alert.severity):
        inserted += issue_step(
            session,
            alert,
            team,
            0,
            settings=settings,
            renderer=renderer,
            now=now,
            actor=actor,
            current=current,
        )
    while alert.status == AlertStatus.OPEN:
        due = _step_due(alert, team, now)
        if due is None:
            if alert.next_escalation_at is not None:  # ladder finished (or shortened by an edit)
                lifecycle.end_ladder(session, alert)
            break
        if due.at > now:
            break
        if not lifecycle.take_step(session, alert, due.level, next_at=due.next_at, now=now, issued=due.issue):
            break  # another worker took this step, a nurse acknowledged, or a new round began
        inserted += issue_step(
            session,
            alert,
            team,
            due.issue,
            settings=settings,
            renderer=renderer,
            now=now,
            actor=actor,
            current=current,
        )
    return inserted


def issue_step(
    session: Session,
    alert: Alert,
    team: CareTeam,
    level: int,
    *,
    settings: Settings,
    renderer: Renderer,
    now: datetime,
    actor: str = "system",
    current: InboundMessage | None = None,
) -> int:
    """Insert step ``level``'s messages (idempotent by key); returns rows inserted. Levels
    past the ladder's end repeat its last step."""
    steps = team.steps(alert.severity)
    step = steps[min(level, len(steps) - 1)]
    people = recipients(team, step.notify, alert.assigned_to if level == 0 else None)
    if not people:
        ops.error(
            "alert step reaches nobody: the team has no emails and no on-call contact",
            extra={"event": "alert.no_recipient", "alert_id": alert.id, "level": level, "team": team.id},
        )
    base_ctx: dict[str, Any] | None = None
    inserted, fallbacks = 0, 0
    for r in people:
        link = ack_link(settings, alert.id, r.address, now) if r.channel == ChannelName.EMAIL else ""
        if base_ctx is None:
            base_ctx = alert_context(
                session,
                alert,
                settings=settings,
                renderer=renderer,
                level=min(level, len(steps) - 1),
                steps=len(steps),
                link=link,
                current=current,
            )
        ctx = {**base_ctx, "ack_link": link, "recipient": r.address, "team_name": team.name}
        composed = (
            compose_email(renderer, ctx) if r.channel == ChannelName.EMAIL else compose_sms(renderer, ctx)
        )
        fallbacks += composed.fallback
        inserted += outbox.enqueue(
            session,
            {
                "key": outbox_key(alert, level, r),
                "enrollment_id": None,
                "patient_id": None,
                "step_id": f"alert-{alert.kind}"[:64],
                "occurrence": level,
                "channel": r.channel,
                "message": "staff_alert",
                "ask": None,
                "recipient": r.address,
                "body": composed.text,
                "subject": composed.subject,
                "html": composed.html,
                "urgent": True,
                "due_at": now,
                "expires_at": now + MESSAGE_LIFETIME,
                "status": OutboxStatus.PENDING,
                "attempts": 0,
                "created_at": now,
                "updated_at": now,
            },
        )
    audit.record(
        session,
        at=now,
        actor=actor,
        action="alert.notified"
        if level == 0
        else "alert.escalated"
        if level < len(steps)
        else "alert.repeated",
        patient_ref=base_ctx["reference"] if base_ctx else None,
        subject=f"alert:{alert.id}",
        severity=alert.severity,
        round=alert.escalation_round,
        step=level,
        targets=list(step.notify),
        team=team.id,
        messages=len(people),
        inserted=inserted,
        template_fallbacks=fallbacks,
    )
    return inserted


def alert_changed(
    session: Session,
    change: AlertChange | None,
    *,
    settings: Settings,
    renderer: Renderer,
    now: datetime,
    teams: CareTeams,
    current: InboundMessage | None = None,
) -> int:
    """Notify at once for a new alert, a new round or news (``change.renotify``); a join that
    brings nothing new says nothing (storm suppression). Returns outbox rows inserted."""
    if change is None or not change.renotify:
        return 0
    return escalate(
        session, change.alert, settings=settings, renderer=renderer, now=now, teams=teams, current=current
    )


__all__ = [
    "FLAG_LABELS",
    "KIND_LABELS",
    "Composed",
    "Recipient",
    "ack_link",
    "ack_token",
    "alert_changed",
    "alert_context",
    "compose_email",
    "compose_sms",
    "escalate",
    "issue_step",
    "outbox_key",
    "recipients",
    "team_for",
]
