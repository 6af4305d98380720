"""The demo's site: its settings (SQLite in the work folder, console SMS, the local SMTP
catcher, webhooks signed with a made-up token) and the real web app under uvicorn in a thread."""

from __future__ import annotations

import logging
import shutil
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Self

from checkin.config import DEMO_SECRET_KEY, Settings
from checkin.demo.patients import Persona

TZ = "America/New_York"
AUTH_TOKEN = "demo-auth-token-not-a-secret"  # noqa: S105 - the demo signs its own webhooks
ACCOUNT_SID = "AC" + "d" * 32


def content_dir(name: str) -> Path:
    """``schedules``/``templates`` from the working directory, else beside the package."""
    here = Path(name)
    if here.is_dir():
        return here.resolve()
    return Path(__file__).resolve().parents[2] / name


def demo_schedules(workdir: Path) -> Path:
    """The shipped schedules with the example care-team file in use: the demo shows the whole
    ladder (team email, then the on-call SMS), which a site gets only from its own file."""
    target = workdir / "schedules"
    shutil.copytree(content_dir("schedules"), target, dirs_exist_ok=True)
    shutil.copyfile(target / "care-teams.yaml.example", target / "care-teams.yaml")
    return target


def demo_settings(workdir: Path, smtp_port: int, web_port: int, sms_rate: float) -> Settings:
    return Settings.from_env(
        {
            "CHECKIN_DATABASE_URL": f"sqlite:///{workdir / 'demo.db'}",
            "CHECKIN_SCHEDULES_DIR": str(demo_schedules(workdir)),
            "CHECKIN_TEMPLATES_DIR": str(content_dir("templates")),
            "CHECKIN_DEFAULT_TIMEZONE": TZ,
            "CHECKIN_SECRET_KEY": DEMO_SECRET_KEY,
            "CHECKIN_PUBLIC_URL": f"http://127.0.0.1:{web_port}",
            "CHECKIN_CLINIC_NAME": "Riverside Spine Center",
            "CHECKIN_CLINIC_PHONE": "+1 555 010 0100",
            "CHECKIN_LOG_LEVEL": "WARNING",
            # Signatures are always verified; the demo signs its webhooks with a made-up token.
            "TWILIO_ACCOUNT_SID": ACCOUNT_SID,
            "TWILIO_AUTH_TOKEN": AUTH_TOKEN,
            "TWILIO_FROM_NUMBER": "+15005550006",
            "CHECKIN_SMS_RATE": str(sms_rate),
            "CHECKIN_SMTP_HOST": "127.0.0.1",
            "CHECKIN_SMTP_PORT": str(smtp_port),
            "CHECKIN_SMTP_TLS": "none",
            "CHECKIN_EMAIL_FROM": "checkin@riverside.example.org",
            "CHECKIN_ALERT_EMAILS": "spine-nurses@riverside.example.org",
        }
    )


class WebApp:
    """The real FastAPI app under uvicorn on 127.0.0.1, in a thread."""

    def __init__(self, services: Any, port: int) -> None:
        import uvicorn

        from checkin.app.web import create_app

        self.port = port
        config = uvicorn.Config(
            create_app(services),
            host="127.0.0.1",
            port=port,
            log_config=None,
            access_log=False,
            proxy_headers=False,
            lifespan="off",
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, name="checkin-web", daemon=True)

    def __enter__(self) -> Self:
        self.thread.start()
        deadline = time.monotonic() + 15
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("the web app did not start")
            time.sleep(0.02)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)

    def post_sms(self, settings: Settings, persona: Persona, text: str, sid: str) -> tuple[int, str]:
        """A signed Twilio webhook, as Twilio would send it when the patient texts back."""
        from twilio.request_validator import RequestValidator

        path = "/webhooks/twilio/sms"
        params = {
            "MessageSid": sid,
            "SmsSid": sid,
            "AccountSid": ACCOUNT_SID,
            "From": persona.phone,
            "To": "+15005550006",
            "Body": text,
            "NumMedia": "0",
        }
        signature = RequestValidator(AUTH_TOKEN).compute_signature(f"{settings.public_url}{path}", params)
        req = urllib.request.Request(
            f"http://127.0.0.1:{self.port}{path}",
            data=urllib.parse.urlencode(params).encode(),
            headers={"X-Twilio-Signature": signature, "Content-Type": "application/x-www-form-urlencoded"},
        )
        try:
            with urllib.request.urlopen(req, timeout=30) as r:  # noqa: S310 - the demo's own http://127.0.0.1 app
                return r.status, r.read().decode()
        except urllib.error.HTTPError as e:
            return e.code, e.read().decode()


def twiml_text(body: str) -> str:
    import xml.etree.ElementTree as ET

    try:
        root = ET.fromstring(body)  # noqa: S314 - TwiML from the demo's own app
    except ET.ParseError:
        return ""
    return " ".join((m.text or "").strip() for m in root.iter("Message"))


@contextmanager
def unsafe_defaults_counted() -> Iterator[list[str]]:
    """Inside: the start-up warnings about unsafe defaults (``settings.unsafe``) are collected
    into the yielded list instead of logged. The demo runs on development settings by design
    (console SMS, a made-up key, a local http URL); a newcomer's first command should say so in
    one line, not ten warnings. Every other process still logs each one."""
    collected: list[str] = []

    class Collect(logging.Filter):
        def filter(self, record: logging.LogRecord) -> bool:
            if getattr(record, "event", None) == "settings.unsafe":
                collected.append(record.getMessage())
                return False
            return True

    ops = logging.getLogger("checkin.ops")
    only = Collect()
    ops.addFilter(only)
    try:
        yield collected
    finally:
        ops.removeFilter(only)
