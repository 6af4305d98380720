"""Builders for console tests: staff accounts, signing in through the real form, forms' CSRF."""

from __future__ import annotations

import re
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import select

from checkin.app.bootstrap import Services
from checkin.staff import accounts
from checkin.store.models import AuditEvent, Staff
from tests.alerts.support import NOW

PASSWORD = "correct horse battery staple"
BASE = "https://checkin.example.org"


def add_staff(
    services: Services,
    email: str,
    *,
    role: str = "nurse",
    team: str = "spine",
    password: str | None = PASSWORD,
) -> Staff:
    with services.sessions.begin() as s:
        accounts.add(
            s,
            email=email,
            name=email.split("@")[0].title(),
            role=role,
            team=team,
            now=services.clock.now(),
            secret_key=services.settings.secret_key,
            actor="test",
            password=password,
            nurses_need_totp=services.settings.nurse_totp,
        )
    with services.sessions() as s:
        staff = s.scalars(select(Staff).where(Staff.email == email)).one()
        s.expunge(staff)
        return staff


def hidden(html: str, name: str = "csrf") -> str:
    m = re.search(rf'name="{name}" value="([^"]*)"', html)
    assert m, f"no hidden {name} field"
    return m.group(1)


def sign_in(
    client: TestClient, email: str, password: str = PASSWORD, code: str = "", next: str = "/console"
) -> Any:
    page = client.get(f"/login?next={next}")
    assert page.status_code == 200
    return client.post(
        "/login",
        data={"csrf": hidden(page.text), "email": email, "password": password, "code": code, "next": next},
        follow_redirects=False,
    )


def audit_rows(services: Services, action: str) -> list[AuditEvent]:
    with services.sessions() as s:
        return list(s.scalars(select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.id)))


__all__ = ["BASE", "NOW", "PASSWORD", "add_staff", "audit_rows", "hidden", "sign_in"]


def ask(services: Services, patient_id: int, ask: str = "pain_scale", at: Any = NOW) -> int:
    """A check-in question sent to the patient at ``at`` (their next reply answers it)."""
    from datetime import timedelta

    from checkin.store.models import Enrollment, OutboxMessage

    with services.sessions.begin() as s:
        enrollment_id = s.scalars(select(Enrollment.id).where(Enrollment.patient_id == patient_id)).first()
        row = OutboxMessage(
            key=f"test-ask:{patient_id}:{ask}:{at.isoformat()}",
            enrollment_id=enrollment_id,
            patient_id=patient_id,
            step_id="pain_check",
            occurrence=1,
            channel="sms",
            message="pain_check",
            ask=ask,
            due_at=at,
            expires_at=at + timedelta(hours=12),
            status="sent",
            sent_at=at,
            attempts=1,
            created_at=at,
            updated_at=at,
        )
        s.add(row)
        s.flush()
        return row.id
