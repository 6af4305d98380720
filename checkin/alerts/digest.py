"""The daily digest: one email per care team each morning with the day's open alerts,
missed check-ins and patients who cannot be reached, and an operations part when messages
expired unsent or a provider was failing for minutes (``checkin.store.status.operations_since``).

``digest_once`` is safe in two workers at once: the day's claim row ``digest:<team>:<date>``
is inserted with ``ON CONFLICT DO NOTHING``, and only the transaction that inserted it composes
the emails.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import and_, exists, or_, select
from sqlalchemy.orm import Session

from checkin.alerts import lifecycle as alerts
from checkin.alerts import notify
from checkin.core.care_teams import CareTeam, CareTeams
from checkin.deps import Services
from checkin.states import AlertKind, ChannelName, EnrollmentStatus, OutboxStatus
from checkin.store import audit, outbox
from checkin.store.models import (
    Alert,
    Enrollment,
    InboundMessage,
    OutboxMessage,
    Patient,
)
from checkin.store.status import LONG_OUTAGE, Operations, operations_since

log = logging.getLogger(__name__)
ops = logging.getLogger("checkin.ops")

DIGEST_HOUR = 7  # local time (CHECKIN_DEFAULT_TIMEZONE) at or after which the day's digest goes
DIGEST_WINDOW = timedelta(days=1)


@dataclass
class Digest:
    """One team's day: what the digest templates receive (plus counts and the date)."""

    open_alerts: list[dict[str, Any]] = field(default_factory=list)
    missed: list[dict[str, Any]] = field(default_factory=list)
    contact_problems: list[dict[str, Any]] = field(default_factory=list)
    watch_replies: list[dict[str, Any]] = field(default_factory=list)
    opted_out: list[dict[str, Any]] = field(default_factory=list)
    operations: Operations = field(default_factory=Operations)

    def empty(self) -> bool:
        return self.operations.quiet() and not (
            self.open_alerts or self.missed or self.contact_problems or self.watch_replies or self.opted_out
        )


def digest_once(services: Services, now: datetime, *, hour: int = DIGEST_HOUR) -> int:
    """Once per local day (CHECKIN_DEFAULT_TIMEZONE), at the first run at or after ``hour``,
    compose each team's digest: unresolved alerts (oldest first), and from the last 24 hours
    missed check-ins, contact problems, watch-level replies and opt-outs, with counts, and
    messages expired unsent or a provider failing for minutes (for every team); one
    email per nurse of the team. Decided once per team and day by inserting the claim row
    ``digest:<team>:<date>`` (status ``skipped``, never sent): a day with nothing to report
    sends nothing and is not reconsidered later that day; a day the worker was down entirely
    is skipped, not caught up. Returns emails queued."""
    tz = ZoneInfo(services.settings.default_timezone)
    local = now.astimezone(tz)
    if local.hour < hour:
        return 0
    teams = services.care_teams.current()
    queued = 0
    for team in teams.teams.values():
        with services.sessions() as session, session.begin():
            queued += _digest_for(session, services, teams, team, local.date(), now)
    return queued


def _digest_for(
    session: Session, services: Services, teams: CareTeams, team: CareTeam, day: date, now: datetime
) -> int:
    key = f"digest:{team.id}:{day.isoformat()}"
    # Every tick after the digest hour lands here; once today's claim row exists the day is
    # decided, so skip composing a digest only to have the claim refuse it (the insert below
    # still settles a race between workers).
    if session.scalar(select(OutboxMessage.id).where(OutboxMessage.key == key)) is not None:
        return 0
    digest = collect_digest(session, services, teams, team, now)
    recipients = list(team.emails)
    reason = "nothing to report" if digest.empty() else f"digest for {len(recipients)} recipient(s)"
    if not recipients and not digest.empty():
        reason = "no team email to send the digest to"
        ops.error(
            "team has no email for its daily digest", extra={"event": "digest.no_recipient", "team": team.id}
        )
    claimed = outbox.enqueue(
        session,
        _staff_row(
            key,
            team,
            day,
            now,
            channel=ChannelName.EMAIL,
            recipient=None,
            body="",
            subject=None,
            html=None,
            status=OutboxStatus.SKIPPED,
            status_reason=reason,
        ),
    )
    if not claimed or digest.empty():
        return 0
    ctx = digest_context(services, team, day, digest)
    subject, text, html = compose_digest(services, ctx)
    queued = 0
    for email in recipients:
        queued += outbox.enqueue(
            session,
            _staff_row(
                f"{key}:{email}"[:200],
                team,
                day,
                now,
                channel=ChannelName.EMAIL,
                recipient=email,
                body=text,
                subject=subject,
                html=html,
                status=OutboxStatus.PENDING,
                status_reason=None,
            ),
        )
    audit.record(
        session,
        at=now,
        actor="system",
        action="digest.queued",
        subject=key,
        team=team.id,
        recipients=len(recipients),
        **ctx["counts"],
    )
    return queued


