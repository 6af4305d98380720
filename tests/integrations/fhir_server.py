"""A FHIR server for tests: a SMART token endpoint checking the client assertion, Observation
conditional create and Flag conditional update by identifier, and faults on demand. It
records every request and validates every resource written with ``fhir.resources``."""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from checkin.integrations.fhir.validate import validate

TOKEN = "test-access-token"


def key_pair() -> tuple[str, Any]:
    """(private key PEM, public key) for the client assertion."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    return pem, key.public_key()


@dataclass
class FhirServer:
    public_key: Any
    client_id: str = "checkin-test"
    # Each write takes the next fault, if any: "500" answers 500 without storing,
    # "500-after-store" stores then answers 500 (the write landed, the client cannot know),
    # "slow" sleeps past the client's timeout after storing.
    faults: list[str] = field(default_factory=list)
    resources: dict[str, dict[str, Any]] = field(default_factory=dict)  # identifier -> resource
    writes: list[tuple[str, str]] = field(default_factory=list)  # (method, path)
    tokens_issued: int = 0
    invalid: list[str] = field(default_factory=list)

    def start(self) -> str:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def _reply(self, status: int, body: dict[str, Any] | None = None) -> None:
                data = json.dumps(body or {}).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/fhir+json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _body(self) -> bytes:
                return self.rfile.read(int(self.headers.get("Content-Length", "0")))

            def do_POST(self) -> None:
                if self.path == "/token":
                    form = parse_qs(self._body().decode())
                    try:
                        claims = jwt.decode(
                            form["client_assertion"][0],
                            server.public_key,
                            algorithms=["RS384"],
                            audience=f"{server.base}/token",
                        )
                    except (jwt.InvalidTokenError, KeyError):
                        return self._reply(401, {"error": "invalid_client"})
                    ok = claims["iss"] == claims["sub"] == server.client_id and form["grant_type"] == [
                        "client_credentials"
                    ]
                    if not ok:
                        return self._reply(401, {"error": "invalid_client"})
                    server.tokens_issued += 1
                    return self._reply(
                        200, {"access_token": TOKEN, "token_type": "bearer", "expires_in": 300}
                    )
                self._write("POST", self.headers.get("If-None-Exist", ""))
                return None

            def do_PUT(self) -> None:
                self._write("PUT", urlsplit(self.path).query)

            def _write(self, method: str, search: str) -> None:
                body = self._body()
                if self.headers.get("Authorization") != f"Bearer {TOKEN}":
                    return self._reply(401)
                server.writes.append((method, urlsplit(self.path).path))
                fault = server.faults.pop(0) if server.faults else None
                if fault in ("500", "422"):
                    return self._reply(
                        int(fault), {"resourceType": "OperationOutcome", "issue": [{"code": "invalid"}]}
                    )
                resource = json.loads(body)
                try:
                    validate(resource)
                except ValueError as e:
                    server.invalid.append(str(e))
                    return self._reply(
                        422, {"resourceType": "OperationOutcome", "issue": [{"diagnostics": str(e)}]}
                    )
                identifier = unquote(search.split("|", 1)[1]) if "|" in search else ""
                existed = identifier in server.resources
                if method == "PUT" or not existed:
                    server.resources[identifier] = resource
                if fault == "500-after-store":
                    return self._reply(500)
                if fault == "slow":
                    time.sleep(1.5)
                self._reply(200 if existed else 201, resource)
                return None

        self._http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base = f"http://127.0.0.1:{self._http.server_address[1]}"
        threading.Thread(target=self._http.serve_forever, daemon=True).start()
        return self.base

    def stop(self) -> None:
        self._http.shutdown()
        self._http.server_close()
