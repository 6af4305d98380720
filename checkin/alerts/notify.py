"""Tell the care team about an alert: compose the escalation ladder's messages into the outbox.

Contract of ``escalate(session, alert, ...)`` (used at once when an alert opens or its severity
rises, via ``alert_changed``, and by the escalation sweep):

- **One step at a time, on time, once.** ``alert.escalation_level`` counts the steps of the
  team's ladder for the alert's severity already issued; step *k* is due ``after_k`` from the
  instant the alert opened (or its severity rose). A step is claimed with a compare-and-set
  (``UPDATE alerts SET escalation_level = k+1 … WHERE id = ? AND escalation_level = k AND
  status = 'open'``): of two sweeps racing, or a sweep racing an acknowledgement, exactly one
  wins; the loser issues nothing. The messages are outbox rows with deterministic keys
  ``alert:<id>:<severity>:<step>:<target>:<recipient>`` inserted with ``ON CONFLICT DO
  NOTHING``, a second guard: whatever races, a step's message to one person exists once.
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
  default team) gets the team email instead, so a ladder step always tells someone.

Functions add to the caller's session and never commit.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from checkin import tokens
from checkin.alerts import lifecycle
from checkin.alerts.lifecycle import AlertChange
from checkin.config import Settings
from checkin.content.render import Renderer
from checkin.core.care_teams import CareTeam, CareTeams
from checkin.states import (
    AlertKind,
    AlertStatus,
    ChannelName,
    EnrollmentStatus,
    OutboxStatus,
    supported_language,
)
from checkin.store import audit, outbox
from checkin.store.models import (
    Alert,
    Enrollment,
    InboundMessage,
    OutboxMessage,
    Patient,
)

log = logging.getLogger(__name__)
ops = logging.getLogger("checkin.ops")

TEAM_EMAIL, ON_CALL_SMS, ON_CALL_EMAIL = "team_email", "on_call_sms", "on_call_email"
# A page that could not go out within this long is stale: the sweep's next step or the digest
# will have said more by then. Long enough to ride out an SMTP relay outage.
MESSAGE_LIFETIME = timedelta(hours=12)
CONVERSATION_LENGTH = 6
MAX_REPLIES = 5
KEY_LIMIT = 200  # outbox.key is VARCHAR(200)

FLAG_LABELS = {
    "fever": "fever",
    "wound_drainage": "wound drainage",
    "wound_redness": "wound redness/swelling",
    "new_numbness": "new numbness/tingling",
    "new_weakness": "new weakness",
    "bowel_bladder": "bowel/bladder control (cauda equina?)",
    "chest_breathing": "chest pain/breathing",
    "calf_clot": "calf pain/swelling (clot?)",
    "severe_pain": "severe pain",
    "csf_leak": "possible CSF leak",
    "swallowing": "trouble swallowing",
    "fall": "fall",
    "self_harm": "self-harm / suicide risk",
}
KIND_LABELS: dict[str, str] = {
    AlertKind.RED_FLAG: "red-flag reply",
    AlertKind.CONTACT_PROBLEM: "cannot reach patient",
    AlertKind.MISSED_CHECKIN: "missed check-in",
}


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


def recipients(team: CareTeam, targets: Sequence[str]) -> list[Recipient]:
    """Who a ladder step's ``targets`` reach, deduplicated per (channel, address)."""
    out: dict[tuple[str, str], Recipient] = {}

    def team_emails(target: str) -> None:
        for email in team.emails:
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
    key = f"alert:{alert.id}:{alert.severity}:{level}:{r.target}:{r.address}"
    if len(key) > KEY_LIMIT:  # a very long address: still deterministic, still unique
        digest = hashlib.sha256(r.address.encode()).hexdigest()[:24]
        key = f"alert:{alert.id}:{alert.severity}:{level}:{r.target}:{digest}"
    return key


# ---- content ------------------------------------------------------------------------------


def _local(when: datetime | None, tz: ZoneInfo) -> str:
    return when.astimezone(tz).strftime("%a %b %d %H:%M %Z") if when else ""