def _staff_row(key: str, team: CareTeam, day: date, now: datetime, **values: Any) -> dict[str, Any]:
    return {
        "key": key,
        "enrollment_id": None,
        "patient_id": None,
        "step_id": "digest",
        "occurrence": day.toordinal(),
        "message": "staff_digest",
        "ask": None,
        "urgent": False,
        "due_at": now,
        "expires_at": now + timedelta(hours=12),
        "attempts": 0,
        "created_at": now,
        "updated_at": now,
        **values,
    }


def _local(when: datetime | None, tz: ZoneInfo) -> str:
    """How the digest shows a time: the clinic's local day and minute."""
    return when.astimezone(tz).strftime("%a %b %d %H:%M") if when else ""


def _team_of(teams: CareTeams, care_team: str | None) -> str:
    return teams.for_name(care_team).id


def collect_digest(
    session: Session, services: Services, teams: CareTeams, team: CareTeam, now: datetime
) -> Digest:
    """What ``team`` should read this morning. Patients belong to the team of their latest
    active enrollment (the default team when it names none or an unknown one)."""
    tz = ZoneInfo(services.settings.default_timezone)
    since = now - DIGEST_WINDOW
    team_name = (
        select(Enrollment.care_team)
        .where(Enrollment.patient_id == Patient.id)
        .order_by((Enrollment.status == EnrollmentStatus.ACTIVE).desc(), Enrollment.created_at.desc())
        .limit(1)
        .scalar_subquery()
    )
    d = Digest()

    def at(when: datetime | None) -> str:
        return _local(when, tz)

    def mine(rows: Iterable[Any]) -> list[Any]:
        return [r for r in rows if _team_of(teams, r.team) == team.id]

    alerts_q = select(Alert, Patient.reference, team_name.label("team")).join(
        Patient, Patient.id == Alert.patient_id
    )
    for r in mine(
        session.execute(
            alerts_q.where(Alert.status.in_(alerts.UNRESOLVED)).order_by(Alert.opened_at, Alert.id)
        )
    ):
        a = r.Alert
        d.open_alerts.append(
            {
                "reference": r.reference,
                "severity": a.severity,
                "kind": a.kind,
                "kind_label": notify.KIND_LABELS.get(a.kind, a.kind),
                "status": a.status,
                "opened_at": at(a.opened_at),
                "flags": [notify.FLAG_LABELS.get(f, f) for f in a.flags or []],
                "acknowledged_by": a.acknowledged_by or "",
            }
        )
    for r in mine(
        session.execute(
            select(
                OutboxMessage.sent_at,
                OutboxMessage.ask,
                OutboxMessage.missed_at,
                Patient.reference,
                team_name.label("team"),
            )
            .join(Patient, Patient.id == OutboxMessage.patient_id)
            .where(OutboxMessage.missed_at >= since)
            .order_by(OutboxMessage.missed_at)
        )
    ):
        d.missed.append({"reference": r.reference, "question": r.ask or "", "sent_at": at(r.sent_at)})
    for r in mine(
        session.execute(
            alerts_q.where(
                Alert.kind == AlertKind.CONTACT_PROBLEM,
                or_(Alert.opened_at >= since, Alert.updated_at >= since),
            ).order_by(Alert.opened_at)
        )
    ):
        d.contact_problems.append(
            {
                "reference": r.reference,
                "reasons": list(r.Alert.flags or []),
                "opened_at": at(r.Alert.opened_at),
                "status": r.Alert.status,
            }
        )
    for r in mine(
        session.execute(
            select(
                InboundMessage.received_at,
                InboundMessage.body,
                InboundMessage.assessment,
                Patient.reference,
                team_name.label("team"),
            )
            .join(Patient, Patient.id == InboundMessage.patient_id)
            .where(InboundMessage.received_at >= since, InboundMessage.severity == "watch")
            .order_by(InboundMessage.received_at)
        )
    ):
        watch = (r.assessment or {}).get("watch") or []
        d.watch_replies.append(
            {
                "reference": r.reference,
                "at": at(r.received_at),
                "topics": list(watch),
                "text": (r.body or "")[:300],
            }
        )
    for r in mine(
        session.execute(
            select(Patient.reference, Patient.sms_opted_out_at, team_name.label("team"))
            .where(
                Patient.sms_opted_out.is_(True),
                Patient.sms_opted_out_at >= since,
                exists().where(
                    and_(Enrollment.patient_id == Patient.id, Enrollment.status == EnrollmentStatus.ACTIVE)
                ),
            )
            .order_by(Patient.sms_opted_out_at)
        )
    ):
        d.opted_out.append({"reference": r.reference, "at": at(r.sms_opted_out_at)})
    d.operations = operations_since(session, since)
    return d


