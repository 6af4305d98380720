"""What the worklist shows: open alerts, and the inbox of things that need a person.

- **Alerts**: red-flag alerts that are open or acknowledged, emergency first, then oldest.
- **Inbox**: replies nobody has handled that a person should read (a question, a watch-level
  reply, one triage could not decide or that answered nothing we asked, an opt-out), plus the
  missed check-in and contact-problem alerts. Red-flag replies are not repeated here: their
  alert is the item.
Both are limited to the teams the person may see and to ``LIMIT`` rows (the count says if more).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from checkin.alerts.inbox import needs_person
from checkin.alerts.lifecycle import UNRESOLVED
from checkin.alerts.notify import FLAG_LABELS, KIND_LABELS
from checkin.app.web.console.render import age
from checkin.app.web.console.teams import team_column, visible
from checkin.staff.signin import Current
from checkin.states import AlertKind
from checkin.store.models import Alert, Enrollment, InboundMessage, Patient

LIMIT = 100  # rows per list: more than a nurse can work from one screen; the heading says '+'
SEVERITIES = ("emergency", "urgent", "watch")
_ORDER = case({"emergency": 0, "urgent": 1, "watch": 2}, value=Alert.severity, else_=3)


@dataclass
class Filters:
    team: str | None = None
    severity: str | None = None
    mine: bool = False
    unassigned: bool = False

    @classmethod
    def parse(cls, q: dict[str, str]) -> Filters:
        severity = q.get("severity") if q.get("severity") in SEVERITIES else None
        team = (q.get("team") or "")[:64] or None
        who = q.get("who")
        return cls(team=team, severity=severity, mine=who == "mine", unassigned=who == "unassigned")


@dataclass
class Row:
    kind: str
    kind_label: str
    severity: str
    status: str
    flags: list[str]
    reference: str
    first_name: str
    team: str
    post_op_day: int | None
    age: str
    assigned_to: str | None
    alert_id: int | None = None
    text: str | None = None


@dataclass
class Worklist:
    alerts: list[Row] = field(default_factory=list)
    inbox: list[Row] = field(default_factory=list)
    more_alerts: bool = False
    more_inbox: bool = False


def post_op_day(surgery: date | None, now: datetime, tz: ZoneInfo) -> int | None:
    return (now.astimezone(tz).date() - surgery).days if surgery else None


def _surgery() -> Any:
    return (
        select(Enrollment.surgery_date)
        .where(Enrollment.patient_id == Patient.id)
        .order_by(Enrollment.created_at.desc(), Enrollment.id.desc())
        .limit(1)
        .scalar_subquery()
    )


def load(
    session: Session, who: Current, f: Filters, *, now: datetime, tz: ZoneInfo, default_team: str
) -> Worklist:
    team = team_column(default_team).label("team")
    scope = visible(who, default_team, f.team)
    out = Worklist()

    q = (
        select(Alert, Patient.reference, Patient.first_name, team, _surgery().label("surgery"))
        .join(Patient, Patient.id == Alert.patient_id)
        .where(Alert.status.in_(UNRESOLVED))
        .order_by(Alert.kind != AlertKind.RED_FLAG, _ORDER, Alert.opened_at, Alert.id)
        .limit(2 * LIMIT + 2)
    )
    if scope is not None:
        q = q.where(scope)
    if f.severity:
        q = q.where(Alert.severity == f.severity)
    if f.mine:
        q = q.where(Alert.assigned_to == who.email)
    if f.unassigned:
        q = q.where(Alert.assigned_to.is_(None))
    for alert, ref, first, team_name, surgery in session.execute(q):
        row = Row(
            kind=alert.kind,
            kind_label=KIND_LABELS.get(alert.kind, alert.kind),
            severity=alert.severity,
            status=alert.status,
            flags=[FLAG_LABELS.get(x, x) for x in alert.flags or []],
            reference=ref,
            first_name=first,
            team=team_name,
            post_op_day=post_op_day(surgery, now, tz),
            age=age(alert.opened_at, now),
            assigned_to=alert.assigned_to,
            alert_id=alert.id,
        )
        target = out.alerts if alert.kind == AlertKind.RED_FLAG else out.inbox
        if len(target) < LIMIT:
            target.append(row)
        elif alert.kind == AlertKind.RED_FLAG:
            out.more_alerts = True
        else:
            out.more_inbox = True
    if f.severity in ("emergency", "urgent") or f.mine:
        return out  # replies in the inbox are watch-level at most and assigned to nobody
    m = (
        select(InboundMessage, Patient.reference, Patient.first_name, team, _surgery().label("surgery"))
        .join(Patient, Patient.id == InboundMessage.patient_id)
        .where(*needs_person())
        .order_by(InboundMessage.received_at, InboundMessage.id)
        .limit(LIMIT + 1)
    )
    if scope is not None:
        m = m.where(scope)
    rows = session.execute(m).all()
    out.more_inbox = out.more_inbox or len(rows) > LIMIT
    for msg, ref, first, team_name, surgery in rows[:LIMIT]:
        out.inbox.append(
            Row(
                kind="reply",
                kind_label=_reply_label(msg),
                severity=msg.severity or "none",
                status="waiting",
                flags=[],
                reference=ref,
                first_name=first,
                team=team_name,
                post_op_day=post_op_day(surgery, now, tz),
                age=age(msg.received_at, now),
                assigned_to=None,
                text=msg.body,
            )
        )
    out.inbox.sort(key=lambda r: (r.kind == "reply", r.severity != "watch"))
    return out


def _reply_label(msg: InboundMessage) -> str:
    if msg.keyword == "stop":
        return "opted out (STOP)"
    if msg.severity == "watch":
        return "watch-level reply"
    if "?" in (msg.body or ""):
        return "question"
    return "unexpected message"


def counts(session: Session, who: Current, default_team: str) -> dict[str, int]:
    """Open red-flag alerts by severity (the page title and the poll's change detector)."""
    q = (
        select(Alert.severity, func.count())
        .join(Patient, Patient.id == Alert.patient_id)
        .where(Alert.status == "open", Alert.kind == AlertKind.RED_FLAG)
        .group_by(Alert.severity)
    )
    scope = visible(who, default_team)
    if scope is not None:
        q = q.where(scope)
    return {sev: int(n) for sev, n in session.execute(q)}