def alert_context(
    session: Session,
    alert: Alert,
    *,
    settings: Settings,
    renderer: Renderer,
    level: int,
    steps: int,
    link: str,
    current: InboundMessage | None = None,
) -> dict[str, Any]:
    """Everything the staff templates may use (documented in templates/staff/README.md).
    ``current``: the reply being processed, whose row is not written yet (inbound writes its
    outcome last), so it is shown from the object, not found by a query."""
    patient = session.get(Patient, alert.patient_id)
    assert patient is not None
    tz = ZoneInfo(settings.default_timezone)
    replies = list(
        session.scalars(
            select(InboundMessage)
            .where(
                InboundMessage.patient_id == alert.patient_id,
                InboundMessage.received_at >= alert.opened_at,
                or_(
                    InboundMessage.severity.in_(("urgent", "emergency", "watch")),
                    InboundMessage.id == alert.inbound_id,
                ),
            )
            .order_by(InboundMessage.received_at.desc(), InboundMessage.id.desc())
            .limit(MAX_REPLIES)
        )
    )
    if current is not None:
        replies = [current, *(r for r in replies if r.id != current.id)][:MAX_REPLIES]
    if alert.inbound_id is not None and all(r.id != alert.inbound_id for r in replies):
        first = session.get(InboundMessage, alert.inbound_id)
        if first is not None:
            replies.append(first)
    reply_items = []
    for r in replies:
        evidence = [
            {
                "flag": str(e.get("topic", "")),
                "label": FLAG_LABELS.get(str(e.get("topic")), str(e.get("topic"))),
                "words": str(e.get("words", "")),
                "kind": str(e.get("kind", "flag")),
            }
            for e in ((r.assessment or {}).get("evidence") or [])
            if isinstance(e, dict)
        ]
        reply_items.append(
            {
                "text": r.body or "",
                "at": _local(r.received_at or r.processed_at, tz),
                "severity": r.severity or "",
                "flags": list(r.flags or []),
                "evidence": evidence,
            }
        )
    return {
        "severity": alert.severity,
        "severity_upper": alert.severity.upper(),
        "kind": alert.kind,
        "kind_label": KIND_LABELS.get(alert.kind, alert.kind),
        "alert_id": alert.id,
        "reference": patient.reference,
        "phone": patient.phone or "",
        "email": patient.email or "",
        "flags": [{"code": f, "label": FLAG_LABELS.get(f, f)} for f in alert.flags or []],
        "replies": reply_items,
        "conversation": conversation(session, patient, settings=settings, renderer=renderer, current=current),
        "opened_at": _local(alert.opened_at, tz),
        "ack_link": link,
        "step": level + 1,
        "steps": steps,
        "escalated": level > 0,
        "clinic_name": settings.clinic_name,
        "clinic_phone": settings.clinic_phone,
    }


def conversation(
    session: Session,
    patient: Patient,
    *,
    settings: Settings,
    renderer: Renderer,
    limit: int = CONVERSATION_LENGTH,
    current: InboundMessage | None = None,
) -> list[dict[str, str]]:
    """The patient's last ``limit`` messages in and out, oldest first. Timeline messages are
    re-rendered from their templates (the outbox stores the template, not the text)."""
    from checkin.content.catalog import message_context

    tz = ZoneInfo(settings.default_timezone)
    ins = session.execute(
        select(InboundMessage.received_at, InboundMessage.body)
        .where(InboundMessage.patient_id == patient.id)
        .order_by(InboundMessage.received_at.desc(), InboundMessage.id.desc())
        .limit(limit)
    ).all()
    outs = session.scalars(
        select(OutboxMessage)
        .where(
            OutboxMessage.patient_id == patient.id,
            OutboxMessage.status == OutboxStatus.SENT,
            OutboxMessage.sent_at.is_not(None),
        )
        .order_by(OutboxMessage.sent_at.desc(), OutboxMessage.id.desc())
        .limit(limit)
    ).all()
    items: list[tuple[datetime, str, str]] = [(at, "in", body) for at, body in ins]
    if current is not None and current.body is not None:
        items.append(
            (
                current.received_at or current.processed_at or datetime.max.replace(tzinfo=tz),
                "in",
                current.body,
            )
        )
    lang = supported_language(patient.language)
    for row in outs:
        if row.recipient not in (None, patient.phone, patient.email):
            continue  # a message to staff about this patient, not part of the conversation
        text = row.body
        if text is None:
            try:
                ctx = message_context(
                    settings, first_name=patient.first_name, language=lang, day=row.occurrence
                )
                text = renderer.render_sms(row.message, lang, ctx).text
            except Exception:  # noqa: BLE001 - a template problem must not block the alert
                text = f"({row.message})"
        assert row.sent_at is not None
        items.append((row.sent_at, "out", text))
    items.sort(key=lambda i: i[0])
    return [{"at": _local(at, tz), "direction": d, "text": t} for at, d, t in items[-limit:]]


@dataclass(frozen=True)
class Composed:
    subject: str | None
    text: str
    html: str | None
    fallback: bool  # the built-in text was used because a template failed


def _render(renderer: Renderer, name: str, ctx: dict[str, Any]) -> str:
    return renderer.env.get_template(name).render(dict(ctx))


