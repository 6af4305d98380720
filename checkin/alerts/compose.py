"""What the care team reads about an alert: the template context (the patient reference, the
flagged replies, the recent conversation) and the composed email and on-call SMS, with a
built-in plain text whenever an admin-edited staff template fails to render."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from checkin.config import Settings
from checkin.content.render import Renderer
from checkin.states import (
    AlertKind,
    OutboxStatus,
    supported_language,
)
from checkin.store.models import (
    Alert,
    InboundMessage,
    OutboxMessage,
    Patient,
)

log = logging.getLogger(__name__)
ops = logging.getLogger("checkin.ops")

CONVERSATION_LENGTH = 6
MAX_REPLIES = 5

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
    AlertKind.WAITING: "waiting too long for a person",
}


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
    reply_items = [_reply_item(r, tz) for r in _alert_replies(session, alert, current)]
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


def _alert_replies(session: Session, alert: Alert, current: InboundMessage | None) -> list[InboundMessage]:
    """The replies a nurse should read with ``alert``, newest first: the concerning ones since
    it opened (at most ``MAX_REPLIES``), the one being processed first, and always the reply
    that opened it."""
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
    return replies


def _reply_item(r: InboundMessage, tz: ZoneInfo) -> dict[str, Any]:
    """One reply as the staff templates show it, with the words triage flagged."""
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
    return {
        "text": r.body or "",
        "at": _local(r.received_at or r.processed_at, tz),
        "severity": r.severity or "",
        "flags": list(r.flags or []),
        "evidence": evidence,
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


__all__ = [
    "FLAG_LABELS",
    "KIND_LABELS",
    "Composed",
    "alert_context",
    "compose_email",
    "compose_sms",
    "conversation",
    "fallback_subject",
    "fallback_text",
]
