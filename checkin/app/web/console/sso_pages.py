"""``/login/sso`` and ``/login/sso/callback``: single sign-on through the hospital's OpenID
provider (``checkin.staff.oidc``), when ``CHECKIN_OIDC_*`` is set; 404 otherwise.

The state, nonce, PKCE verifier and where to go next travel in a signed cookie that lives ten
minutes and only on these paths; the callback refuses (400, audited) a missing or mismatched
state, an error from the provider, or a token that does not verify, and otherwise opens the
same server-side session as a password sign-in (``signin.sign_in_sso``).
"""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from fastapi.responses import RedirectResponse
from starlette.concurrency import run_in_threadpool

from checkin import tokens
from checkin.app.web.console import access
from checkin.app.web.console.render import page
from checkin.app.web.deps import web_of
from checkin.config import Settings
from checkin.oidc_settings import OidcSettings
from checkin.staff import oidc, signin

router = APIRouter()

COOKIE = "checkin_sso"
SALT = "checkin.sso"
LIFETIME = 600  # seconds from leaving for the provider to coming back
PATH = "/login/sso"
FAILED = "Single sign-on did not work. Try again, or sign in with your password."
_providers: dict[tuple[OidcSettings, str], oidc.Provider] = {}


def _provider(request: Request) -> oidc.Provider | None:
    settings: Settings = web_of(request).services.settings
    if settings.oidc is None:
        return None
    base = (settings.public_url or str(request.base_url)).rstrip("/")
    key = (settings.oidc, base)
    if key not in _providers:  # one per configuration: discovery and keys are cached in it
        cfg = settings.oidc
        _providers[key] = oidc.Provider(
            oidc.OidcConfig(cfg.issuer, cfg.client_id, cfg.client_secret, f"{base}{PATH}/callback")
        )
    return _providers[key]


def _refused(request: Request, reason: str, status: int = 400) -> Response:
    web_of(request).metrics.inc("console_sign_in_refused_total", reason="sso")
    response = page(
        "message.html", status, title="Not signed in", message=FAILED, link="/login", link_text="Sign in"
    )
    response.delete_cookie(COOKIE, path=PATH, httponly=True, samesite="lax", secure=access.secure(request))
    return response


@router.get(PATH)
async def start(request: Request, next: str | None = None) -> Response:
    provider = _provider(request)
    if provider is None:
        return Response("single sign-on is not configured", status_code=404, media_type="text/plain")
    services = web_of(request).services
    try:
        started = await run_in_threadpool(provider.begin)
    except oidc.SsoError as exc:
        failed, address = exc.reason, access.address(request)
        await access.transact(
            request, lambda s: signin.refuse_sso(s, reason=failed, address=address, now=services.clock.now())
        )
        return _refused(request, failed, 502)
    keep = {"s": started.state, "n": started.nonce, "v": started.verifier, "x": access.safe_next(next)}
    response = RedirectResponse(started.url, status_code=303)
    response.set_cookie(
        COOKIE,
        tokens.make_token(services.settings.secret_key, SALT, keep, now=services.clock.now()),
        max_age=LIFETIME,
        path=PATH,
        httponly=True,
        samesite="lax",  # it must come back with the provider's top-level redirect
        secure=access.secure(request),
    )
    return response


@router.get(PATH + "/callback")
async def callback(request: Request, code: str = "", state: str = "", error: str = "") -> Response:
    provider = _provider(request)
    if provider is None:
        return Response("single sign-on is not configured", status_code=404, media_type="text/plain")
    services = web_of(request).services
    now = services.clock.now()
    try:
        kept = tokens.read_token(
            services.settings.secret_key, SALT, request.cookies.get(COOKIE, ""), LIFETIME, now=now.timestamp()
        )
    except tokens.InvalidToken:
        kept = None
    reason = None
    if not isinstance(kept, dict) or not state or kept.get("s") != state:
        reason = "sso_state"
    elif error or not code:
        reason = "sso_provider_error"
    identity = None
    if reason is None:
        try:
            identity = await run_in_threadpool(
                provider.finish,
                code=code,
                verifier=str(kept["v"]),
                nonce=str(kept["n"]),
                now=now.timestamp(),
            )
        except oidc.SsoError as exc:
            reason = exc.reason
    address = access.address(request)
    if identity is None:
        failed = reason or "sso"
        await access.transact(
            request, lambda s: signin.refuse_sso(s, reason=failed, address=address, now=now)
        )
        return _refused(request, failed)
    result = await access.transact(
        request,
        lambda s: signin.sign_in_sso(
            s,
            email=identity.email,
            mfa=identity.mfa,
            address=address,
            now=now,
            nurses_need_totp=services.settings.nurse_totp,
        ),
    )
    if isinstance(result, signin.Refused):
        return _refused(request, result.reason, 429 if result.reason == "throttled" else 401)
    assert isinstance(kept, dict)
    response = RedirectResponse(access.safe_next(str(kept.get("x") or "/console")), status_code=303)
    response.set_cookie(
        access.COOKIE, result.token, path="/", httponly=True, samesite="lax", secure=access.secure(request)
    )
    response.delete_cookie(COOKIE, path=PATH, httponly=True, samesite="lax", secure=access.secure(request))
    return response
