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
from collections.abc import Callable
from urllib.parse import urlsplit

from starlette.types import ASGIApp, Message, Receive, Scope, Send

access = logging.getLogger("checkin.access")


def relative(location: str) -> str:
    """``location`` without its scheme and host (``/`` when it had no path)."""
    parts = urlsplit(location)
    if not parts.scheme and not parts.netloc:
        return location
    return (parts.path or "/") + (f"?{parts.query}" if parts.query else "")


def on_response_start(send: Send, change: Callable[[Message], None]) -> Send:
    """``send``, with ``change`` applied to the ``http.response.start`` message first."""

    async def wrapped(message: Message) -> None:
        if message["type"] == "http.response.start":
            change(message)
        await send(message)

    return wrapped


class RelativeRedirects:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        def make_relative(message: Message) -> None:
            if 300 <= message["status"] < 400:
                message["headers"] = [
                    (k, relative(v.decode("latin-1")).encode("latin-1") if k.lower() == b"location" else v)
                    for k, v in message.get("headers", [])
                ]

        await self.app(scope, receive, on_response_start(send, make_relative))


class AccessLog:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = [500]  # if the app raises before answering

        def note(message: Message) -> None:
            status[0] = int(message["status"])

        try:
            await self.app(scope, receive, on_response_start(send, note))
        finally:
            route = scope.get("route")
            access.info(
                "request",
                extra={
                    "event": "http.request",
                    "method": scope.get("method"),
                    "route": getattr(route, "path", None) or "-",
                    "status": status[0],
                    "ms": round((time.perf_counter() - started) * 1000, 1),
                },
            )
