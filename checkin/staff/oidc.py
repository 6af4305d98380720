"""Single sign-on with OpenID Connect (authorization code flow with PKCE), through Authlib.

Off unless ``CHECKIN_OIDC_ISSUER``, ``CHECKIN_OIDC_CLIENT_ID`` and ``CHECKIN_OIDC_CLIENT_SECRET``
are set. Contract:

- **Discovery.** The provider's ``/.well-known/openid-configuration`` and its JWKS are read on
  first use and kept for ``CACHE_FOR``; an unknown key id reloads the JWKS once (key rotation).
- **Start** (``begin``): a fresh ``state``, ``nonce`` and PKCE verifier; the caller keeps them in
  a short-lived signed cookie and sends the browser to the returned authorization URL.
- **Finish** (``finish``): the code is exchanged at the token endpoint (client secret, PKCE
  verifier); the ID token must be signed by a key of the provider's JWKS (RS256/ES256 only),
  name this issuer and client, carry the nonce we sent, be unexpired, and give an ``email``
  that is not marked unverified. Any failure raises ``SsoError`` with a short reason code for
  the audit log; nothing of the tokens is logged.
- **Who it is** is decided by ``checkin.staff.signin.sign_in_sso``: an active account with that
  email (no account is created), and for an account that needs a second factor, an ID token
  whose ``amr`` says the provider did multi-factor authentication.
"""

from __future__ import annotations

import secrets
import threading
import time
from dataclasses import dataclass
from typing import Any

import httpx
from authlib.integrations.httpx_client import OAuth2Client
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

CACHE_FOR = 3600.0  # seconds
ALGORITHMS = ("RS256", "ES256")
TIMEOUT = 10.0
MFA_METHODS = frozenset({"mfa", "otp", "hwk", "swk", "sms", "fpt", "face", "iris", "retina", "pin"})


class SsoError(Exception):
    """Sign-in through the provider failed; ``reason`` is a short code (audit log only)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class OidcConfig:
    issuer: str
    client_id: str
    client_secret: str
    redirect_uri: str  # <public url>/login/sso/callback


@dataclass(frozen=True)
class Started:
    url: str  # where to send the browser
    state: str
    nonce: str
    verifier: str


@dataclass(frozen=True)
class Identity:
    email: str
    mfa: bool  # the provider says it used more than a password (``amr``)
    subject: str


class Provider:
    """One OpenID provider: discovery and keys cached per process (thread-safe)."""

    def __init__(self, config: OidcConfig, http: httpx.Client | None = None) -> None:
        self.config = config
        self._http = http or httpx.Client(timeout=TIMEOUT)
        self._lock = threading.Lock()
        self._meta: tuple[float, dict[str, Any]] | None = None
        self._keys: tuple[float, KeySet] | None = None

    def metadata(self) -> dict[str, Any]:
        with self._lock:
            if self._meta is None or time.monotonic() - self._meta[0] > CACHE_FOR:
                url = self.config.issuer.rstrip("/") + "/.well-known/openid-configuration"
                meta = self._get_json(url, "discovery")
                if meta.get("issuer") != self.config.issuer:
                    raise SsoError("discovery_issuer_mismatch")
                self._meta = (time.monotonic(), meta)
            return self._meta[1]

    def keys(self, *, reload: bool = False) -> KeySet:
        meta = self.metadata()
        with self._lock:
            if reload or self._keys is None or time.monotonic() - self._keys[0] > CACHE_FOR:
                try:
                    keys = KeySet.import_key_set(self._get_json(str(meta["jwks_uri"]), "jwks"))  # type: ignore[arg-type]
                except (KeyError, ValueError, JoseError) as exc:
                    raise SsoError("jwks_unreadable") from exc
                self._keys = (time.monotonic(), keys)
            return self._keys[1]

    def _get_json(self, url: str, what: str) -> dict[str, Any]:
        try:
            response = self._http.get(url)
            response.raise_for_status()
            data = response.json()
        except (httpx.HTTPError, ValueError) as exc:
            raise SsoError(f"{what}_unreachable") from exc
        if not isinstance(data, dict):
            raise SsoError(f"{what}_unreadable")
        return data

    def _client(self) -> OAuth2Client:
        return OAuth2Client(
            client_id=self.config.client_id,
            client_secret=self.config.client_secret,
            scope="openid email profile",
            redirect_uri=self.config.redirect_uri,
            code_challenge_method="S256",
            timeout=TIMEOUT,
        )

    def begin(self) -> Started:
        """Where to send the browser, with the state, nonce and PKCE verifier to keep."""
        state, nonce, verifier = (secrets.token_urlsafe(32) for _ in range(3))
        with self._client() as client:
            url, _ = client.create_authorization_url(
                str(self.metadata()["authorization_endpoint"]),
                state=state,
                code_verifier=verifier,
                nonce=nonce,
            )
        return Started(url, state, nonce, verifier)

    def finish(self, *, code: str, verifier: str, nonce: str, now: float | None = None) -> Identity:
        """Exchange ``code`` and check the ID token (module docstring); raises ``SsoError``."""
        meta = self.metadata()
        try:
            with self._client() as client:
                token = client.fetch_token(str(meta["token_endpoint"]), code=code, code_verifier=verifier)
        except Exception as exc:  # Authlib raises several types here; each means "no token"
            raise SsoError("token_exchange_failed") from exc
        id_token = token.get("id_token")
        if not isinstance(id_token, str):
            raise SsoError("no_id_token")
        return self._identity(id_token, nonce, now)

    def _identity(self, id_token: str, nonce: str, now: float | None) -> Identity:
        claims = self._decode(id_token)
        registry = jwt.JWTClaimsRegistry(
            now=int(now if now is not None else time.time()),
            leeway=60,
            iss={"essential": True, "value": self.config.issuer},
            sub={"essential": True},
            exp={"essential": True},
            nonce={"essential": True, "value": nonce},
        )
        try:
            registry.validate(claims)
        except JoseError as exc:
            raise SsoError(f"id_token_{exc.error}") from exc
        audience = claims.get("aud")
        if self.config.client_id not in (audience if isinstance(audience, list) else [audience]):
            raise SsoError("id_token_audience")
        email = claims.get("email")
        if not isinstance(email, str) or "@" not in email or claims.get("email_verified") is False:
            raise SsoError("id_token_no_verified_email")
        amr = claims.get("amr")
        methods = {str(m) for m in amr} if isinstance(amr, list) else set()
        return Identity(email.strip().lower(), bool(MFA_METHODS & methods), str(claims["sub"]))

    def _decode(self, id_token: str) -> dict[str, Any]:
        for reload in (False, True):  # a key id we do not know yet: the provider rotated keys
            try:
                return dict(
                    jwt.decode(id_token, self.keys(reload=reload), algorithms=list(ALGORITHMS)).claims
                )
            except JoseError as exc:
                if reload or exc.error not in ("invalid_key_id", "bad_signature"):
                    raise SsoError(f"id_token_{exc.error}") from exc
            except ValueError as exc:
                raise SsoError("id_token_unreadable") from exc
        raise SsoError("id_token_unverified")  # pragma: no cover - the loop returns or raises
