"""The nurse's alert page: ``GET /a/{token}`` shows the alert; ``POST /a/{token}/ack`` and
``POST /a/{token}/resolve`` act on it.

- **The signed token is the capability and the identity.** It carries the alert id and the
  address the email went to (``checkin.tokens``, salt ``checkin.alert-ack``, 7 days): every
  action is attributed to that nurse in the audit log (HIPAA unique user identification). It is
  signed, not encrypted, so it holds no patient data. Forged → 403, expired → 410.
- **GET changes nothing.** Mail security scanners fetch links in delivered mail; so GET only
  reads (not even an audit row: a scanner's fetch is not a nurse's view), and actions are POSTs.
- **CSRF: a signed double-submit.** GET sets a random nonce in a cookie (``HttpOnly``,
  ``SameSite=Strict``, path ``/a/``, ``Secure`` when CHECKIN_PUBLIC_URL is https; an existing
  nonce is reused, so two alerts open in two tabs both work) and puts
  ``HMAC(secret, token | nonce)`` in the form. A POST needs the token, the cookie and the
  matching HMAC: another site cannot read the cookie or compute the HMAC, a strict cookie is
  not sent on a cross-site POST at all, and a form value from one alert's page is useless with
  another alert's token (the hidden ``alert`` field must match the token's alert too). Nothing
  is stored server-side: no session table, and any web process can check any POST. What it
  cannot stop is a client that fetches the page, keeps the cookie and submits the form, i.e.
  a browser the nurse controls; scanners do not submit forms.
- **Idempotent.** Acknowledging twice, or after a colleague, shows who acknowledged it and
  changes nothing; resolving needs a note (400 without one). POSTs redirect (303) back to the
  GET page, so a reload does not resubmit.
- Pages: ``Cache-Control: no-store``, ``Referrer-Policy: no-referrer`` (the URL is the
  capability), a CSP without scripts, no patient name anywhere (the title has severity and
  the internal reference).
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse
from sqlalchemy.exc import DBAPIError, OperationalError

from checkin import tokens
from checkin.alerts import lifecycle as alerts
from checkin.alerts import notify
from checkin.app.web.deps import WebDep, web_of
from checkin.app.web.limits import in_db_thread, is_form, parse_form
from checkin.app.web.pages import HEADERS, PAGES
from checkin.deps import Services
from checkin.store.models import Alert, Patient

log = logging.getLogger(__name__)
router = APIRouter()

COOKIE = "checkin_nurse_csrf"
COOKIE_MAX_AGE = 12 * 3600
CSRF_CONTEXT = b"checkin.nurse-csrf|"
MAX_NOTE = alerts.MAX_NOTE

MESSAGES = {
    "forged": "This link is not valid.",
    "expired": "This link has expired. Use the latest alert email, or open the alert from the daily digest.",
    "gone": "This alert no longer exists.",
    "csrf": "This form has expired or was not sent from this page. Reload the page and try again.",
    "acknowledged": "Acknowledged. Escalation stopped.",
    "already": "This alert was already acknowledged; nothing changed.",
    "resolved": "Resolved.",
    "already_resolved": "This alert was already resolved; nothing changed.",
    "note": "Write a short note to resolve the alert.",
    "unavailable": "The database is not reachable just now. Try again in a minute, or call the patient directly.",
}


def csrf_value(secret: str, token: str, nonce: str) -> str:
    return hmac.new(
        secret.encode(), CSRF_CONTEXT + token.encode() + b"|" + nonce.encode(), hashlib.sha256
    ).hexdigest()


def csrf_ok(secret: str, token: str, nonce: str | None, value: str | None) -> bool:
    if not nonce or not value or len(nonce) > 100:
        return False
    return hmac.compare_digest(csrf_value(secret, token, nonce), value)


@dataclass(frozen=True)
class Grant:
    """What a valid token grants: one alert, for one recipient."""

    alert_id: int
    recipient: str


@dataclass
class View:
    """What the page shows about an alert (loaded in a worker thread)."""

    alert_id: int
    severity: str
    kind_label: str
    status: str
    reference: str
    phone: str
    opened_at: str
    acknowledged: str
    resolved: str
    resolution_note: str
    flags: list[str] = field(default_factory=list)
    replies: list[dict[str, Any]] = field(default_factory=list)
    conversation: list[dict[str, str]] = field(default_factory=list)


def _grant(request: Request, token: str) -> Grant | Response:
    services = web_of(request).services
    try:
        payload = tokens.read_token(
            services.settings.secret_key,
            tokens.ALERT_SALT,
            token,
            tokens.ALERT_MAX_AGE,
            now=services.clock.now().timestamp(),
        )
    except tokens.InvalidToken as exc:
        return _message(request, 410 if exc.expired else 403, "expired" if exc.expired else "forged")
    if (
        not isinstance(payload, dict)
        or not isinstance(payload.get("a"), int)
        or not isinstance(payload.get("r"), str)
        or not payload["r"]
    ):
        return _message(request, 403, "forged")
    return Grant(payload["a"], payload["r"])


def _load(services: Services, alert_id: int) -> View | None:
    tz = ZoneInfo(services.settings.default_timezone)

    def at(when: datetime | None) -> str:
        return when.astimezone(tz).strftime("%a %b %d %H:%M %Z") if when else ""

    with services.sessions() as session:
        alert = session.get(Alert, alert_id)
        if alert is None:
            return None
        patient = session.get(Patient, alert.patient_id)
        assert patient is not None
        ctx = notify.alert_context(
            session,
            alert,
            settings=services.settings,
            renderer=services.renderer,
            level=max(alert.escalation_level - 1, 0),
            steps=0,
            link="",
        )
        return View(
            alert_id=alert.id,
            severity=alert.severity,
            kind_label=ctx["kind_label"],
            status=alert.status,
            reference=patient.reference,
            phone=patient.phone or "",
            opened_at=at(alert.opened_at),
            acknowledged=f"{alert.acknowledged_by} at {at(alert.acknowledged_at)}"
            if alert.acknowledged_at
            else "",
            resolved=f"{alert.resolved_by} at {at(alert.resolved_at)}" if alert.resolved_at else "",
            resolution_note=alert.resolution_note or "",
            flags=[f["label"] for f in ctx["flags"]],
            replies=ctx["replies"],
            conversation=ctx["conversation"],
        )


def _secure(request: Request) -> bool:
    public = web_of(request).services.settings.public_url or ""
    return public.startswith("https://")


def _message(request: Request, status: int, key: str) -> HTMLResponse:
    html = PAGES.get_template("nurse.html").render(view=None, message=MESSAGES[key], title="Alert")
    return HTMLResponse(html, status_code=status, headers=HEADERS)


def _page(
    request: Request,
    token: str,
    view: View,
    *,
    status: int = 200,
    message: str | None = None,
    error: str | None = None,
    note: str = "",
) -> HTMLResponse:
    settings = web_of(request).services.settings
    nonce = request.cookies.get(COOKIE)
    fresh = not nonce or len(nonce) > 100
    if fresh:
        nonce = secrets.token_urlsafe(32)
    assert nonce is not None
    html = PAGES.get_template("nurse.html").render(
        view=view,
        token=token,
        csrf=csrf_value(settings.secret_key, token, nonce),
        message=message,
        error=error,
        note=note,
        max_note=MAX_NOTE,
        title=f"{view.severity.upper()} alert {view.reference}",
        clinic=settings.clinic_name,
    )
    response = HTMLResponse(html, status_code=status, headers=HEADERS)
    if fresh:
        response.set_cookie(
            COOKIE,
            nonce,
            max_age=COOKIE_MAX_AGE,
            path="/a/",
            httponly=True,
            samesite="strict",
            secure=_secure(request),
        )
    return response


@router.get("/a/{token}")
async def show(request: Request, token: str, done: str | None = None) -> Response:
    found = _grant(request, token)
    if isinstance(found, Response):
        return found
    view = await in_db_thread(request, _load, web_of(request).services, found.alert_id)
    if view is None:
        return _message(request, 410, "gone")
    return _page(request, token, view, message=MESSAGES.get(done or ""))


async def _checked_form(request: Request, token: str) -> tuple[Grant, dict[str, str]] | Response:
    """The grant and the form of a POST that passed every check, or the refusal."""
    if not is_form(request.headers.get("content-type")):
        return Response("expected a form", status_code=415, media_type="text/plain")
    found = _grant(request, token)
    if isinstance(found, Response):
        return found
    try:
        fields = dict(parse_form(await request.body()))
    except ValueError:
        return Response("malformed form", status_code=400, media_type="text/plain")
    settings = web_of(request).services.settings
    if not csrf_ok(settings.secret_key, token, request.cookies.get(COOKIE), fields.get("csrf")) or fields.get(
        "alert"
    ) != str(found.alert_id):
        web_of(request).metrics.inc("nurse_form_rejected_total", reason="csrf")
        log.warning("nurse form refused: CSRF check failed", extra={"alert_id": found.alert_id})
        return _message(request, 403, "csrf")
    return found, fields


def _act(
    services: Services,
    write_lock: threading.Lock | None,
    fn: Callable[..., alerts.StaffAction | None],
    alert_id: int,
    **kw: Any,
) -> alerts.StaffAction | None:
    from contextlib import nullcontext

    with write_lock or nullcontext(), services.sessions.begin() as session:
        result: alerts.StaffAction | None = fn(session, alert_id, now=services.clock.now(), **kw)
        return result


@router.post("/a/{token}/ack")
async def acknowledge(request: Request, token: str, state: WebDep) -> Response:
    checked = await _checked_form(request, token)
    if isinstance(checked, Response):
        return checked
    grant, _ = checked
    try:
        done = await in_db_thread(
            request,
            _act,
            state.services,
            state.write_lock,
            alerts.acknowledge,
            grant.alert_id,
            by=grant.recipient,
        )
    except (OperationalError, DBAPIError):
        return _message(request, 503, "unavailable")
    if done is None:
        return _message(request, 410, "gone")
    state.metrics.inc("alert_actions_total", action="acknowledge", changed=str(done.changed).lower())
    return RedirectResponse(
        f"/a/{token}?done={'acknowledged' if done.changed else 'already'}", status_code=303, headers=HEADERS
    )


@router.post("/a/{token}/resolve")
async def resolve(request: Request, token: str, state: WebDep) -> Response:
    checked = await _checked_form(request, token)
    if isinstance(checked, Response):
        return checked
    grant, fields = checked
    note = fields.get("note", "").strip()
    if not note:
        view = await in_db_thread(request, _load, state.services, grant.alert_id)
        if view is None:
            return _message(request, 410, "gone")
        return _page(request, token, view, status=400, error=MESSAGES["note"])
    try:
        done = await in_db_thread(
            request,
            _act,
            state.services,
            state.write_lock,
            alerts.resolve,
            grant.alert_id,
            by=grant.recipient,
            note=note[:MAX_NOTE],
        )
    except (OperationalError, DBAPIError):
        return _message(request, 503, "unavailable")
    if done is None:
        return _message(request, 410, "gone")
    state.metrics.inc("alert_actions_total", action="resolve", changed=str(done.changed).lower())
    return RedirectResponse(
        f"/a/{token}?done={'resolved' if done.changed else 'already_resolved'}",
        status_code=303,
        headers=HEADERS,
    )
