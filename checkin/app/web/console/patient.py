"""What the patient page shows, loaded in one transaction with the view's audit row.

Contract of ``load``: the patient by reference, or a Refusal (404 unknown, 403 another team's:
audited as ``patient.view_refused``); when shown, one ``patient.viewed`` audit row (who, which
patient, when). The thread is the last ``THREAD`` messages in and out (clinic messages
rendered from their templates, staff replies as written, with their delivery state), each
reply with its triage; the timeline, alerts with their audit history, charts and notes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import or_, select
from sqlalchemy.orm import Session, aliased

from checkin.alerts.notify import FLAG_LABELS, KIND_LABELS
from checkin.app.web.console import charts
from checkin.app.web.console.access import Refusal
from checkin.app.web.console.render import age, local
from checkin.app.web.console.teams import may_see
from checkin.app.web.console.worklist import post_op_day
from checkin.config import Settings
from checkin.content.render import Renderer
from checkin.staff.signin import Current
from checkin.states import OutboxStatus
from checkin.store import audit, consents
from checkin.store.models import (
    Alert,
    AuditEvent,
    Enrollment,
    InboundMessage,
    OutboxMessage,
    Patient,
    StaffNote,
)

THREAD = 200
TIMELINE = 400
STAFF_REPLY_PREFIX = "staff-reply:"


@dataclass
class PatientView:
    reference: str
    first_name: str
    phone: str
    email: str
    language: str
    team: str
    surgery_date: date | None
    procedure: str
    post_op_day: int | None
    enrollment_status: str
    sms_opted_out: bool
    paused: bool
    consent: list[str] = field(default_factory=list)  # "SMS granted (hl7, 2026-03-01)"
    thread: list[dict[str, Any]] = field(default_factory=list)
    timeline: list[dict[str, Any]] = field(default_factory=list)
    alerts: list[dict[str, Any]] = field(default_factory=list)
    notes: list[dict[str, Any]] = field(default_factory=list)
    pain_svg: str = ""
    temp_svg: str = ""


def find(session: Session, reference: str) -> tuple[Patient, Enrollment | None] | None:
    """The patient and their latest enrollment, in one query."""
    other = aliased(Enrollment)
    latest = (
        select(other.id)
        .where(other.patient_id == Patient.id)
        .order_by(other.created_at.desc(), other.id.desc())
        .limit(1)
        .correlate(Patient)
        .scalar_subquery()
    )
    row = session.execute(
        select(Patient, Enrollment)
        .outerjoin(Enrollment, Enrollment.id == latest)
        .where(Patient.reference == reference[:16])
    ).first()
    return (row[0], row[1]) if row is not None else None


def check_access(
    session: Session, who: Current, reference: str, *, now: datetime, default_team: str, action: str
) -> tuple[Patient, str] | Refusal:
    """The patient and their team if ``who`` may act on them; else an audited Refusal."""
    found = _access(session, who, reference, now=now, default_team=default_team, action=action)
    return found if isinstance(found, Refusal) else (found[0], found[2])


def _access(
    session: Session, who: Current, reference: str, *, now: datetime, default_team: str, action: str
) -> tuple[Patient, Enrollment | None, str] | Refusal:
    found = find(session, reference)
    if found is None:
        return Refusal(404, "No patient with that reference.")
    patient, enrollment = found
    team = (enrollment.care_team if enrollment else None) or default_team
    if not may_see(who, team):
        audit.record(
            session,
            at=now,
            actor=who.email,
            action="patient.view_refused",
            patient_ref=patient.reference,
            attempted=action,
        )
        return Refusal(403, "This patient is not on your team.")
    return patient, enrollment, team


def load(
    session: Session,
    who: Current,
    reference: str,
    *,
    now: datetime,
    settings: Settings,
    renderer: Renderer,
    default_team: str,
) -> PatientView | Refusal:
    found = _access(session, who, reference, now=now, default_team=default_team, action="view")
    if isinstance(found, Refusal):
        return found
    patient, enrollment, team = found
    tz = ZoneInfo(settings.default_timezone)
    surgery = enrollment.surgery_date if enrollment else None
    audit.record(session, at=now, actor=who.email, action="patient.viewed", patient_ref=patient.reference)
    outbox = list(
        session.scalars(
            select(OutboxMessage)
            .where(OutboxMessage.patient_id == patient.id)
            .order_by(OutboxMessage.due_at.desc(), OutboxMessage.id.desc())
            .limit(TIMELINE)
        )
    )
    view = PatientView(
        reference=patient.reference,
        first_name=patient.first_name,
        phone=patient.phone or "",
        email=patient.email or "",
        language=patient.language,
        team=team,
        surgery_date=surgery,
        procedure=enrollment.procedure if enrollment else "",
        post_op_day=post_op_day(surgery, now, tz),
        enrollment_status=enrollment.status if enrollment else "none",
        sms_opted_out=patient.sms_opted_out,
        paused=patient.paused_at is not None,
        consent=[
            f"{c.channel.upper() if c.channel == 'sms' else c.channel} {c.decision} "
            f"({c.source}, {c.recorded_at.astimezone(tz):%Y-%m-%d})"
            for c in consents.current(consents.history(session, patient.id)).values()
        ],
    )
    inbound = list(
        session.scalars(
            select(InboundMessage)
            .where(InboundMessage.patient_id == patient.id)
            .order_by(InboundMessage.received_at.desc(), InboundMessage.id.desc())
            .limit(THREAD)
        )
    )
    # One read of the patient's audit trail serves both the reply authors and alert histories.
    trail = list(
        session.scalars(
            select(AuditEvent)
            .where(
                AuditEvent.patient_ref == patient.reference,
                or_(AuditEvent.action == "patient.replied", AuditEvent.action.startswith("alert.")),
            )
            .order_by(AuditEvent.at, AuditEvent.id)
        )
    )
    authors = {e.subject: e.actor for e in trail if e.action == "patient.replied"}
    view.thread = _thread(patient, inbound, outbox, settings, renderer, tz, authors)
    view.timeline = [
        {
            "step": r.step_id,
            "message": r.message,
            "channel": r.channel,
            "due": local(r.due_at, tz),
            "status": r.status,
            "reason": r.status_reason or "",
        }
        for r in sorted(outbox, key=lambda r: (r.due_at, r.id))
        if not r.key.startswith(STAFF_REPLY_PREFIX)
    ]
    view.alerts = _alerts(session, patient, tz, now, trail)
    view.notes = [
        {"author": n.author, "at": local(n.at, tz), "text": n.text}
        for n in session.scalars(
            select(StaffNote)
            .where(StaffNote.patient_id == patient.id)
            .order_by(StaffNote.at.desc())
            .limit(100)
        )
    ]
    pain, temp = [], []
    for m in sorted(inbound, key=lambda m: m.received_at):
        a = m.assessment or {}
        day = post_op_day(surgery, m.received_at, ZoneInfo(patient.timezone))
        if day is None:
            continue
        if isinstance(a.get("pain_score"), int | float):
            pain.append((day, float(a["pain_score"])))
        if isinstance(a.get("temperature_f"), int | float):
            temp.append((day, float(a["temperature_f"])))
    view.pain_svg = charts.svg(charts.PAIN, pain, chart_id="pain")
    view.temp_svg = charts.svg(charts.TEMPERATURE, temp, chart_id="temp")
    return view


def _thread(
    patient: Patient,
    inbound: list[InboundMessage],
    outbox: list[OutboxMessage],
    settings: Settings,
    renderer: Renderer,
    tz: ZoneInfo,
    authors: dict[str | None, str],
) -> list[dict[str, Any]]:
    """The last ``THREAD`` messages in and out, oldest first (ties: replies before sends)."""
    items = [(m.received_at, m.id, _inbound_item(m, tz)) for m in inbound]
    lang = patient.language if patient.language in ("en", "es") else "en"
    for r in outbox:
        item = _outbound_item(patient, r, lang, settings, renderer, tz, authors)
        if item is not None:
            items.append((r.sent_at or r.created_at, -r.id, item))
    items.sort(key=lambda i: (i[0], i[1]))
    return [i[2] for i in items[-THREAD:]]


def _inbound_item(m: InboundMessage, tz: ZoneInfo) -> dict[str, Any]:
    a = m.assessment or {}
    evidence = [
        {
            "label": FLAG_LABELS.get(str(e.get("topic")), str(e.get("topic"))),
            "words": str(e.get("words", "")),
        }
        for e in a.get("evidence") or []
        if isinstance(e, dict)
    ]
    return {
        "direction": "in",
        "at": local(m.received_at, tz),
        "text": m.body,
        "severity": m.severity or "",
        "flags": [FLAG_LABELS.get(f, f) for f in m.flags or []],
        "evidence": evidence,
        "keyword": m.keyword or "",
        "inbound_id": m.id,
        "waiting": m.handled_at is None,
        "handled_by": m.handled_by or "",
    }


def _outbound_item(
    patient: Patient,
    r: OutboxMessage,
    lang: str,
    settings: Settings,
    renderer: Renderer,
    tz: ZoneInfo,
    authors: dict[str | None, str],
) -> dict[str, Any] | None:
    """A message sent to the patient, or a staff reply in any state; None for a page to a
    nurse about this patient and for planned messages (those are in the timeline)."""
    staff_reply = r.key.startswith(STAFF_REPLY_PREFIX)
    if r.recipient not in (None, patient.phone, patient.email):
        return None
    if not staff_reply and (r.status != OutboxStatus.SENT or r.sent_at is None):
        return None
    when = r.sent_at or r.created_at
    return {
        "direction": "out",
        "at": local(when, tz),
        "text": r.body if r.body is not None else _rendered(patient, r, lang, settings, renderer),
        "by": authors.get(f"outbox:{r.id}", "") if staff_reply else "",
        "staff": staff_reply,
        "status": r.status,
        "reason": r.status_reason or "",
        "channel": r.channel,
    }


def _rendered(patient: Patient, r: OutboxMessage, lang: str, settings: Settings, renderer: Renderer) -> str:
    from checkin.content.catalog import message_context

    try:
        ctx = message_context(settings, first_name=patient.first_name, language=lang, day=r.occurrence)
        return renderer.render_sms(r.message, lang, ctx).text
    except Exception:  # noqa: BLE001 - one broken template must not hide the thread
        return f"({r.message})"


def _alerts(
    session: Session, patient: Patient, tz: ZoneInfo, now: datetime, trail: list[AuditEvent]
) -> list[dict[str, Any]]:
    alerts = list(
        session.scalars(
            select(Alert).where(Alert.patient_id == patient.id).order_by(Alert.opened_at.desc()).limit(50)
        )
    )
    history: dict[str, list[dict[str, str]]] = {}
    for e in trail:
        if e.action.startswith("alert."):
            history.setdefault(e.subject or "", []).append(
                {"at": local(e.at, tz), "actor": e.actor, "action": e.action.removeprefix("alert.")}
            )
    return [
        {
            "id": a.id,
            "kind": KIND_LABELS.get(a.kind, a.kind),
            "severity": a.severity,
            "status": a.status,
            "flags": [FLAG_LABELS.get(f, f) for f in a.flags or []],
            "opened": local(a.opened_at, tz),
            "age": age(a.opened_at, now),
            "assigned_to": a.assigned_to or "",
            "resolution_note": a.resolution_note or "",
            "history": history.get(f"alert:{a.id}", []),
        }
        for a in alerts
    ]
