"""Builders shared by tests/inbound and tests/web: settings with a Twilio account, services on
a migrated database, a small cast of patients, open questions, signed webhook requests, and a
scripted triage for tests about what happens *after* triage."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from twilio.request_validator import RequestValidator

from checkin.channels.memory import MemoryChannel
from checkin.clock import ManualClock
from checkin.core.triage.model import Assessment, Flag, Severity
from checkin.deps import Services
from checkin.store.db import make_engine
from checkin.store.models import Enrollment, OutboxMessage, Patient
from tests.support import (
    ACCOUNT_SID,
    AUTH_TOKEN,
    CLINIC_NAME,
    CLINIC_PHONE,
    NOW,
    PUBLIC_URL,
    SECRET,
    make_settings,
    memory_services,
)

OUR_NUMBER = "+15005550006"
ANA_PHONE = "+16175550123"

_sids = itertools.count(1)
_mrns = itertools.count(1000)


def settings_for(db_url: str, **extra: str) -> Any:
    env = {
        "CHECKIN_DATABASE_URL": db_url,
        "TWILIO_ACCOUNT_SID": ACCOUNT_SID,
        "TWILIO_AUTH_TOKEN": AUTH_TOKEN,
        "TWILIO_FROM_NUMBER": OUR_NUMBER,
        "CHECKIN_PUBLIC_URL": PUBLIC_URL,
        "CHECKIN_SECRET_KEY": SECRET,
        "CHECKIN_CLINIC_NAME": CLINIC_NAME,
        "CHECKIN_CLINIC_PHONE": CLINIC_PHONE,
    }
    env.update(extra)
    return make_settings(**env)


def services_for(db_url: str, *, now: datetime = NOW, twilio: bool = True, **engine_kw: Any) -> Services:
    settings = settings_for(db_url)
    if not twilio:
        settings = settings.replace(twilio=None)
    clock = ManualClock(now)
    return memory_services(
        settings,
        clock=clock,
        sms=MemoryChannel(clock),
        email=MemoryChannel(clock),
        engine=make_engine(db_url, **engine_kw),
        schedules={},
    )


def new_sid() -> str:
    return f"SM{next(_sids):032x}"


def add_patient(
    session: Any,
    *,
    phone: str | None = ANA_PHONE,
    first_name: str = "Ana",
    language: str = "en",
    tz: str = "America/New_York",
    enrolled: bool = True,
    opted_out: bool = False,
    now: datetime = NOW,
) -> Patient:
    n = next(_mrns)
    p = Patient(
        reference=f"P-T{n:06d}",
        mrn=f"MRN{n}",
        first_name=first_name,
        phone=phone,
        language=language,
        timezone=tz,
        sms_opted_out=opted_out,
        phone_status="ok",
        email=f"p{n}@example.org",
        email_consent=True,
        created_at=now,
    )
    session.add(p)
    session.flush()
    if enrolled:
        session.add(
            Enrollment(
                patient_id=p.id,
                procedure="lumbar-fusion",
                schedule_version="1",
                surgery_date=date(2026, 3, 1),
                attributes=[],
                channel="sms",
                status="active",
                created_at=now,
            )
        )
        session.flush()
    return p


def enrollment_of(session: Any, patient: Patient) -> Enrollment | None:
    from sqlalchemy import select

    return session.scalars(select(Enrollment).where(Enrollment.patient_id == patient.id)).first()


def add_outbox(
    session: Any,
    patient: Patient,
    *,
    message: str = "fever_check",
    ask: str | None = "fever_check",
    status: str = "sent",
    sent_at: datetime | None = None,
    due_at: datetime | None = None,
    expires_at: datetime | None = None,
    channel: str = "sms",
    answered_at: datetime | None = None,
    now: datetime = NOW,
) -> OutboxMessage:
    enrollment = enrollment_of(session, patient)
    n = next(_sids)
    due = due_at or sent_at or now
    row = OutboxMessage(
        key=f"t:{n}",
        enrollment_id=enrollment.id if enrollment else None,
        patient_id=patient.id,
        step_id=f"step{n}",
        occurrence=0,
        channel=channel,
        message=message,
        ask=ask,
        urgent=False,
        due_at=due,
        expires_at=expires_at or due + timedelta(hours=8),
        status=status,
        attempts=0,
        sent_at=sent_at if status == "sent" else None,
        answered_at=answered_at,
        created_at=now,
        updated_at=now,
    )
    session.add(row)
    session.flush()
    return row


def sms_params(
    body: str, *, from_phone: str = ANA_PHONE, sid: str | None = None, **extra: str
) -> dict[str, str]:
    params = {
        "MessageSid": sid or new_sid(),
        "SmsSid": "",
        "AccountSid": ACCOUNT_SID,
        "From": from_phone,
        "To": OUR_NUMBER,
        "Body": body,
        "NumMedia": "0",
        "NumSegments": "1",
    }
    params["SmsSid"] = params["MessageSid"]
    params.update(extra)
    return params


def signature(params: Mapping[str, str], *, url: str, token: str = AUTH_TOKEN) -> str:
    return RequestValidator(token).compute_signature(url, dict(params))


def signed_headers(
    path: str, params: Mapping[str, str], *, url: str | None = None, token: str = AUTH_TOKEN
) -> dict[str, str]:
    return {"X-Twilio-Signature": signature(params, url=url or PUBLIC_URL + path, token=token)}


@dataclass
class ScriptedAssess:
    """A triage stand-in: ``table`` maps a text to the assessment to return (default: nothing
    found). ``calls`` records (text, context), so tests can check which context was passed."""

    table: dict[str, Assessment] = field(default_factory=dict)
    calls: list[tuple[str, str | None]] = field(default_factory=list)

    def __call__(self, text: str, context: str | None = None) -> Assessment:
        self.calls.append((text, context))
        return self.table.get(text, Assessment(context=context or "general"))


def assessment(
    *flags: Flag, severity: Severity | None = None, ambiguous: Iterable[str] = (), language: str = "en"
) -> Assessment:
    from checkin.core.triage.model import FLAG_SEVERITY

    sev = severity or max((FLAG_SEVERITY[f] for f in flags), default=Severity.NONE, key=lambda s: s.rank)
    if severity is None and ambiguous and sev < Severity.WATCH:
        sev = Severity.WATCH
    return Assessment(flags=frozenset(flags), severity=sev, ambiguous=frozenset(ambiguous), language=language)  # type: ignore[arg-type]


def audit_details(session: Any) -> list[dict[str, Any]]:
    from sqlalchemy import select

    from checkin.store.models import AuditEvent

    return [
        {"action": e.action, "patient_ref": e.patient_ref, "subject": e.subject, **e.detail}
        for e in session.scalars(select(AuditEvent).order_by(AuditEvent.id))
    ]


Factory = Callable[..., Any]
