"""Who is asking: the session cookie, CSRF checks, and running a request's database work as the
signed-in person.

- **Cookie** ``checkin_session``: the session token (``checkin.staff.signin``), ``HttpOnly``,
  ``SameSite=Lax`` (a link in an alert email is a cross-site navigation and must arrive signed
  in; cross-site POSTs still carry no cookie), ``Secure`` when CHECKIN_PUBLIC_URL is https, path
  ``/``, no ``Max-Age`` (gone when the browser closes; the server ends it sooner when idle).
- **CSRF**: every form carries the session's random CSRF secret; a POST without the matching
  value is refused (403) and audited, before anything else happens. Sign-in and set-password
  forms, which have no session yet, use a signed double-submit cookie instead.
- ``as_staff`` runs ``fn(session, who, ...)`` in one transaction, after the session check; the
  session's own bookkeeping (activity time, revocation of an idle or disabled one, refusals'
  audit rows) commits with it.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from urllib.parse import quote

from fastapi import Request
from sqlalchemy.orm import Session

from checkin.app.web.deps import web_of
from checkin.app.web.limits import in_db_thread, is_form, parse_form
from checkin.staff import signin
from checkin.store import audit

COOKIE = "checkin_session"
PRE_COOKIE = "checkin_presession"
PRE_CONTEXT = b"checkin.console-presession|"


class NotSignedIn(Exception):
    """No valid session: pages redirect to sign-in, the worklist's poll gets 401."""

    def __init__(self, reason: str, next_path: str = "/console") -> None:
        super().__init__(reason)
        self.reason = reason
        self.next_path = next_path


@dataclass(frozen=True)
class Refusal:
    """A refused request (403 another team's patient, 404 no such patient...), already audited."""

    status: int
    message: str


class BadForm(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def secure(request: Request) -> bool:
    public = web_of(request).services.settings.public_url or ""
    return public.startswith("https://")


def address(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def login_path(next_path: str) -> str:
    return f"/login?next={quote(next_path, safe='/')}"


def safe_next(value: str | None) -> str:
    """Only our own console pages: never an open redirect."""
    if value and value.startswith("/console") and "//" not in value and "\\" not in value:
        return value
    return "/console"


async def read_form(request: Request) -> dict[str, str]:
    if not is_form(request.headers.get("content-type")):
        raise BadForm(415, "expected a form")
    try:
        return dict(parse_form(await request.body()))
    except ValueError:
        raise BadForm(400, "malformed form") from None


async def transact(request: Request, fn: Callable[..., Any], *args: Any, **kw: Any) -> Any:
    """``fn(session, *args, **kw)`` in one write transaction, in a worker thread (SQLite: behind
    the process's write lock)."""
    state = web_of(request)

    def run() -> Any:
        with state.write_lock or nullcontext(), state.services.sessions.begin() as session:
            return fn(session, *args, **kw)

    return await in_db_thread(request, run)


async def as_staff(
    request: Request,
    fn: Callable[..., Any],
    *args: Any,
    form: dict[str, str] | None = None,
    admin: bool = False,
    **kw: Any,
) -> Any:
    """``fn(session, who, *args, **kw)`` for the signed-in person. ``form`` (a POST's fields)
    must carry the session's CSRF value; ``admin`` pages refuse nurses. Raises NotSignedIn;
    returns a Refusal for CSRF and role failures (audited)."""
    services = web_of(request).services
    token = request.cookies.get(COOKIE)
    idle = timedelta(minutes=services.settings.session_idle_minutes)
    path = request.url.path
    next_path = path if request.method == "GET" and not request.headers.get("x-console-poll") else "/console"

    def run(session: Session) -> Any:
        now = services.clock.now()
        who = signin.current(session, token, now=now, idle=idle)
        if isinstance(who, str):
            return NotSignedIn(who, next_path)
        if form is not None and not csrf_ok(who, form.get("csrf")):
            audit.record(session, at=now, actor=who.email, action="staff.csrf_refused", path=path[:200])
            return Refusal(403, "This form has expired or was not sent from this page. Reload and try again.")
        if admin and not who.is_admin:
            audit.record(session, at=now, actor=who.email, action="staff.forbidden", path=path[:200])
            return Refusal(403, "This page is for administrators.")
        return fn(session, who, *args, **kw)

    result = await transact(request, run)
    if isinstance(result, NotSignedIn):
        raise result
    return result


def csrf_ok(who: signin.Current, value: str | None) -> bool:
    return bool(value) and hmac.compare_digest(who.csrf.encode(), (value or "").encode())


# ---- before a session exists (sign-in, set-password) -------------------------------------


def pre_value(secret: str, nonce: str) -> str:
    return hmac.new(secret.encode(), PRE_CONTEXT + nonce.encode(), hashlib.sha256).hexdigest()


def pre_nonce(request: Request) -> tuple[str, bool]:
    """This browser's pre-session nonce, and whether it is new (then set the cookie)."""
    nonce = request.cookies.get(PRE_COOKIE)
    if nonce and len(nonce) <= 100:
        return nonce, False
    return secrets.token_urlsafe(32), True


def pre_ok(request: Request, value: str | None) -> bool:
    nonce = request.cookies.get(PRE_COOKIE)
    if not nonce or not value or len(nonce) > 100:
        return False
    secret = web_of(request).services.settings.secret_key
    return hmac.compare_digest(pre_value(secret, nonce), value)
