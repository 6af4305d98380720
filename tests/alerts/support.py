"""Builders for the alert tests: services with a care-team file of our own (two nurses, an
on-call phone), patients, inbound replies through the real inbound path and real triage."""

from __future__ import annotations

import itertools
from datetime import date, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select

from checkin.deps import Services
from checkin.inbound.process import InboundSms, handle_sms
from checkin.store.db import make_engine
from checkin.store.models import Alert, AuditEvent, Enrollment, OutboxMessage, Patient
from tests.support import CLINIC_NAME, CLINIC_PHONE, NOW, PUBLIC_URL, SECRET, make_settings, memory_services

NURSES = ("dana@example.org", "lee@example.org")
ON_CALL_PHONE = "+15555550199"
ON_CALL_EMAIL = "oncall@example.org"

CARE_TEAMS = f"""\
default_team: spine
teams:
  - id: spine
    name: Spine nurses
    nurses:
      - {{name: Dana, email: {NURSES[0]}}}
      - {{name: Lee, email: {NURSES[1]}}}
    on_call: {{name: On call, email: {ON_CALL_EMAIL}, phone: "{ON_CALL_PHONE}"}}
    escalation:
      emergency:
        - {{after: 0m, notify: [team_email, on_call_sms]}}
        - {{after: 10m, notify: [on_call_sms]}}
      urgent:
        - {{after: 0m, notify: [team_email]}}
        - {{after: 15m, notify: [team_email]}}
        - {{after: 30m, notify: [on_call_sms]}}
      watch:
        - {{after: 0m, notify: [team_email]}}
  - id: neuro
    name: Neuro nurses
    nurses:
      - {{name: Neo, email: neo@example.org}}
    on_call: {{name: Neuro on call, phone: "+15555550177"}}
"""

_n = itertools.count(1)


def make_services(
    db_url: str,
    tmp: Path,
    *,
    now: datetime = NOW,
    templates: Path | None = None,
    care_teams: str | None = CARE_TEAMS,
    sms: Any = None,
    email: Any = None,
    **env: str,
) -> Services:
    sched = tmp / f"schedules-{next(_n)}"
    sched.mkdir()
    if care_teams is not None:
        (sched / "care-teams.yaml").write_text(care_teams, encoding="utf-8")
    base = {
        "CHECKIN_DATABASE_URL": db_url,
        "CHECKIN_SCHEDULES_DIR": str(sched),
        "CHECKIN_PUBLIC_URL": PUBLIC_URL,
        "CHECKIN_SECRET_KEY": SECRET,
        "CHECKIN_CLINIC_NAME": CLINIC_NAME,
        "CHECKIN_CLINIC_PHONE": CLINIC_PHONE,
    }
    if templates:
        base["CHECKIN_TEMPLATES_DIR"] = str(templates)
    settings = make_settings(**{**base, **env})
    return memory_services(settings, now=now, sms=sms, email=email, engine=make_engine(db_url), schedules={})


def add_patient(
    services: Services,
    *,
    phone: str | None = None,
    first_name: str = "Ana",
    care_team: str | None = None,
    now: datetime = NOW,
) -> tuple[int, str, str]:
    """An enrolled patient; returns (id, reference, phone)."""
    n = next(_n) + 5000
    phone = phone or f"+1617555{n:04d}"
    with services.sessions.begin() as s:
        p = Patient(
            reference=f"P-A{n:06d}",
            mrn=f"MRN-A{n}",
            first_name=first_name,
            phone=phone,
            language="en",
            timezone="America/New_York",
            sms_opted_out=False,
            phone_status="ok",
            email=None,
            email_consent=False,
            created_at=now,
        )
        s.add(p)
        s.flush()
        s.add(
            Enrollment(
                patient_id=p.id,
                procedure="lumbar-fusion",
                schedule_version="1",
                surgery_date=date(2026, 3, 1),
                attributes=[],
                channel="sms",
                status="active",
                care_team=care_team,
                created_at=now,
            )
        )
        return p.id, p.reference, phone


def reply(services: Services, phone: str, body: str, at: datetime = NOW) -> Any:
    """A patient's SMS through the real inbound path and the real triage, then what the
    worker's next dispatch tick does first: compose the messages of alerts due now."""
    from checkin.alerts.sweeps import escalate_once

    result = handle_sms(
        services, InboundSms(message_sid=f"SM{next(_n):032x}", from_phone=phone, body=body), at
    )
    escalate_once(services, at)
    return result


def staff_rows(services: Services) -> list[OutboxMessage]:
    with services.sessions() as s:
        return list(
            s.scalars(
                select(OutboxMessage).where(OutboxMessage.key.like("alert:%")).order_by(OutboxMessage.id)
            )
        )


def alerts(services: Services) -> list[Alert]:
    with services.sessions() as s:
        return list(s.scalars(select(Alert).order_by(Alert.id)))


def audit(services: Services, prefix: str = "alert.") -> list[AuditEvent]:
    with services.sessions() as s:
        return list(
            s.scalars(select(AuditEvent).where(AuditEvent.action.like(prefix + "%")).order_by(AuditEvent.id))
        )