def digest_context(services: Services, team: CareTeam, day: date, d: Digest) -> dict[str, Any]:
    ops_ = d.operations
    counts = {
        "open_alerts": len(d.open_alerts),
        "missed": len(d.missed),
        "contact_problems": len(d.contact_problems),
        "watch_replies": len(d.watch_replies),
        "opted_out": len(d.opted_out),
        "expired_unsent": sum(ops_.expired.values()),
        "long_outages": len(ops_.outages),
    }
    tz = ZoneInfo(services.settings.default_timezone)
    operations = {
        "expired": counts["expired_unsent"],
        "expired_by_channel": ", ".join(f"{c} {n}" for c, n in ops_.expired.items()),
        "outages": [{"channel": o.channel, "since": _local(o.since, tz)} for o in ops_.outages],
        "outage_minutes": round(LONG_OUTAGE.total_seconds() / 60),
    }
    return {
        "team_name": team.name,
        "team_id": team.id,
        "date": day.isoformat(),
        "open_alerts": d.open_alerts,
        "missed": d.missed,
        "contact_problems": d.contact_problems,
        "watch_replies": d.watch_replies,
        "opted_out": d.opted_out,
        "operations": operations,
        "counts": counts,
        "clinic_name": services.settings.clinic_name,
        "public_url": (services.settings.public_url or "").rstrip("/"),
    }


def compose_digest(services: Services, ctx: dict[str, Any]) -> tuple[str, str, str | None]:
    """``staff/digest.{subject,txt,html}.j2``, or a built-in plain text when one fails."""
    env = services.renderer.env
    try:
        subject = " ".join(env.get_template("staff/digest.subject.j2").render(dict(ctx)).split())
        text = env.get_template("staff/digest.txt.j2").render(dict(ctx)).strip() + "\n"
        html = env.get_template("staff/digest.html.j2").render(dict(ctx)).strip() + "\n"
        if not subject:
            raise ValueError("empty subject")
        return subject[:300], text, html
    except Exception as exc:  # noqa: BLE001 - admin-written templates: any failure falls back
        ops.error(
            "digest template failed; sent the built-in text",
            extra={"event": "digest.template_fallback", "team": ctx["team_id"], "error": str(exc)},
        )
        c = ctx["counts"]
        lines = [
            f"Daily digest {ctx['date']} - {ctx['team_name']}",
            (
                f"Open alerts: {c['open_alerts']}; missed check-ins: {c['missed']}; contact problems: "
                f"{c['contact_problems']}; watch replies: {c['watch_replies']}; opted out: {c['opted_out']}"
            ),
            "",
        ]
        lines += [
            f"- {a['severity'].upper()} {a['reference']} {a['kind_label']} since {a['opened_at']} ({a['status']})"
            for a in ctx["open_alerts"]
        ]
        lines += operations_lines(ctx["operations"])
        return f"Daily digest {ctx['date']}: {c['open_alerts']} open alert(s)", "\n".join(lines) + "\n", None


def operations_lines(o: dict[str, Any]) -> list[str]:
    """The operations part of the built-in text (the templates word their own)."""
    lines = []
    if o["expired"]:
        lines.append(
            f"Operations: {o['expired']} message(s) expired unsent and were skipped "
            f"({o['expired_by_channel']}) in the last 24 h"
        )
    lines += [
        f"Operations: {x['channel']} provider failing; sending held more than "
        f"{o['outage_minutes']} minutes from {x['since']}"
        for x in o["outages"]
    ]
    return lines


__all__ = ["DIGEST_HOUR", "Digest", "collect_digest", "compose_digest", "digest_context", "digest_once"]