def compose_email(renderer: Renderer, ctx: dict[str, Any]) -> Composed:
    """``staff/alert.{subject,txt,html}.j2`` rendered, or the built-in text on any failure."""
    try:
        # A newline in a subject would start a new mail header: keep it on one line.
        subject = " ".join(_render(renderer, "staff/alert.subject.j2", ctx).split())
        text = _render(renderer, "staff/alert.txt.j2", ctx).strip() + "\n"
        html = _render(renderer, "staff/alert.html.j2", ctx).strip() + "\n"
        if not subject.upper().startswith(ctx["severity_upper"]) or ctx["reference"] not in subject:
            raise ValueError("the subject must start with the severity and name the patient reference")
        return Composed(subject[:300], text, html, False)
    except Exception as exc:  # noqa: BLE001 - admin-written templates: any failure falls back
        ops.error(
            "staff alert template failed; sent the built-in text",
            extra={"event": "alert.template_fallback", "alert_id": ctx.get("alert_id"), "error": str(exc)},
        )
        return Composed(fallback_subject(ctx), fallback_text(ctx), None, True)


def fallback_subject(ctx: dict[str, Any]) -> str:
    return f"{ctx['severity_upper']}: patient {ctx['reference']} - {ctx['kind_label']}"


def fallback_text(ctx: dict[str, Any]) -> str:
    return (
        f"{ctx['severity_upper']} alert for patient {ctx['reference']} ({ctx['kind_label']}).\n"
        f"Call back: {ctx['phone'] or 'no phone on file'}\n"
        f"Open and acknowledge: {ctx['ack_link']}\n"
    )


def compose_sms(renderer: Renderer, ctx: dict[str, Any]) -> Composed:
    """``staff/on_call.txt.j2``: severity, reference, "check email / call back"; nothing more
    (SMS is not a private channel)."""
    try:
        text = " ".join(_render(renderer, "staff/on_call.txt.j2", ctx).split())
        if not text:
            raise ValueError("renders to an empty message")
        return Composed(None, text[:320], None, False)
    except Exception as exc:  # noqa: BLE001
        ops.error(
            "on-call SMS template failed; sent the built-in text",
            extra={"event": "alert.template_fallback", "alert_id": ctx.get("alert_id"), "error": str(exc)},
        )
        return Composed(
            None,
            f"{ctx['clinic_name']}: {ctx['severity_upper']} alert, patient {ctx['reference']}. "
            "Check your email or call the care team.",
            None,
            True,
        )


# ---- escalation ---------------------------------------------------------------------------


def _step_due(alert: Alert, team: CareTeam) -> tuple[int, datetime, datetime | None] | None:
    """(level, when step ``level`` is due, when the one after is due) or None if nothing is left.

    ``next_escalation_at`` holds, at level 0, the instant the ladder (re)started (set by
    ``checkin.alerts.lifecycle``); at level k > 0 the due time of step k. So the start is recoverable and
    every step stays on the ladder's clock even when the sweep runs late."""
    steps = team.steps(alert.severity)
    level = alert.escalation_level
    if alert.next_escalation_at is None or level >= len(steps):
        return None
    start = alert.next_escalation_at - (steps[level].after if level > 0 else timedelta(0))
    nxt = start + steps[level + 1].after if level + 1 < len(steps) else None
    return level, start + steps[level].after, nxt


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
    while alert.status == AlertStatus.OPEN:
        due = _step_due(alert, team)
        if due is None:
            if alert.next_escalation_at is not None:  # ladder finished (or shortened by an edit)
                lifecycle.end_ladder(session, alert)
            break
        level, due_at, nxt = due
        if due_at > now:
            break
        if not lifecycle.take_step(session, alert, level, next_at=nxt, now=now):
            break  # another worker took this step, or a nurse acknowledged meanwhile
        inserted += issue_step(
            session,
            alert,
            team,
            level,
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
    """Insert step ``level``'s messages (idempotent by key); returns rows inserted."""
    steps = team.steps(alert.severity)
    step = steps[level]
    people = recipients(team, step.notify)
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
                level=level,
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
        action="alert.notified" if level == 0 else "alert.escalated",
        patient_ref=base_ctx["reference"] if base_ctx else None,
        subject=f"alert:{alert.id}",
        severity=alert.severity,
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
    """Notify at once for a new alert or a severity rise (``change.renotify``); a join without
    a rise says nothing (storm suppression). Returns outbox rows inserted."""
    if change is None or not change.renotify:
        return 0
    return escalate(
        session, change.alert, settings=settings, renderer=renderer, now=now, teams=teams, current=current
    )
