"""Is this deployment safe to run? Verdicts on the settings and the content they point at.

One pure function, ``verdicts(settings, care_teams, schedules)``, used by start-up (every
process goes through ``checkin.app.bootstrap.build_services``) and by ``checkin check``, so
the operator's pre-flight and the refusal can never disagree. Each ``Verdict`` names the setting
or file at fault and says what is wrong in one line.

Production fails closed: any verdict stops start-up (``enforce`` raises ``UnsafeSettings``).
Development runs, and each verdict is logged once, at WARNING, by every process (web included).

What is refused, and why (docs/adr, "safe by default"):

- a secret key that is published (the development and demo keys are in the source) or that is
  shorter than 32 random bytes by a conservative estimate: it signs nurse links and email
  check-in links, so a guessable key lets anyone read and acknowledge alerts;
- no SMTP relay (email would be printed, with patient words, into the journal), or SMTP without
  TLS to a relay that is not on this host;
- no public URL, or an ``http://`` one (nurse links to localhost, webhooks answering 503, the
  CSRF cookie without ``Secure``);
- Twilio credentials missing or of the wrong shape (SMS would be printed to the console);
- no reachable alert contact, or a placeholder one (example.org/.com/.net, 555-01xx numbers):
  an emergency alert would go to nobody;
- a schedule without clinical sign-off, and the clinic name and phone left at their defaults.
"""

from __future__ import annotations

import ipaddress
import logging
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

from checkin.config import DEMO_SECRET_KEY, DEV_SECRET_KEY, Settings
from checkin.core.care_teams import CareTeams
from checkin.core.placeholders import placeholder_email, placeholder_phone
from checkin.core.schedule import Schedule
from checkin.errors import ConfigError

ops = logging.getLogger("checkin.ops")

PUBLISHED_KEYS = frozenset({DEV_SECRET_KEY, DEMO_SECRET_KEY})
MIN_KEY_BITS = 256  # 32 random bytes
KEY_HINT = 'generate one: python3 -c "import secrets; print(secrets.token_urlsafe(48))"'
_HEX = re.compile(r"[0-9a-fA-F]+")
_TWILIO_SID = {
    "TWILIO_ACCOUNT_SID": re.compile(r"AC[0-9a-f]{32}"),
    "TWILIO_AUTH_TOKEN": re.compile(r"[0-9a-f]{32}"),
    "TWILIO_MESSAGING_SERVICE_SID": re.compile(r"MG[0-9a-f]{32}"),
}
DEFAULT_CLINIC_NAME = "Spine Center"


# Every setting or file a verdict can name: README's "Going live" checklist lists each one
# (tests/safety/test_checklist.py).
CHECKED = (
    "CHECKIN_SECRET_KEY",
    "CHECKIN_SMTP_HOST",
    "CHECKIN_SMTP_TLS",
    "CHECKIN_PUBLIC_URL",
    "TWILIO_ACCOUNT_SID",
    "TWILIO_AUTH_TOKEN",
    "TWILIO_MESSAGING_SERVICE_SID",
    "TWILIO_FROM_NUMBER",
    "CHECKIN_CLINIC_PHONE",
    "CHECKIN_CLINIC_NAME",
    "CHECKIN_ALERT_EMAILS",
    "care-teams.yaml",
    "clinical_sign_off",
)


@dataclass(frozen=True)
class Verdict:
    """One unsafe setting: ``setting`` is the variable (or ``file: key``) to change."""

    setting: str
    problem: str

    def __str__(self) -> str:
        return f"{self.setting}: {self.problem}"


class UnsafeSettings(ConfigError):
    """Production refused to start; ``verdicts`` lists every reason, one line each."""

    def __init__(self, verdicts: list[Verdict]) -> None:
        self.verdicts = verdicts
        first = verdicts[0]
        super().__init__(first.setting, first.problem)
        self.args = ("CHECKIN_ENV=production refuses to start:\n" + "\n".join(f"  {v}" for v in verdicts),)

    def __str__(self) -> str:
        return str(self.args[0])


def key_bits(key: str) -> float:
    """A generous estimate of the randomness in ``key``: its length times the bits of the
    smallest character set it is drawn from (hex, or the classes of characters it uses). Few
    distinct characters (``xxxx…``, ``abab…``) count as none."""
    if len(set(key)) < 10:
        return 0.0
    if _HEX.fullmatch(key):
        return 4.0 * len(key)
    alphabet = 0
    alphabet += 26 if any(c.islower() for c in key) else 0
    alphabet += 26 if any(c.isupper() for c in key) else 0
    alphabet += 10 if any(c.isdigit() for c in key) else 0
    others = {c for c in key if not c.isalnum()}
    alphabet += 2 if others <= {"-", "_"} and others else (33 if others else 0)
    return len(key) * math.log2(max(alphabet, 2))


