"""Composition root for the running service: one place builds everything from Settings.

``build_services(settings)`` is called once per process (worker, web, CLI, demo); tests call it
with a ManualClock and in-memory channels. Nothing reads the environment or builds a client at
import time.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from checkin.channels import Channel
from checkin.clock import Clock, SystemClock
from checkin.config import Settings
from checkin.content.render import Renderer
from checkin.core.schedule import Schedule


@dataclass
class Services:
    settings: Settings
    engine: Engine
    sessions: sessionmaker[Session]
    clock: Clock
    sms: Channel
    email: Channel
    renderer: Renderer
    schedules: dict[str, Schedule]
    notes: list[str] = field(default_factory=list)  # what was chosen, announced at start-up

    def channel(self, name: str) -> Channel:
        if name == "sms":
            return self.sms
        if name == "email":
            return self.email
        raise ValueError(f"unknown channel {name!r}")

    @property
    def is_sqlite(self) -> bool:
        return self.engine.dialect.name == "sqlite"


def sms_channel(settings: Settings) -> tuple[Channel, str]:
    """The SMS channel the settings ask for, and a line saying which one it is."""
    if settings.twilio is None:
        from checkin.channels.console import ConsoleChannel

        return ConsoleChannel(sys.stdout), "SMS: console (TWILIO_ACCOUNT_SID not set); nothing is texted"
    from checkin.channels.sms import TwilioConfig, TwilioSmsChannel

    t = settings.twilio
    config = TwilioConfig(
        account_sid=t.account_sid,
        auth_token=t.auth_token,
        from_number=None if t.messaging_service_sid else t.from_number,
        messaging_service_sid=t.messaging_service_sid,
        status_callback_base=settings.public_url,
        api_base_url=t.api_url,
        timeout=t.timeout,
    )
    where = f" via {t.api_url}" if t.api_url else ""
    return TwilioSmsChannel(config), f"SMS: Twilio account {t.account_sid[:6]}…{where}"


def email_channel(settings: Settings) -> tuple[Channel, str]:
    if settings.smtp is None:
        from checkin.channels.console import ConsoleChannel

        return ConsoleChannel(sys.stdout), "Email: console (CHECKIN_SMTP_HOST not set); nothing is mailed"
    from checkin.channels.email import SmtpConfig, SmtpEmailChannel

    s = settings.smtp
    config = SmtpConfig(
        host=s.host,
        port=s.port,
        sender=s.sender,
        user=s.user,
        password=s.password,
        tls=s.tls,  # type: ignore[arg-type]
    )
    return SmtpEmailChannel(config), f"Email: SMTP {s.host}:{s.port} ({s.tls})"


def build_services(
    settings: Settings,
    *,
    clock: Clock | None = None,
    sms: Channel | None = None,
    email: Channel | None = None,
    engine: Engine | None = None,
    schedules: dict[str, Schedule] | None = None,
    check_migrated: bool = True,
    **engine_kw: Any,
) -> Services:
    """Everything a process needs. Raises DatabaseNotReady, ScheduleErrors or ConfigError early,
    so a misconfigured process stops at start-up rather than on its first message."""
    from checkin.content.catalog import load_schedules, renderer_for
    from checkin.store.db import make_engine, require_migrated, session_factory

    notes = list(settings.warnings)
    if engine is None:
        engine = make_engine(settings.database_url, **engine_kw)
    if check_migrated:
        require_migrated(engine)
    if sms is None:
        sms, note = sms_channel(settings)
        notes.append(note)
    if email is None:
        email, note = email_channel(settings)
        notes.append(note)
    return Services(
        settings=settings,
        engine=engine,
        sessions=session_factory(engine),
        clock=clock or SystemClock(),
        sms=sms,
        email=email,
        renderer=renderer_for(settings),
        schedules=schedules if schedules is not None else load_schedules(settings),
        notes=notes,
    )
