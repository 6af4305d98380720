"""The nurse console: sign-in, the worklist and inbox, patient pages and the nurse's actions.

``install(app)`` adds its routes, the security-headers middleware and the sign-in redirect.
Templates, the stylesheet and the small refresh script ship in this package (no CDN).
"""

from __future__ import annotations

from fastapi import FastAPI, Request, Response
from fastapi.responses import RedirectResponse

from checkin.app.web.console import routes, signin_pages, sso_pages
from checkin.app.web.console.access import NotSignedIn, login_path
from checkin.app.web.console.headers import SecurityHeadersMiddleware


async def _not_signed_in(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, NotSignedIn)
    if request.headers.get("x-console-poll"):
        return Response("sign in again", status_code=401, media_type="text/plain")
    target = login_path(exc.next_path)
    if exc.reason in ("expired", "revoked", "disabled"):
        target += "&expired=1"
    return RedirectResponse(target, status_code=303)


def install(app: FastAPI) -> None:
    app.include_router(signin_pages.router)
    app.include_router(sso_pages.router)
    app.include_router(routes.router)
    app.add_exception_handler(NotSignedIn, _not_signed_in)
    app.add_middleware(SecurityHeadersMiddleware)
