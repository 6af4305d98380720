"""The composition root: the one place that builds everything from Settings.

``build_services(settings)`` is called once per process (worker, web, ``checkin serve``, demo);
the CLI's lighter commands build only what they use through ``build_engine``,
``build_schedules`` and ``build_sessions``; tests call ``build_services`` with a ManualClock and
in-memory channels. Nothing reads the environment or builds a client at import time, and
nothing below ``checkin.app`` imports this module: application code receives the result, typed
as ``checkin.deps.Services``.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from checkin.app import safety
from checkin.channels import Channel
from checkin.clock import Clock, SystemClock
from checkin.config import Settings
from checkin.content.care_teams import CareTeamsFile
from checkin.content.render import Renderer
from checkin.core.care_teams import FILE_NAME
from checkin.core.schedule import Schedule
from checkin.deps import Services
from checkin.errors import ConfigError

if TYPE_CHECKING:
    from checkin.integrations.hl7.feed import Feed

__all__ = ["Services", "build_engine", "build_schedules", "build_services", "build_sessions"]


def build_engine(settings: Settings, **engine_kw: Any) -> Engine:
    """The process's one engine (and connection pool) for CHECKIN_DATABASE_URL, opening at most
    CHECKIN_DB_MAX_CONNECTIONS on PostgreSQL (``engine_kw``'s ``pool_size``/``max_overflow`` win)."""
    from checkin.store.db import make_engine

    return make_engine(settings.database_url, max_connections=settings.db_max_connections, **engine_kw)


def build_sessions(engine: Engine, *, check_migrated: bool = True) -> sessionmaker[Session]:
    """Sessions on ``engine``; raises DatabaseNotReady first unless the schema is current."""
    from checkin.store.db import require_migrated, session_factory

    if check_migrated:
        require_migrated(engine)
    return session_factory(engine)


def build_renderer(settings: Settings) -> Renderer:
    return Renderer(settings.templates_dir)


def build_schedules(settings: Settings, renderer: Renderer | None = None) -> dict[str, Schedule]:
    """Every schedule in CHECKIN_SCHEDULES_DIR; raises ConfigError or ScheduleErrors."""
    from checkin.content.catalog import load_schedules

    return load_schedules(settings.schedules_dir, renderer or build_renderer(settings))


def build_hl7_feed(
    settings: Settings, sessions: sessionmaker[Session], schedules: dict[str, Schedule], clock: Clock
) -> Feed:
    """The HL7 v2 feed (``checkin.integrations.hl7.feed.Feed``) over CHECKIN_SCHEDULES_DIR/hl7.yaml."""
    from checkin.content.hl7_mapping import load_hl7_mapping
    from checkin.integrations.hl7.apply import Site
    from checkin.integrations.hl7.feed import Feed

    site = Site(
        settings.default_region, settings.emergency_number, settings.crisis_line, settings.emergency_regions
    )
    mapping = load_hl7_mapping(settings.schedules_dir, schedules.values())
    sqlite = sessions.kw["bind"].dialect.name == "sqlite"
    return Feed(sessions, mapping=mapping, schedules=schedules, site=site, clock=clock, one_at_a_time=sqlite)


def _no_console_in_production(settings: Settings, variable: str) -> None:
    # Console channels print recipients and full texts: never where output lands in a journal.
    if settings.env == "production":
        raise ConfigError(variable, "is required when CHECKIN_ENV=production (no console channels)")


def sms_channel(settings: Settings) -> tuple[Channel, str]:
    """The SMS channel the settings ask for, and a line saying which one it is."""
    if settings.twilio is None:
        _no_console_in_production(settings, "TWILIO_ACCOUNT_SID")
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
        _no_console_in_production(settings, "CHECKIN_SMTP_HOST")
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


def check_deployment(
    settings: Settings, care_teams: CareTeamsFile, schedules: dict[str, Schedule]
) -> list[safety.Verdict]:
    """Every safety verdict on this deployment (``checkin check`` prints the same list)."""
    where = care_teams.directory / FILE_NAME
    return safety.verdicts(
        settings,
        care_teams.current(),
        schedules,
        care_teams_file=str(where) if where.is_file() else "CHECKIN_ALERT_EMAILS",
    )


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
    so a misconfigured process stops at start-up rather than on its first message; in
    production, ``UnsafeSettings`` naming every unsafe setting (``checkin.app.safety``), before
    anything is opened. In development those are logged at WARNING instead."""
    notes = list(settings.warnings)
    renderer = build_renderer(settings)
    if schedules is None:
        schedules = build_schedules(settings, renderer)
    care_teams = CareTeamsFile(settings.schedules_dir, settings.alert_emails)
    unsafe = safety.enforce(settings, check_deployment(settings, care_teams, schedules))
    notes.append(safety.routing_line(care_teams.current()))
    if engine is None:
        engine = build_engine(settings, **engine_kw)
    sessions = build_sessions(engine, check_migrated=check_migrated)
    safety.warn(unsafe)  # development: once the database answers, so its error reads alone
    if sms is None:
        sms, note = sms_channel(settings)
        notes.append(note)
    if email is None:
        email, note = email_channel(settings)
        notes.append(note)
    return Services(
        settings=settings,
        engine=engine,
        sessions=sessions,
        clock=clock or SystemClock(),
        sms=sms,
        email=email,
        renderer=renderer,
        schedules=schedules,
        care_teams=care_teams,
        notes=notes,
    )
