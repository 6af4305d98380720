"""Two plain ASGI middlewares every response passes through.

``RelativeRedirects``: a ``Location`` header that names the request's own host (as the client
sent it in ``Host``, or the server's address without one) is cut to its path and query.
Starlette builds absolute redirects (trailing-slash redirects among them) from the request's
``Host`` header, which the client chooses: ``/a/<token>/`` answered 307 to
``http://<any host>/a/<token>``, handing a nurse's signed link to that host. A redirect to this
site is right as a relative one (RFC 9110 allows it). A redirect our code sends elsewhere on
purpose (single sign-on to the hospital's identity provider) names a host from settings, not
from the request, and is left whole.

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


def relative(location: str, own: frozenset[str]) -> str:
    """``location`` without its scheme and host (``/`` when it had no path) if that host is one
    of ``own`` (lower-case ``host`` or ``host:port``); otherwise unchanged."""
    parts = urlsplit(location)
    if not parts.netloc or parts.netloc.lower() not in own:
        return location
    return (parts.path or "/") + (f"?{parts.query}" if parts.query else "")


def own_hosts(scope: Scope) -> frozenset[str]:
    """The names this request reached us by: its ``Host`` header and the server's address."""
    names = {v.decode("latin-1").lower() for k, v in scope.get("headers", []) if k == b"host"}
    server = scope.get("server")
    if server:
        host, port = server[0], server[1]
        names.update({str(host).lower(), f"{host}:{port}".lower()})
    return frozenset(names)


def on_response_start(send: Send, change: Callable[[Message], None]) -> Send:
    """``send``, with ``change`` applied to the ``http.response.start`` message first."""

    async def wrapped(message: Message) -> None:
        if message["type"] == "http.response.start":
            change(message)
        await send(message)

    return wrapped


class HttpMiddleware:
    """A plain ASGI middleware that acts on HTTP requests (``handle``); anything else (lifespan,
    websockets) passes through untouched."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        await self.handle(scope, receive, send)

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        raise NotImplementedError


class RelativeRedirects(HttpMiddleware):
    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        def make_relative(message: Message) -> None:
            if 300 <= message["status"] < 400:
                own = own_hosts(scope)  # only a redirect needs them: not computed per request
                message["headers"] = [
                    (
                        k,
                        relative(v.decode("latin-1"), own).encode("latin-1")
                        if k.lower() == b"location"
                        else v,
                    )
                    for k, v in message.get("headers", [])
                ]

        await self.app(scope, receive, on_response_start(send, make_relative))


class AccessLog(HttpMiddleware):
    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
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
