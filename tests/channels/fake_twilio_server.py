"""A recording fake of Twilio's Messages API on 127.0.0.1, for driving the real ``twilio``
client (through ``TwilioConfig.api_base_url``) into every outcome the channel must map.

- ``POST /2010-04-01/Accounts/{sid}/Messages.json``: answers the next scripted ``Answer``
  (default: 201 with a fresh ``SM…`` SID) and records the request (form, headers, auth).
- ``GET  …/Messages.json``: lists the messages it "created" (To / From / DateSent> filters), so
  reconciliation can be tested against the same fake.

An ``Answer`` says whether Twilio "created" the message (``created``) independently of what the
client sees, so the ambiguous cases can be built both ways: a 500 or a read timeout after the
message was queued, or before.
"""

from __future__ import annotations

import base64
import json
import re
import secrets
import threading
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self
from urllib.parse import parse_qs, urlsplit

_MESSAGES = re.compile(r"^/2010-04-01/Accounts/(?P<account>[^/]+)/Messages\.json$")


@dataclass(frozen=True)
class Answer:
    status: int = 201
    body: dict[str, Any] | None = None  # None: the created message resource
    headers: tuple[tuple[str, str], ...] = ()
    created: bool = True  # does Twilio hold the message afterwards?
    delay: float = 0.0  # seconds to wait before answering (read-timeout tests)
    hang_up: bool = False  # close the connection instead of answering

    @staticmethod
    def ok() -> Answer:
        return Answer()

    @staticmethod
    def error(
        status: int,
        code: int,
        message: str = "error",
        *,
        created: bool = False,
        headers: tuple[tuple[str, str], ...] = (),
    ) -> Answer:
        body = {
            "code": code,
            "message": message,
            "more_info": f"https://www.twilio.com/docs/errors/{code}",
            "status": status,
        }
        return Answer(status=status, body=body, headers=headers, created=created)

    @staticmethod
    def rate_limited(retry_after: str = "2") -> Answer:
        return Answer.error(429, 20429, "Too Many Requests", headers=(("Retry-After", retry_after),))

    @staticmethod
    def server_error(*, created: bool = False) -> Answer:
        return Answer.error(500, 20500, "Internal Server Error", created=created)

    @staticmethod
    def slow(delay: float, *, created: bool = True) -> Answer:
        return Answer(delay=delay, created=created)

    @staticmethod
    def hang_up_after_reading(*, created: bool = True) -> Answer:
        return Answer(hang_up=True, created=created)


@dataclass
class RecordedRequest:
    method: str
    path: str
    query: dict[str, list[str]]
    form: dict[str, str]
    headers: dict[str, str] = field(repr=False)

    @property
    def basic_auth(self) -> tuple[str, str] | None:
        value = self.headers.get("authorization", "")
        if not value.lower().startswith("basic "):
            return None
        user, _, password = base64.b64decode(value[6:]).decode().partition(":")
        return user, password


