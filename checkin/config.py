"""Settings: one typed, frozen object built from a mapping (the environment plus ``.env``).

``Settings.from_env(environ)`` is a pure function of its argument; ``load_settings()`` is the
only place that reads ``os.environ`` and the ``.env`` file. A bad value raises ``ConfigError``
naming the variable, so a typo stops start-up instead of surfacing at 3 a.m.
Secrets may be given as ``NAME_FILE`` (a path, e.g. a Docker secret) instead of ``NAME``.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

import phonenumbers
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from checkin.core.zones import zone_problem
from checkin.errors import ConfigError
from checkin.fhir_settings import FhirSettings, fhir_settings, read_token
from checkin.oidc_settings import OidcSettings, oidc_settings

# A well-known development key: fine on a laptop, refused when CHECKIN_ENV=production.
DEV_SECRET_KEY = "checkin-development-key-not-for-production"  # noqa: S105 - public by design
# The demo's key is in the source too; production refuses it like the development key.
DEMO_SECRET_KEY = "demo-secret-key-0123456789abcdef"  # noqa: S105 - public by design


@dataclass(frozen=True)
class Setting:
    name: str
    default: str | None
    help: str
    secret: bool = False


# The table the README documents; kept here so the two cannot drift (tests compare them).
SETTINGS: tuple[Setting, ...] = (
    Setting(
        "CHECKIN_ENV", "development", "`development` or `production`; production refuses insecure defaults"
    ),
    Setting(
        "CHECKIN_DATABASE_URL",
        "sqlite:///checkin.store.db",
        "SQLAlchemy URL; SQLite file for one box, `postgresql+psycopg://…` for several workers",
    ),
    Setting(
        "CHECKIN_DB_MAX_CONNECTIONS",
        "40",
        "most connections one process opens to PostgreSQL (4 to 500; unused with SQLite); all "
        "processes together must fit PostgreSQL's `max_connections`",
    ),
    Setting("CHECKIN_SCHEDULES_DIR", "schedules", "folder of `*.yaml` schedule files"),
    Setting("CHECKIN_TEMPLATES_DIR", "templates", "folder of message templates"),
    Setting("CHECKIN_DEFAULT_TIMEZONE", "America/New_York", "IANA zone used when an enrollment names none"),
    Setting("CHECKIN_DEFAULT_REGION", "US", "region for phone numbers written without a country code"),
    Setting(
        "CHECKIN_SECRET_KEY",
        None,
        "signs nurse links and email check-in tokens; required in production",
        secret=True,
    ),
    Setting(
        "CHECKIN_PUBLIC_URL",
        None,
        "the https URL Twilio and nurses reach, e.g. `https://checkin.example.org`",
    ),
    Setting("CHECKIN_CLINIC_NAME", "Spine Center", "signs patient messages"),
    Setting("CHECKIN_CLINIC_PHONE", "+1 555 010 0100", "the number HELP replies and messages give"),
    # -- emergency numbers (one block: what patients are told to call) --
    Setting(
        "CHECKIN_EMERGENCY_NUMBER",
        "911",
        "the emergency number messages give; until both it and the crisis line are set, only "
        "US and Canadian phones can be enrolled",
    ),
    Setting("CHECKIN_CRISIS_LINE", "988", "the suicide and crisis line messages give (call or text)"),
    Setting("CHECKIN_LOG_LEVEL", "INFO", "`DEBUG`, `INFO`, `WARNING` or `ERROR`"),
    Setting("TWILIO_ACCOUNT_SID", None, "Twilio account; without it SMS go to the console"),
    Setting("TWILIO_AUTH_TOKEN", None, "Twilio auth token (also verifies webhook signatures)", secret=True),
    Setting("TWILIO_FROM_NUMBER", None, "sending number in E.164, or use a messaging service"),
    Setting("TWILIO_MESSAGING_SERVICE_SID", None, "Twilio messaging service (instead of a from number)"),
    Setting(
        "CHECKIN_TWILIO_API_URL", None, "replaces `https://api.twilio.com` (a local Twilio mock in tests)"
    ),
    Setting("CHECKIN_TWILIO_TIMEOUT", "10", "seconds to wait for Twilio's API"),
    Setting("CHECKIN_SMS_RATE", "1", "SMS per second per sender (a long code allows 1)"),
    Setting("CHECKIN_SMTP_HOST", None, "SMTP relay; without it email goes to the console"),
    Setting("CHECKIN_SMTP_PORT", "587", "SMTP port"),
    Setting("CHECKIN_SMTP_USER", None, "SMTP login"),
    Setting("CHECKIN_SMTP_PASSWORD", None, "SMTP password", secret=True),
    Setting("CHECKIN_SMTP_TLS", "starttls", "`starttls`, `ssl` or `none`"),
    Setting("CHECKIN_EMAIL_FROM", "checkin@localhost", "From address of every email"),
    Setting(
        "CHECKIN_EMAIL_REPLY_TO",
        None,
        "address whose plus-addresses `checkin mail receive` is relayed; unset: emails say replies are not read",
    ),
    Setting("CHECKIN_MAIL_LISTEN", "127.0.0.1:2525", "host:port `checkin mail receive` listens on (SMTP)"),
    Setting("CHECKIN_ALERT_EMAILS", "", "comma-separated nurse addresses for the default care team"),
    Setting(
        "CHECKIN_METRICS_TOKEN",
        None,
        "bearer token `/metrics` requires; unset: open in development, closed (401) in production",
        secret=True,
    ),
    Setting("CHECKIN_SESSION_IDLE_MINUTES", "15", "console sessions end after this long without activity"),
    Setting("CHECKIN_NURSE_TOTP", "off", "`on` requires a TOTP code from nurses too (always for admins)"),
    # -- FHIR R4 out (checkin.integrations.fhir): off until the base URL is set --
    Setting(
        "CHECKIN_FHIR_BASE_URL", None, "the EHR's FHIR R4 endpoint; set, `checkin fhir export` sends results"
    ),
    Setting("CHECKIN_FHIR_TOKEN_URL", None, "its SMART Backend Services token endpoint"),
    Setting("CHECKIN_FHIR_CLIENT_ID", None, "checkin's client id registered with the EHR"),
    Setting(
        "CHECKIN_FHIR_PRIVATE_KEY", None, "PEM RSA key signing the client assertion (RS384)", secret=True
    ),
    Setting("CHECKIN_FHIR_MRN_SYSTEM", "urn:checkin:mrn", "identifier system of the hospital's MRNs"),
    Setting(
        "CHECKIN_FHIR_READ_TOKEN",
        None,
        "bearer token of the EHR's reads of `/fhir/…`; unset: no read API",
        secret=True,
    ),
    # -- single sign-on (OpenID Connect, checkin.staff.oidc): off until all three are set --
    Setting(
        "CHECKIN_OIDC_ISSUER", None, "the OpenID provider's issuer URL; set, /login offers single sign-on"
    ),
    Setting("CHECKIN_OIDC_CLIENT_ID", None, "checkin's client id registered with the provider"),
    Setting("CHECKIN_OIDC_CLIENT_SECRET", None, "its client secret", secret=True),
    Setting(
        "CHECKIN_INBOX_ESCALATE_MINUTES",
        "240",
        "a reply or watch-level alert nobody handled for this long enters the urgent escalation ladder",
    ),
)
_DEFAULTS = {s.name: s.default for s in SETTINGS}
N = TypeVar("N", int, float)


def _secret(env: Mapping[str, str], name: str) -> str | None:
    path = env.get(f"{name}_FILE")
    if path:
        try:
            return Path(path).read_text(encoding="utf-8").strip()
        except OSError as e:
            raise ConfigError(f"{name}_FILE", f"cannot read {path}: {e.strerror}") from e
    return env.get(name) or None


def _number(env: Mapping[str, str], name: str, kind: type[N], what: str, low: N, high: N) -> N:
    raw = env.get(name) or _DEFAULTS[name] or ""
    try:
        value = kind(raw)
    except ValueError:
        raise ConfigError(name, f"{raw!r} is not {what}") from None
    if not low <= value <= high:
        raise ConfigError(name, f"{value} is outside {low}..{high}")
    return value


def _int(env: Mapping[str, str], name: str, *, low: int, high: int) -> int:
    return _number(env, name, int, "an integer", low, high)


def _float(env: Mapping[str, str], name: str, *, low: float, high: float) -> float:
    return _number(env, name, float, "a number", low, high)


def _choice(env: Mapping[str, str], name: str, choices: tuple[str, ...]) -> str:
    raw = (env.get(name) or _DEFAULTS[name] or "").strip()
    if raw.lower() not in choices:
        raise ConfigError(name, f"{raw!r} is not one of {', '.join(choices)}")
    return raw.lower()


def _http_url(env: Mapping[str, str], name: str) -> str | None:
    raw = (env.get(name) or _DEFAULTS[name] or "").strip()
    if not raw:
        return None
    parts = urlsplit(raw)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(name, f"{raw!r} is not an http(s) URL")
    return raw.rstrip("/")


def _get(env: Mapping[str, str], name: str) -> str:
    return (env.get(name) or _DEFAULTS[name] or "").strip()


@dataclass(frozen=True)
class TwilioSettings:
    account_sid: str
    auth_token: str
    from_number: str | None
    messaging_service_sid: str | None
    api_url: str | None
    timeout: float


@dataclass(frozen=True)
class SmtpSettings:
    host: str
    port: int
    user: str | None
    password: str | None
    tls: str
    sender: str


@dataclass(frozen=True)
class Settings:
    env: str = "development"
    database_url: str = "sqlite:///checkin.store.db"
    db_max_connections: int = 40  # PostgreSQL only: pool_size + max_overflow (store.db.make_engine)
    schedules_dir: Path = Path("schedules")
    templates_dir: Path = Path("templates")
    default_timezone: str = "America/New_York"
    default_region: str = "US"
    secret_key: str = DEV_SECRET_KEY
    public_url: str | None = None
    clinic_name: str = "Spine Center"
    clinic_phone: str = "+1 555 010 0100"
    # -- emergency numbers --
    emergency_number: str = "911"
    crisis_line: str = "988"
    # Phone regions a patient may be enrolled from; None when the numbers were set explicitly
    # (the site vouches for them). The defaults are right only where 911 and 988 both work.
    emergency_regions: frozenset[str] | None = field(default_factory=lambda: DEFAULT_EMERGENCY_REGIONS)
    log_level: str = "INFO"
    twilio: TwilioSettings | None = None
    smtp: SmtpSettings | None = None
    email_from: str = "checkin@localhost"
    sms_rate: float = 1.0
    alert_emails: tuple[str, ...] = ()
    email_reply_to: str | None = None
    mail_listen: tuple[str, int] = ("127.0.0.1", 2525)
    session_idle_minutes: int = 15
    nurse_totp: bool = False
    fhir: FhirSettings | None = None
    fhir_mrn_system: str = "urn:checkin:mrn"
    fhir_read_token: str | None = field(default=None, repr=False)
    inbox_escalate_minutes: int = 240
    oidc: OidcSettings | None = field(default=None, repr=False)
    metrics_token: str | None = field(default=None, repr=False)
    warnings: tuple[str, ...] = field(default=(), compare=False)

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> Settings:
        """Build settings from ``environ``; raises ConfigError naming the first bad variable."""
        env = {k: v for k, v in environ.items() if isinstance(v, str)}
        warnings: list[str] = []
        mode = _choice(env, "CHECKIN_ENV", ("development", "production"))

        db_url = _secret(env, "CHECKIN_DATABASE_URL") or _get(env, "CHECKIN_DATABASE_URL")
        try:
            url = make_url(db_url)
        except ArgumentError:
            raise ConfigError("CHECKIN_DATABASE_URL", f"{db_url!r} is not a database URL") from None
        if url.get_backend_name() not in ("sqlite", "postgresql"):
            raise ConfigError(
                "CHECKIN_DATABASE_URL",
                f"unsupported database {url.get_backend_name()!r}; use sqlite or postgresql",
            )

        tz = _get(env, "CHECKIN_DEFAULT_TIMEZONE")
        zone = zone_problem(tz)
        if zone:
            raise ConfigError("CHECKIN_DEFAULT_TIMEZONE", zone)

        region = _get(env, "CHECKIN_DEFAULT_REGION").upper()
        if region not in phonenumbers.SUPPORTED_REGIONS:
            raise ConfigError("CHECKIN_DEFAULT_REGION", f"{region!r} is not a phone region code")

        secret = _secret(env, "CHECKIN_SECRET_KEY")
        if secret is None:
            # Production refuses it at start-up (checkin.app.safety), with every other verdict.
            secret = DEV_SECRET_KEY
            warnings.append("CHECKIN_SECRET_KEY not set: using the development key")
        elif len(secret) < 16:
            raise ConfigError("CHECKIN_SECRET_KEY", "must be at least 16 characters")

        public_url = _http_url(env, "CHECKIN_PUBLIC_URL")
        log_level = _choice(env, "CHECKIN_LOG_LEVEL", ("debug", "info", "warning", "error")).upper()

        twilio = _twilio(env, warnings)
        smtp = _smtp(env, warnings)
        emails = tuple(e.strip() for e in _get(env, "CHECKIN_ALERT_EMAILS").split(",") if e.strip())
        for e in emails:
            if "@" not in e:
                raise ConfigError("CHECKIN_ALERT_EMAILS", f"{e!r} is not an email address")

        return cls(
            env=mode,
            database_url=db_url,
            db_max_connections=_int(env, "CHECKIN_DB_MAX_CONNECTIONS", low=4, high=500),
            schedules_dir=Path(_get(env, "CHECKIN_SCHEDULES_DIR")),
            templates_dir=Path(_get(env, "CHECKIN_TEMPLATES_DIR")),
            default_timezone=tz,
            default_region=region,
            secret_key=secret,
            public_url=public_url,
            clinic_name=_get(env, "CHECKIN_CLINIC_NAME"),
            clinic_phone=_get(env, "CHECKIN_CLINIC_PHONE"),
            **_emergency_numbers(env),
            log_level=log_level,
            twilio=twilio,
            smtp=smtp,
            email_from=_get(env, "CHECKIN_EMAIL_FROM"),
            sms_rate=_float(env, "CHECKIN_SMS_RATE", low=0.01, high=1000),
            alert_emails=emails,
            email_reply_to=_reply_to(env),
            mail_listen=_listen(env, "CHECKIN_MAIL_LISTEN"),
            session_idle_minutes=_int(env, "CHECKIN_SESSION_IDLE_MINUTES", low=1, high=24 * 60),
            nurse_totp=_choice(env, "CHECKIN_NURSE_TOTP", ("on", "off")) == "on",
            fhir=fhir_settings(env, http_url=_http_url, get=_get),
            fhir_mrn_system=_get(env, "CHECKIN_FHIR_MRN_SYSTEM"),
            fhir_read_token=read_token(_secret(env, "CHECKIN_FHIR_READ_TOKEN")),
            inbox_escalate_minutes=_int(env, "CHECKIN_INBOX_ESCALATE_MINUTES", low=15, high=7 * 24 * 60),
            oidc=oidc_settings(env, http_url=_http_url, get=_get, secret=_secret),
            metrics_token=_metrics_token(env),
            warnings=tuple(warnings),
        )

    def replace(self, **changes: Any) -> Settings:
        from dataclasses import replace

        return replace(self, **changes)


# -- emergency numbers --
# Where 911 and 988 both reach emergency services and a crisis line: the US and its territories
# on the North American plan, and Canada. A patient elsewhere would be told to call a number
# that does not work, so enrollment refuses them until the site sets its own numbers.
DEFAULT_EMERGENCY_REGIONS: frozenset[str] = frozenset({"US", "CA", "PR", "VI", "GU", "AS", "MP"})
_SHORT_NUMBER = re.compile(r"\+?[0-9][0-9 ()-]{1,24}")


def _emergency_numbers(env: Mapping[str, str]) -> dict[str, Any]:
    values = {}
    for name in ("CHECKIN_EMERGENCY_NUMBER", "CHECKIN_CRISIS_LINE"):
        value = _get(env, name).strip()
        if not _SHORT_NUMBER.fullmatch(value):
            raise ConfigError(name, f"{value!r} is not a phone number (digits, spaces, + - ( ))")
        values[name] = value
    # Both, or the default of the other would still be given to patients it does not serve.
    configured = all(env.get(n, "").strip() for n in ("CHECKIN_EMERGENCY_NUMBER", "CHECKIN_CRISIS_LINE"))
    return {
        "emergency_number": values["CHECKIN_EMERGENCY_NUMBER"],
        "crisis_line": values["CHECKIN_CRISIS_LINE"],
        "emergency_regions": None if configured else DEFAULT_EMERGENCY_REGIONS,
    }


def _twilio(env: Mapping[str, str], warnings: list[str]) -> TwilioSettings | None:
    sid = _get(env, "TWILIO_ACCOUNT_SID")
    token = _secret(env, "TWILIO_AUTH_TOKEN")
    if not sid:
        warnings.append("SMS disabled: TWILIO_ACCOUNT_SID not set, SMS go to the console")
        return None
    if not (sid.startswith("AC") and len(sid) == 34):
        raise ConfigError("TWILIO_ACCOUNT_SID", "must be 'AC' followed by 32 hex characters")
    if not token:
        raise ConfigError("TWILIO_AUTH_TOKEN", "is required when TWILIO_ACCOUNT_SID is set")
    sender = _get(env, "TWILIO_FROM_NUMBER") or None
    service = _get(env, "TWILIO_MESSAGING_SERVICE_SID") or None
    if not sender and not service:
        raise ConfigError("TWILIO_FROM_NUMBER", "set it or TWILIO_MESSAGING_SERVICE_SID")
    if sender and not (sender.startswith("+") and sender[1:].isdigit()):
        raise ConfigError("TWILIO_FROM_NUMBER", f"{sender!r} is not an E.164 number like +15551234567")
    return TwilioSettings(
        account_sid=sid,
        auth_token=token,
        from_number=sender,
        messaging_service_sid=service,
        api_url=_http_url(env, "CHECKIN_TWILIO_API_URL"),
        timeout=_float(env, "CHECKIN_TWILIO_TIMEOUT", low=0.1, high=120),
    )


def _smtp(env: Mapping[str, str], warnings: list[str]) -> SmtpSettings | None:
    host = _get(env, "CHECKIN_SMTP_HOST")
    port = _int(env, "CHECKIN_SMTP_PORT", low=1, high=65535)
    tls = _choice(env, "CHECKIN_SMTP_TLS", ("starttls", "ssl", "none"))
    sender = _get(env, "CHECKIN_EMAIL_FROM")
    if "@" not in sender:
        raise ConfigError("CHECKIN_EMAIL_FROM", f"{sender!r} is not an email address")
    if not host:
        warnings.append("Email disabled: CHECKIN_SMTP_HOST not set, email goes to the console")
        return None
    return SmtpSettings(
        host=host,
        port=port,
        user=_get(env, "CHECKIN_SMTP_USER") or None,
        password=_secret(env, "CHECKIN_SMTP_PASSWORD"),
        tls=tls,
        sender=sender,
    )


def _metrics_token(env: Mapping[str, str]) -> str | None:
    token = _secret(env, "CHECKIN_METRICS_TOKEN")
    if token is not None and (len(token) < 24 or any(c.isspace() for c in token)):
        raise ConfigError("CHECKIN_METRICS_TOKEN", "must be at least 24 characters, without spaces")
    return token


def _reply_to(env: Mapping[str, str]) -> str | None:
    raw = _get(env, "CHECKIN_EMAIL_REPLY_TO")
    if not raw:
        return None
    local, at, domain = raw.rpartition("@")
    if not at or not local or "." not in domain or any(c in raw for c in " \r\n<>\"'"):
        raise ConfigError(
            "CHECKIN_EMAIL_REPLY_TO", f"{raw!r} is not a plain address like checkin@example.org"
        )
    if "+" in local:
        raise ConfigError(
            "CHECKIN_EMAIL_REPLY_TO", f"{raw!r} has a '+': give the base address; each email adds +<token>"
        )
    return raw


def _listen(env: Mapping[str, str], name: str) -> tuple[str, int]:
    raw = _get(env, name)
    host, sep, port = raw.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ConfigError(name, f"{raw!r} is not host:port like 127.0.0.1:2525")
    return host.strip("[]"), int(port)


def load_settings(dotenv_path: str | os.PathLike[str] | None = ".env") -> Settings:
    """Read ``.env`` (if present; real environment variables win) and build Settings."""
    from dotenv import dotenv_values

    merged: dict[str, str] = {}
    if dotenv_path is not None and Path(dotenv_path).is_file():
        merged.update({k: v for k, v in dotenv_values(dotenv_path).items() if v is not None})
    merged.update(os.environ)
    return Settings.from_env(merged)
