"""Request-size and shape limits, enforced before the body is read (docs/reliability.md).

``BodyLimitMiddleware`` is plain ASGI so it runs before Starlette parses anything: a declared
``Content-Length`` over the cap is answered 413 without reading a byte of the body; a chunked
body is counted as it streams and cut off at the cap (413 if no response has started). Starlette
only recently began bounding url-encoded forms itself, so we do not rely on it.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable
from typing import Any, TypeVar
from urllib.parse import parse_qsl

from starlette.requests import HTTPConnection
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from checkin.app.web.deps import web_of

T = TypeVar("T")

MAX_BODY_BYTES = 64 * 1024
FORM_TYPE = "application/x-www-form-urlencoded"
MAX_FORM_FIELDS = 200  # a Twilio SMS webhook has about 30; 10,000 fields is an attack


class BodyTooLarge(Exception):
    pass


async def _plain(
    send: Send, status: int, text: str, headers: list[tuple[bytes, bytes]] | None = None
) -> None:
    body = text.encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"text/plain; charset=utf-8"),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
                *(headers or []),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


class BodyLimitMiddleware:
    def __init__(self, app: ASGIApp, max_bytes: int = MAX_BODY_BYTES, on_reject: Any = None) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.on_reject = on_reject  # callable(reason) for metrics

    def _rejected(self, reason: str) -> None:
        if self.on_reject is not None:
            self.on_reject(reason)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope["headers"]:
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    self._rejected("bad_length")
                    await _plain(send, 400, "bad Content-Length")
                    return
                if declared > self.max_bytes:
                    self._rejected("too_large")
                    await _plain(send, 413, "request body too large")
                    return
        seen = 0
        started = False

        async def limited_receive() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    raise BodyTooLarge()
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except BodyTooLarge:
            self._rejected("too_large")
            if not started:
                await _plain(send, 413, "request body too large")


def is_form(content_type: str | None) -> bool:
    """Whether a Content-Type header names an url-encoded form (parameters such as charset ok)."""
    if not content_type:
        return False
    return content_type.split(";", 1)[0].strip().lower() == FORM_TYPE


def parse_form(body: bytes) -> list[tuple[str, str]]:
    """Decode an url-encoded body strictly: raises ValueError on invalid UTF-8 (``%FF``), on
    more than MAX_FORM_FIELDS fields, or on malformed pairs."""
    text = body.decode("utf-8")  # UnicodeDecodeError is a ValueError
    return parse_qsl(
        text,
        keep_blank_values=True,
        strict_parsing=bool(text),
        encoding="utf-8",
        errors="strict",
        max_num_fields=MAX_FORM_FIELDS,
    )


async def in_db_thread(request: HTTPConnection, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Run blocking database work in one of ``WebState.db_threads`` (``DB_THREADS``, at most the
    connection pool's size; see ``create_app``) and wait for it. If the waiting request is cancelled, the
    work still runs to its end in its thread (a commit is never cut off half-way).

    ``loop.run_in_executor``, not ``anyio.to_thread.run_sync`` with a ``CapacityLimiter``: the
    limiter's acquire/release and anyio's cancel scopes around every call cost about 60 us of
    CPU per hand-off on top of the thread switch itself (measured: 86 against 24 us per call
    with 32 calls in flight), and a webhook makes one hand-off per request."""
    call = functools.partial(fn, *args, **kwargs)
    return await asyncio.get_running_loop().run_in_executor(web_of(request).db_threads, call)
