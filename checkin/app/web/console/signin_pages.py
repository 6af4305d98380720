"""``/login``, ``/logout`` and ``/set-password/{token}``.

A failed sign-in says one thing whatever failed (no hint which emails have accounts); after
too many failures it says to wait. See ``checkin.staff.signin`` for the rules.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import RedirectResponse
from sqlalchemy.orm import Session

from checkin.app.web.console import access
from checkin.app.web.console.render import page
from checkin.app.web.deps import web_of
from checkin.staff import accounts, passwords, signin
from checkin.store.models import Staff

router = APIRouter()

FAILED = "Email, password or code not accepted."
THROTTLED = "Too many attempts. Wait 15 minutes, or ask an administrator."


def _with_pre_cookie(request: Request, template: str, status: int = 200, **ctx: Any) -> Response:
    nonce, fresh = access.pre_nonce(request)
    secret = web_of(request).services.settings.secret_key
    sso = web_of(request).services.settings.oidc is not None
    response = page(template, status, csrf=access.pre_value(secret, nonce), sso=sso, **ctx)
    if fresh:
        response.set_cookie(
            access.PRE_COOKIE,
            nonce,
            max_age=3600,
            path="/",
            httponly=True,
            samesite="strict",
            secure=access.secure(request),
        )
    return response


@router.get("/login")
async def login_page(request: Request, next: str | None = None, bye: str | None = None) -> Response:
    message = {"1": "Signed out."}.get(bye or "")
    if request.query_params.get("expired"):
        message = "Your session ended. Sign in again."
    return _with_pre_cookie(
        request, "login.html", title="Sign in", next=access.safe_next(next), message=message, error=None
    )


@router.post("/login")
async def login(request: Request) -> Response:
    try:
        form = await access.read_form(request)
    except access.BadForm as exc:
        return Response(exc.message, status_code=exc.status, media_type="text/plain")
    next_path = access.safe_next(form.get("next"))
    if not access.pre_ok(request, form.get("csrf")):
        return _with_pre_cookie(
            request,
            "login.html",
            403,
            title="Sign in",
            next=next_path,
            message=None,
            error="This form has expired. Try again.",
        )
    services = web_of(request).services
    result = await access.transact(
        request,
        lambda s: signin.sign_in(
            s,
            email=form.get("email", ""),
            password=form.get("password", ""),
            code=form.get("code", ""),
            address=access.address(request),
            now=services.clock.now(),
            nurses_need_totp=services.settings.nurse_totp,
        ),
    )
    if isinstance(result, signin.Refused):
        throttled = result.reason == "throttled"
        web_of(request).metrics.inc("console_sign_in_refused_total", reason=result.reason)
        return _with_pre_cookie(
            request,
            "login.html",
            429 if throttled else 401,
            title="Sign in",
            next=next_path,
            message=None,
            error=THROTTLED if throttled else FAILED,
            email=form.get("email", "")[:254],
        )
    response = RedirectResponse(next_path, status_code=303)
    response.set_cookie(
        access.COOKIE, result.token, path="/", httponly=True, samesite="lax", secure=access.secure(request)
    )
    return response


@router.post("/logout")
async def logout(request: Request) -> Response:
    try:
        form = await access.read_form(request)
    except access.BadForm as exc:
        return Response(exc.message, status_code=exc.status, media_type="text/plain")
    services = web_of(request).services

    def out(session: Session, who: signin.Current) -> None:
        signin.sign_out(session, who.session_id, now=services.clock.now(), actor=who.email)

    result = await access.as_staff(request, out, form=form)
    if isinstance(result, access.Refusal):
        return page("message.html", result.status, title="Refused", message=result.message)
    response = RedirectResponse("/login?bye=1", status_code=303)
    response.delete_cookie(
        access.COOKIE, path="/", httponly=True, samesite="lax", secure=access.secure(request)
    )
    return response


def _setup_view(staff: Staff, issuer: str) -> dict[str, Any]:
    secret = staff.totp_secret
    return {
        "email": staff.email,
        "totp_secret": secret,
        "totp_uri": passwords.totp_uri(secret, staff.email, issuer) if secret else None,
    }


@router.get("/set-password/{token}")
async def set_password_page(request: Request, token: str) -> Response:
    services = web_of(request).services

    def load(session: Session) -> dict[str, Any] | None:
        staff = accounts.staff_for_setup(
            session, token, secret_key=services.settings.secret_key, now=services.clock.now()
        )
        return _setup_view(staff, services.settings.clinic_name) if staff else None

    view = await access.transact(request, load)
    if view is None:
        return page("message.html", 410, title="Link not valid", message=LINK_GONE)
    return _with_pre_cookie(
        request, "set_password.html", title="Set your password", view=view, token=token, error=None
    )


LINK_GONE = "This link is not valid any more (used, replaced or older than 3 days). Ask an administrator for a new one."


@router.post("/set-password/{token}")
async def set_password(request: Request, token: str) -> Response:
    try:
        form = await access.read_form(request)
    except access.BadForm as exc:
        return Response(exc.message, status_code=exc.status, media_type="text/plain")
    services = web_of(request).services
    if not access.pre_ok(request, form.get("csrf")):
        return page("message.html", 403, title="Refused", message="This form has expired. Reload the link.")

    def apply(session: Session) -> dict[str, Any] | str | None:
        now = services.clock.now()
        staff = accounts.staff_for_setup(session, token, secret_key=services.settings.secret_key, now=now)
        if staff is None:
            return None
        password = form.get("password", "")
        problem = passwords.problem(password)
        if problem is None and password != form.get("repeat", ""):
            problem = "the two passwords differ"
        if (
            problem is None
            and staff.totp_secret
            and not passwords.totp_ok(staff.totp_secret, form.get("code", ""), now)
        ):
            problem = "the code from the authenticator app is not right (check the phone's clock)"
        if problem is not None:
            view = _setup_view(staff, services.settings.clinic_name)
            view["error"] = f"Password not set: {problem}."
            return view
        accounts.set_password(session, staff, password, now=now)
        return "ok"

    outcome = await access.transact(request, apply)
    if outcome is None:
        return page("message.html", 410, title="Link not valid", message=LINK_GONE)
    if isinstance(outcome, dict):
        return _with_pre_cookie(
            request,
            "set_password.html",
            400,
            title="Set your password",
            view=outcome,
            token=token,
            error=outcome["error"],
        )
    return page(
        "message.html",
        200,
        title="Password set",
        message="Your password is set.",
        link="/login",
        link_text="Sign in",
    )
