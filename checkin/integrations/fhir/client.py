"""Writing to the EHR's FHIR server, authenticated by SMART Backend Services.

SMART Backend Services (the way EHRs accept backend apps): checkin signs a short-lived JWT
(``iss`` = ``sub`` = client id, ``aud`` = token URL, ``jti`` unique, RS384) with its private
key and trades it at the token endpoint (``client_credentials`` with a ``private_key_jwt``
client assertion) for an access token, cached until shortly before it expires.

Writes are idempotent by identifier: an Observation is a conditional create
(``If-None-Exist: identifier=system|value``: the server makes none if one exists), a Flag a
conditional update (``PUT Flag?identifier=…``: create or replace). So a write retried after a
timeout or a 5xx, which may or may not have landed, never makes a second resource.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import httpx
import jwt

from checkin.fhir_settings import FhirSettings

SCOPE = "system/Observation.write system/Flag.write"
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
FHIR_JSON = "application/fhir+json"


@dataclass(frozen=True)
class WriteResult:
    outcome: str  # written | retry | refused
    detail: str  # HTTP status or error class (no patient data: safe to log)


class TokenError(Exception):
    pass


class SmartAuth:
    def __init__(self, settings: FhirSettings, http: httpx.Client) -> None:
        self.settings, self.http = settings, http
        self._key = settings.key()  # read once, at start-up: a bad key fails there
        self._token: str | None = None
        self._until = 0.0

    def assertion(self) -> str:
        # The token server checks these against its own clock: wall time, not an injected one.
        now = int(time.time())
        claims = {
            "iss": self.settings.client_id,
            "sub": self.settings.client_id,
            "aud": self.settings.token_url,
            "jti": uuid.uuid4().hex,
            "iat": now,
            "exp": now + 300,  # SMART: no more than five minutes
        }
        return jwt.encode(claims, self._key, algorithm="RS384")

    def token(self) -> str:
        if self._token is not None and time.monotonic() < self._until:
            return self._token
        response = self.http.post(
            self.settings.token_url,
            data={
                "grant_type": "client_credentials",
                "scope": SCOPE,
                "client_assertion_type": ASSERTION_TYPE,
                "client_assertion": self.assertion(),
            },
        )
        if response.status_code != 200:
            raise TokenError(f"token endpoint answered {response.status_code}")
        body = response.json()
        token = body.get("access_token")
        if not isinstance(token, str) or not token:
            raise TokenError("token endpoint gave no access_token")
        self._token = token
        self._until = time.monotonic() + max(0, int(body.get("expires_in", 300)) - 60)
        return token

    def forget(self) -> None:
        self._token = None


class FhirClient:
    def __init__(self, settings: FhirSettings, *, id_system: str, http: httpx.Client) -> None:
        self.base = settings.base_url
        self.id_system = id_system
        self.http = http
        self.auth = SmartAuth(settings, http)

    def write(self, resource_type: str, identifier: str, payload: dict[str, Any]) -> WriteResult:
        """Write one resource; ``retry`` for what may succeed later (5xx, 408, 429, timeouts,
        a refused token), ``refused`` for what cannot (other 4xx)."""
        search = f"identifier={quote(self.id_system, safe=':/')}|{quote(identifier)}"
        try:
            headers = {
                "Authorization": f"Bearer {self.auth.token()}",
                "Content-Type": FHIR_JSON,
                "Accept": FHIR_JSON,
            }
            if resource_type == "Observation":
                response = self.http.post(
                    f"{self.base}/Observation", json=payload, headers={**headers, "If-None-Exist": search}
                )
            else:
                response = self.http.put(
                    f"{self.base}/{resource_type}?{search}", json=payload, headers=headers
                )
        except TokenError as e:
            return WriteResult("retry", str(e))
        except httpx.HTTPError as e:
            return WriteResult("retry", type(e).__name__)
        status = response.status_code
        if status in (200, 201):
            return WriteResult("written", str(status))
        if status == 401:
            self.auth.forget()
            return WriteResult("retry", "401")
        if status in (408, 429) or status >= 500:
            return WriteResult("retry", str(status))
        return WriteResult("refused", f"{status} {_diagnostics(response)}"[:300])


def _diagnostics(response: httpx.Response) -> str:
    """The OperationOutcome's first diagnostics (stored, not logged: it may quote the payload)."""
    try:
        issue = response.json().get("issue", [{}])[0]
        return str(issue.get("diagnostics") or issue.get("code") or "")
    except (ValueError, AttributeError, IndexError):
        return ""
