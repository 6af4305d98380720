"""A local OpenID provider for tests: discovery, JWKS, an authorization endpoint that signs the
test's chosen person straight in, and a token endpoint that checks the client secret, the
redirect URI and the PKCE verifier before it issues a signed ID token. No network."""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

from joserfc import jwt
from joserfc.jwk import KeySet, RSAKey

CLIENT_ID = "checkin-console"
CLIENT_SECRET = "fake-oidc-client-secret-0123456789"


@dataclass
class Person:
    email: str
    amr: list[str] = field(default_factory=lambda: ["pwd"])
    email_verified: bool = True


@dataclass
class FakeOidc:
    """``person``: who the next authorization signs in. ``tamper``: changes to the ID token's
    claims (a wrong nonce, audience, issuer...). ``wrong_key``: sign with a key not in the JWKS."""

    now: Callable[[], float]
    person: Person | None = None
    tamper: dict[str, Any] = field(default_factory=dict)
    wrong_key: bool = False
    token_requests: list[dict[str, str]] = field(default_factory=list)
    key: RSAKey = field(default_factory=lambda: RSAKey.generate_key(2048, {"kid": "k1"}, private=True))
    other: RSAKey = field(default_factory=lambda: RSAKey.generate_key(2048, {"kid": "k1"}, private=True))
    _codes: dict[str, dict[str, Any]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _json(self, status: int, body: Any) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                url = urlsplit(self.path)
                if url.path == "/.well-known/openid-configuration":
                    self._json(200, fake.discovery())
                elif url.path == "/jwks":
                    self._json(200, KeySet([fake.key]).as_dict(private=False))
                elif url.path == "/authorize":
                    q = {k: v[0] for k, v in parse_qs(url.query).items()}
                    code = fake.authorize(q)
                    self.send_response(302)
                    self.send_header(
                        "Location", f"{q['redirect_uri']}?{urlencode({'code': code, 'state': q['state']})}"
                    )
                    self.end_headers()
                else:
                    self._json(404, {"error": "not_found"})

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                form = {k: v[0] for k, v in parse_qs(self.rfile.read(length).decode()).items()}
                status, body = fake.token(form, self.headers.get("Authorization", ""))
                self._json(status, body)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.issuer = f"http://127.0.0.1:{self.server.server_address[1]}"

    def __enter__(self) -> FakeOidc:
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    def discovery(self) -> dict[str, Any]:
        return {
            "issuer": self.issuer,
            "authorization_endpoint": self.issuer + "/authorize",
            "token_endpoint": self.issuer + "/token",
            "jwks_uri": self.issuer + "/jwks",
            "response_types_supported": ["code"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "code_challenge_methods_supported": ["S256"],
        }

    def authorize(self, q: dict[str, str]) -> str:
        assert q["client_id"] == CLIENT_ID and q["response_type"] == "code" and "openid" in q["scope"]
        assert q["code_challenge_method"] == "S256"
        code = secrets.token_urlsafe(16)
        self._codes[code] = {**q, "person": self.person}
        return code

    def token(self, form: dict[str, str], auth: str) -> tuple[int, dict[str, Any]]:
        self.token_requests.append(form)
        expected = "Basic " + base64.b64encode(f"{CLIENT_ID}:{CLIENT_SECRET}".encode()).decode()
        grant = self._codes.pop(form.get("code", ""), None)  # a code works once
        if auth != expected:
            return 401, {"error": "invalid_client"}
        if grant is None or form.get("redirect_uri") != grant["redirect_uri"]:
            return 400, {"error": "invalid_grant"}
        challenge = (
            base64.urlsafe_b64encode(hashlib.sha256(form.get("code_verifier", "").encode()).digest())
            .rstrip(b"=")
            .decode()
        )
        if challenge != grant["code_challenge"]:
            return 400, {"error": "invalid_grant", "error_description": "PKCE"}
        person: Person = grant["person"]
        now = int(self.now())
        claims = {
            "iss": self.issuer,
            "sub": "sub-" + person.email,
            "aud": CLIENT_ID,
            "iat": now,
            "exp": now + 300,
            "nonce": grant["nonce"],
            "email": person.email,
            "email_verified": person.email_verified,
            "amr": person.amr,
            **self.tamper,
        }
        key = self.other if self.wrong_key else self.key
        id_token = jwt.encode({"alg": "RS256", "kid": "k1"}, claims, key)
        return 200, {"access_token": secrets.token_urlsafe(16), "token_type": "Bearer", "id_token": id_token}
