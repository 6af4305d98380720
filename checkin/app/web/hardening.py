"""Two plain ASGI middlewares every response passes through.

``RelativeRedirects``: a ``Location`` header that names a scheme and host is cut to its path and
query. Starlette builds absolute redirects (trailing-slash redirects among them) from the
request's ``Host`` header, which the client chooses: ``/a/<token>/`` answered 307 to
``http://<any host>/a/<token>``, handing a nurse's signed link to that host. Every redirect of
ours stays on this site, so a relative one is always right (RFC 9110 allows it).

``AccessLog``: one line per request on the ``checkin.access`` logger (method, the route's
template such as ``/c/{token}`` instead of the path, status, milliseconds). Paths carry check-in
tokens and could carry phone numbers, so the path itself is never written; unmatched paths are
logged as ``-``. uvicorn's own access log stays off (``checkin.app.web.serve``).
"""

from __future__ import annotations

import logging
import time
from urllib.parse import urlsplit

from starlette.types import ASGIApp, Message, Receive, Scope, Send

access = logging.getLogger("checkin.access")


def relative(location: str) -> str:
    """``location`` without its scheme and host (``/`` when it had no path)."""
    parts = urlsplit(location)
    if not parts.scheme and not parts.netloc:
        return location
    return (parts.path or "/") + (f"?{parts.query}" if parts.query else "")


class RelativeRedirects:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_relative(message: Message) -> None:
            if message["type"] == "http.response.start" and 300 <= message["status"] < 400:
                message["headers"] = [
                    (k, relative(v.decode("latin-1")).encode("latin-1") if k.lower() == b"location" else v)
                    for k, v in message.get("headers", [])
                ]
            await send(message)

        await self.app(scope, receive, send_relative)


class AccessLog:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # if the app raises before answering

        async def send_noting(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_noting)
        finally:
            route = scope.get("route")
            access.info(
                "request",
                extra={
                    "event": "http.request",
                    "method": scope.get("method"),
                    "route": getattr(route, "path", None) or "-",
                    "status": status,
                    "ms": round((time.perf_counter() - started) * 1000, 1),
                },
            )