class FakeTwilio:
    """Start with ``with FakeTwilio() as fake:``; ``fake.url`` is the ``api_base_url``.

    ``keep_alive``: answer HTTP/1.1 and keep connections open between requests, as Twilio
    does (benchmarks); by default every answer closes its connection, which keeps the
    fault tests' hang-ups and late answers simple.
    """

    def __init__(self, *, keep_alive: bool = False) -> None:
        self.requests: list[RecordedRequest] = []
        self.messages: list[dict[str, Any]] = []
        self._script: deque[Answer] = deque()
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._server = _Server(("127.0.0.1", 0), _KeepAliveHandler if keep_alive else _Handler)
        self._server.fake = self
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def script(self, *answers: Answer) -> None:
        with self._lock:
            self._script.extend(answers)

    def creates(self) -> list[RecordedRequest]:
        """The create (POST) requests received, in order."""
        with self._lock:
            return [r for r in self.requests if r.method == "POST"]

    def start(self) -> FakeTwilio:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()  # releases handlers still "slow"
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- called from handler threads --------------------------------------------------------

    def _next_answer(self) -> Answer:
        with self._lock:
            return self._script.popleft() if self._script else Answer()

    def _record(self, request: RecordedRequest) -> None:
        with self._lock:
            self.requests.append(request)

    def _create(self, account: str, form: dict[str, str]) -> dict[str, Any]:
        now = datetime.now(UTC)
        sid = "SM" + secrets.token_hex(16)
        message = {
            "sid": sid,
            "account_sid": account,
            "to": form.get("To"),
            "from": form.get("From"),
            "messaging_service_sid": form.get("MessagingServiceSid"),
            "body": form.get("Body"),
            "status": "queued",
            "direction": "outbound-api",
            "num_segments": "1",
            "num_media": "0",
            "api_version": "2010-04-01",
            "date_created": format_datetime(now),
            "date_updated": format_datetime(now),
            # The fake "sends" at once, so DateSent filters find it.
            "date_sent": format_datetime(now),
            "price": None,
            "price_unit": "USD",
            "error_code": None,
            "error_message": None,
            "uri": f"/2010-04-01/Accounts/{account}/Messages/{sid}.json",
            "subresource_uris": {},
            "_created": now,
        }
        with self._lock:
            self.messages.append(message)
        return message

    def _list(self, query: dict[str, list[str]]) -> list[dict[str, Any]]:
        to, from_ = query.get("To", [None])[0], query.get("From", [None])[0]
        after = query.get("DateSent>", [None])[0]
        since = datetime.fromisoformat(after) if after else None
        with self._lock:
            found = [
                m
                for m in self.messages
                if (to is None or m["to"] == to)
                and (from_ is None or m["from"] == from_)
                and (since is None or m["_created"] >= since)
            ]
        return [_public(m) for m in reversed(found)]


def _public(message: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in message.items() if not k.startswith("_")}


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    fake: FakeTwilio

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A "slow" answer written after the client gave up hits a closed socket: expected.
        pass


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    # The answer goes out as two writes (headers, then body): with Nagle's algorithm on, the
    # body waits for the client's delayed ACK of the headers, adding ~40 ms to every
    # keep-alive request, so "answers in 150 ms" would really be 190.
    disable_nagle_algorithm = True

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_POST(self) -> None:
        fake = self.server.fake
        url = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length).decode()
        form = {k: v[-1] for k, v in parse_qs(raw, keep_blank_values=True).items()}
        fake._record(
            RecordedRequest(
                "POST", url.path, parse_qs(url.query), form, {k.lower(): v for k, v in self.headers.items()}
            )
        )
        match = _MESSAGES.match(url.path)
        if not match:
            self._json(404, {"code": 20404, "message": "not found", "status": 404})
            return
        answer = fake._next_answer()
        message = fake._create(match["account"], form) if answer.created else None
        if answer.delay:
            fake._stopping.wait(answer.delay)
        if answer.hang_up:
            self.close_connection = True
            return
        body = answer.body if answer.body is not None else _public(message or {})
        self._json(answer.status, body, answer.headers)

    def do_GET(self) -> None:
        fake = self.server.fake
        url = urlsplit(self.path)
        query = parse_qs(url.query)
        fake._record(
            RecordedRequest("GET", url.path, query, {}, {k.lower(): v for k, v in self.headers.items()})
        )
        if not _MESSAGES.match(url.path):
            self._json(404, {"code": 20404, "message": "not found", "status": 404})
            return
        messages = fake._list(query)
        self._json(
            200,
            {
                "messages": messages,
                "end": max(len(messages) - 1, 0),
                "first_page_uri": url.path,
                "next_page_uri": None,
                "page": 0,
                "page_size": 50,
                "previous_page_uri": None,
                "start": 0,
                "uri": self.path,
            },
        )

    def _json(self, status: int, body: dict[str, Any], headers: tuple[tuple[str, str], ...] = ()) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for name, value in headers:
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)


class _KeepAliveHandler(_Handler):
    protocol_version = "HTTP/1.1"


def closed_port_url() -> str:
    """An http URL on 127.0.0.1 where nothing listens (connection refused)."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}"
