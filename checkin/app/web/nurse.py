"""``GET /a/{token}``: the link in alert emails sent before the console existed (and still the
link in alert emails: it names the alert, signed, with no patient data).

It shows nothing itself any more. A valid token redirects (303) to ``/console/alerts/{id}``,
which asks the nurse to sign in and then opens the patient's page: holding the link is no
longer enough to see a patient's messages. A forged token is refused (403) and an expired one
(older than ``ALERT_MAX_AGE``) answered 410, both with a page that names no patient. GET never
changes anything (mail scanners fetch links), and the old POST actions are gone: acting on an
alert needs a signed-in session and its CSRF token.
"""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse

from checkin import tokens
from checkin.app.web.deps import web_of
from checkin.app.web.pages import HEADERS, PAGES

router = APIRouter()

MESSAGES = {
    "forged": "This link is not valid.",
    "expired": "This link has expired. Sign in to the console to see open alerts.",
}


def _message(status: int, key: str) -> HTMLResponse:
    html = PAGES.get_template("nurse.html").render(view=None, message=MESSAGES[key], title="Alert")
    return HTMLResponse(html, status_code=status, headers=HEADERS)


@router.get("/a/{token}")
async def show(request: Request, token: str) -> Response:
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
        return _message(410 if exc.expired else 403, "expired" if exc.expired else "forged")
    if not isinstance(payload, dict) or not isinstance(payload.get("a"), int):
        return _message(403, "forged")
    return RedirectResponse(f"/console/alerts/{payload['a']}", status_code=303, headers=HEADERS)
