"""The demo's closing report: each patient's notable exchanges, the alerts, the captured email
and a JSON summary (also written to ``summary.json``)."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from checkin.demo.mailcatcher import MailCatcher, Received
from checkin.demo.patients import PERSONAS

if TYPE_CHECKING:
    from checkin.demo.run import Exchange, Simulation

TZ = ZoneInfo("America/New_York")
ALERT_SUBJECTS = ("EMERGENCY", "URGENT", "[EMERGENCY", "[URGENT")


@dataclass
class Figures:
    """What the database says happened, read in one session."""

    refs: dict[str, str] = field(default_factory=dict)  # MRN -> patient reference
    statuses: Counter[str] = field(default_factory=Counter)  # the timeline's own rows
    reminders: int = 0
    followups: int = 0
    staff_sent: int = 0
    inbound: Counter[str | None] = field(default_factory=Counter)  # replies by severity
    alerts: list[tuple[Any, ...]] = field(default_factory=list)
    patient_ref: dict[int, str] = field(default_factory=dict)  # patient id -> reference
    severity: dict[str, str] = field(default_factory=dict)  # MessageSid -> severity


def _count(s: Session, *where: Any) -> int:
    from checkin.store.models import OutboxMessage

    return int(s.scalar(select(func.count()).select_from(OutboxMessage).where(*where)) or 0)


def read_figures(services: Any) -> Figures:
    from checkin.store.models import Alert, InboundMessage, OutboxMessage, Patient

    f = Figures()
    with services.sessions() as s:
        f.refs = {mrn: ref for mrn, ref in s.execute(select(Patient.mrn, Patient.reference))}  # noqa: C416 - a Result has keys(): dict() would read it as a mapping
        # The timeline's own rows: not staff messages, digest claims, nudges or follow-ups.
        timeline = (
            OutboxMessage.recipient.is_(None),
            OutboxMessage.key.not_like("digest:%"),
            OutboxMessage.key.not_like("%:remind"),
            OutboxMessage.step_id != "followup",
        )
        by_status = select(OutboxMessage.status, func.count()).where(*timeline).group_by(OutboxMessage.status)
        f.statuses = Counter(dict(s.execute(by_status).all()))
        f.reminders = _count(s, OutboxMessage.key.like("%:remind"), OutboxMessage.status == "sent")
        f.followups = _count(s, OutboxMessage.step_id == "followup")
        f.staff_sent = _count(s, OutboxMessage.recipient.is_not(None), OutboxMessage.status == "sent")
        by_severity = select(InboundMessage.severity, func.count()).group_by(InboundMessage.severity)
        f.inbound = Counter(dict(s.execute(by_severity).all()))
        f.alerts = [
            (
                a.id,
                a.kind,
                a.severity,
                list(a.flags),
                a.status,
                a.escalation_level,
                a.opened_at,
                a.acknowledged_at,
                a.patient_id,
            )
            for a in s.scalars(select(Alert).order_by(Alert.opened_at))
        ]
        f.patient_ref = dict(s.execute(select(Patient.id, Patient.reference)).all())
        f.severity = {
            sid: sev or "none"
            for sid, sev in s.execute(select(InboundMessage.message_sid, InboundMessage.severity))
        }
    return f


def _exchange_line(e: Exchange, severity: dict[str, str]) -> str:
    arrow = {"out": "->", "in": "<-", "reply": "->"}[e.direction]
    text = " ".join(e.text.split())
    if len(text) > 110:
        text = text[:107] + "..."
    label = {
        "in": f" [{severity.get(e.sid or '', 'none')}]",
        "reply": " [reply]",
    }.get(e.direction, f" [{e.note}]" if e.note else "")
    return f"  {e.at.astimezone(TZ):%b %d %H:%M} {arrow} {text}{label}\n"


def write_conversations(sim: Simulation, f: Figures, out: TextIO, log_path: Path) -> None:
    for persona in PERSONAS:
        convo = sorted(sim.conversations[persona.mrn], key=lambda e: e.at)
        outs = sum(1 for e in convo if e.direction == "out")
        ins = sum(1 for e in convo if e.direction == "in")
        out.write(
            f"\n== {persona.first_name} ({f.refs.get(persona.mrn)}), {persona.procedure}, "
            f"{persona.language}, {persona.channel}: {outs} messages out, {ins} replies ==\n"
        )
        shown = notable(convo, f.severity)
        for e in shown:
            out.write(_exchange_line(e, f.severity))
        if len(shown) < len(convo):
            out.write(f"  ... {len(convo) - len(shown)} more routine messages (all in {log_path.name})\n")


def write_alerts(sim: Simulation, f: Figures, out: TextIO) -> Counter[str]:
    out.write("\n== Alerts ==\n")
    by_severity: Counter[str] = Counter()
    for aid, kind, severity, flags, status, level, opened, acked, pid in f.alerts:
        by_severity[severity] += 1
        acked_at = f" at {acked.astimezone(TZ):%H:%M}" if acked else ""
        out.write(
            f"  #{aid} {severity.upper():<9} {kind:<16} {f.patient_ref.get(pid)} flags={','.join(flags) or '-'} "
            f"opened {opened.astimezone(TZ):%b %d %H:%M}, {status}{acked_at}, escalation level {level}\n"
        )
    for at, alert_id, status in sim.acks:
        out.write(
            f"  nurse acknowledged #{alert_id} from the emailed page at {at.astimezone(TZ):%b %d %H:%M} "
            f"(HTTP {status}); its escalation stopped\n"
        )
    return by_severity


@dataclass
class Mail:
    emails: list[Received]
    nurse: list[Received]
    digests: list[Received]


def write_mail(mail: MailCatcher, out: TextIO) -> Mail:
    emails = mail.received
    patients = {p.email for p in PERSONAS if p.email}
    nurse = [m for m in emails if not set(m.to) & patients]
    to_patients = len(emails) - len(nurse)
    out.write(
        f"\n== Email captured by the local SMTP server: {len(emails)} "
        f"({to_patients} to patients, {len(nurse)} to the care team; each in email/NNNN.eml) ==\n"
    )
    digests = [m for m in nurse if m.subject.startswith("Daily digest")]
    for m in nurse:
        if m not in digests:
            out.write(f"  to {', '.join(m.to)}: {m.subject}\n")
    if digests:
        out.write(f"  ... and {len(digests)} daily digests, the last: {digests[-1].subject}\n")
    alert_mail = [m for m in nurse if m.subject.upper().startswith(ALERT_SUBJECTS)]
    if alert_mail:
        out.write("\n-- the first emergency/urgent alert email, as the nurse reads it --\n")
        out.write(alert_mail[0].text()[:2500] + "\n")
    return Mail(emails, nurse, digests)


def summarize(
    sim: Simulation, f: Figures, planned: int, by_severity: Counter[str], mail: Mail
) -> dict[str, Any]:
    counted = ("sent", "skipped", "cancelled", "pending")
    return {
        "patients": len(PERSONAS),
        "messages_planned": planned,
        "messages_sent": int(f.statuses.get("sent", 0)),
        "messages_skipped": int(f.statuses.get("skipped", 0)),
        "messages_cancelled": int(f.statuses.get("cancelled", 0)),
        "messages_pending": int(f.statuses.get("pending", 0)),
        "messages_other": {k: int(v) for k, v in f.statuses.items() if k not in counted},
        "reminders_sent": f.reminders,
        "follow_up_questions": f.followups,
        "staff_notifications_sent": f.staff_sent,
        "replies": sum(f.inbound.values()),
        "replies_by_severity": {k or "unassessed": int(v) for k, v in f.inbound.items()},
        "alerts_by_severity": dict(by_severity),
        "alert_emails": len(mail.nurse) - len(mail.digests),
        "daily_digests": len(mail.digests),
        "nurse_acknowledgements": len(sim.acks),
        "ladder_steps": sum(r[5] for r in f.alerts),  # first notifications and escalations
        "emails_captured": len(mail.emails),
        "webhook_responses": {str(k): v for k, v in sim.webhook_statuses.items()},
    }


def write_report(
    sim: Simulation,
    services: Any,
    mail: MailCatcher,
    planned: int,
    startup: Any,
    surgery: date,
    out: TextIO,
    workdir: Path,
    log_path: Path,
) -> dict[str, Any]:
    """Print the report to ``out``, write ``summary.json`` to ``workdir``; return the summary."""
    out.write(
        f"\ncheckin demo: {len(PERSONAS)} patients, surgery on {surgery:%a %b %d %Y}, "
        f"{sim.days} days of recovery\n{startup}\n"
    )
    f = read_figures(services)
    write_conversations(sim, f, out, log_path)
    by_severity = write_alerts(sim, f, out)
    captured = write_mail(mail, out)
    summary = summarize(sim, f, planned, by_severity, captured)
    out.write("\n== Summary ==\n" + json.dumps(summary, indent=2) + "\n")
    (workdir / "summary.json").write_text(json.dumps(summary, indent=2))
    return summary


def notable(convo: list[Exchange], severity: dict[str, str]) -> list[Exchange]:
    """The first three messages, then every reply that was not 'none' with the question it
    answered and the safety reply it got; routine traffic is only counted."""
    keep: list[Exchange] = []
    for i, e in enumerate(convo):
        if i < 3:
            keep.append(e)
            continue
        if e.direction == "in" and severity.get(e.sid or "", "none") != "none":
            before = convo[i - 1] if convo[i - 1].direction == "out" else None
            after = convo[i + 1] if i + 1 < len(convo) and convo[i + 1].direction == "reply" else None
            keep.extend(x for x in (before, e, after) if x is not None and x not in keep)
    return keep
