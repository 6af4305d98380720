"""Security headers on every response of the app, as plain ASGI (it runs for every route).

Pages that set their own headers keep them (``setdefault``); everything else gets: a CSP that
allows our own script and style files only (no inline script, nothing from elsewhere, never
framed), ``no-store`` (patient data must not stay in a shared workstation's cache), no
Referer (URLs carry opaque references and one-time tokens), ``nosniff`` and ``DENY`` framing
for old browsers.
"""

from __future__ import annotations

from starlette.types import Message, Receive, Scope, Send

from checkin.app.web.hardening import HttpMiddleware, on_response_start

CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
DEFAULTS: tuple[tuple[bytes, bytes], ...] = (
    (b"content-security-policy", CSP.encode()),
    (b"cache-control", b"no-store"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
)


class SecurityHeadersMiddleware(HttpMiddleware):
    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        def with_headers(message: Message) -> None:
            headers = list(message.get("headers", []))
            present = {name.lower() for name, _ in headers}
            headers.extend((k, v) for k, v in DEFAULTS if k not in present)
            message["headers"] = headers

        await self.app(scope, receive, on_response_start(send, with_headers))