def _loopback(host: str) -> bool:
    if host.lower() in ("localhost", "localhost.localdomain"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def key_verdicts(settings: Settings) -> list[Verdict]:
    """The secret key alone: every command that signs a link (``staff add`` prints one) needs it."""
    key = settings.secret_key
    if key in PUBLISHED_KEYS:
        return [Verdict("CHECKIN_SECRET_KEY", f"not set or a key published in the source; {KEY_HINT}")]
    if key_bits(key) < MIN_KEY_BITS:
        return [Verdict("CHECKIN_SECRET_KEY", f"shorter than 32 random bytes; {KEY_HINT}")]
    return []


def settings_verdicts(settings: Settings) -> list[Verdict]:
    """What is unsafe in the settings alone (no files read)."""
    out = key_verdicts(settings)
    smtp = settings.smtp
    if smtp is None:
        out.append(
            Verdict("CHECKIN_SMTP_HOST", "not set: email (patient words, nurse links) would be printed")
        )
    elif smtp.tls == "none" and not _loopback(smtp.host):
        out.append(
            Verdict(
                "CHECKIN_SMTP_TLS", f"none to {smtp.host}, which is not on this host; use starttls or ssl"
            )
        )
    url = settings.public_url
    if not url:
        out.append(Verdict("CHECKIN_PUBLIC_URL", "not set: nurse links and webhooks need the https URL"))
    elif urlsplit(url).scheme != "https":
        out.append(Verdict("CHECKIN_PUBLIC_URL", f"{url} is not https"))
    out.extend(_twilio_verdicts(settings))
    if placeholder_phone(settings.clinic_phone):
        out.append(Verdict("CHECKIN_CLINIC_PHONE", f"{settings.clinic_phone!r} is a placeholder (555-01xx)"))
    if settings.clinic_name == DEFAULT_CLINIC_NAME:
        out.append(Verdict("CHECKIN_CLINIC_NAME", f"still the default {DEFAULT_CLINIC_NAME!r}"))
    return out


def _twilio_verdicts(settings: Settings) -> list[Verdict]:
    t = settings.twilio
    if t is None:
        return [Verdict("TWILIO_ACCOUNT_SID", "not set: SMS would be printed to the console")]
    out = []
    values = {
        "TWILIO_ACCOUNT_SID": t.account_sid,
        "TWILIO_AUTH_TOKEN": t.auth_token,
        "TWILIO_MESSAGING_SERVICE_SID": t.messaging_service_sid,
    }
    for name, value in values.items():
        if value is not None and not _TWILIO_SID[name].fullmatch(value):
            prefix = _TWILIO_SID[name].pattern[:2] if name != "TWILIO_AUTH_TOKEN" else ""
            shape = f"{prefix} followed by 32 lower-case hex digits" if prefix else "32 lower-case hex digits"
            out.append(Verdict(name, f"is not of Twilio's shape: {shape}"))
    if t.from_number and not t.messaging_service_sid and placeholder_phone(t.from_number):
        out.append(Verdict("TWILIO_FROM_NUMBER", f"{t.from_number} is a placeholder (555 number)"))
    return out


def content_verdicts(
    care_teams: CareTeams, schedules: Mapping[str, Schedule], *, care_teams_file: str
) -> list[Verdict]:
    """Alert contacts that reach nobody, and schedules nobody signed off."""
    out: list[Verdict] = []
    from_env = care_teams_file == "CHECKIN_ALERT_EMAILS"  # no file: the variable is at fault
    for team in care_teams.teams.values():
        where = care_teams_file if from_env else f"{care_teams_file}: team {team.id}"
        contacts = [*team.nurses, *([team.on_call] if team.on_call else [])]
        for c in contacts:
            if c.email and placeholder_email(c.email):
                out.append(Verdict(where, f"{c.email} is a placeholder address"))
            if c.phone and placeholder_phone(c.phone):
                out.append(Verdict(where, f"{c.name}'s phone is a placeholder (555 number)"))
        real = [e for e in team.emails if not placeholder_email(e)]
        if not real:
            out.append(Verdict(where, "no reachable nurse email: alerts would go to nobody"))
    for schedule in sorted(schedules.values(), key=lambda s: s.id):
        if not schedule.signed_off:
            out.append(
                Verdict(f"schedules/{schedule.id}.yaml: clinical_sign_off", "by and date are not both set")
            )
    return out


def verdicts(
    settings: Settings, care_teams: CareTeams, schedules: Mapping[str, Schedule], *, care_teams_file: str
) -> list[Verdict]:
    """Every verdict, settings first; empty when the deployment is safe to run in production."""
    return settings_verdicts(settings) + content_verdicts(
        care_teams, schedules, care_teams_file=care_teams_file
    )


def enforce(settings: Settings, found: Iterable[Verdict]) -> list[Verdict]:
    """Production: raise ``UnsafeSettings`` if anything was found. Development: return what
    was found, for ``warn`` once the process is otherwise ready."""
    found = list(found)
    if found and settings.env == "production":
        raise UnsafeSettings(found)
    return found


def warn(found: Iterable[Verdict]) -> None:
    """Log each verdict at WARNING (``checkin.ops``, event ``settings.unsafe``)."""
    for v in found:
        ops.warning(
            "unsafe default (refused in production): %s",
            str(v),
            extra={"event": "settings.unsafe", "setting": v.setting},
        )


def routing_line(care_teams: CareTeams) -> str:
    """Where alerts go, for the start-up log: each team's nurse emails and on-call contact
    (staff addresses; phone numbers as their last four digits only)."""
    parts = []
    for team in care_teams.teams.values():
        emails = ", ".join(team.emails) or "no email"
        on_call = ""
        if team.on_call is not None:
            oc = team.on_call
            phone = f" SMS to number ending {oc.phone[-4:]}" if oc.phone else ""
            on_call = f"; on call {oc.email or ''}{phone}".rstrip()
        default = " (default)" if team.id == care_teams.default else ""
        parts.append(f"team {team.id}{default}: {emails}{on_call}")
    return "alerts go to " + " | ".join(parts)
