"""The HTTP app factory.

Why FastAPI (on Starlette, served by uvicorn): the nurse pages and the enrollment API that come
next want typed request/response models and an OpenAPI description for the hospital's
integration team, which FastAPI gives for free; Starlette underneath is small, well-tested and
lets a plain ASGI middleware enforce the body cap before anything is parsed; uvicorn is one
dependency with no separate process manager. The rest of the stack (SQLAlchemy sessions, the
Twilio client, triage) is synchronous, so handlers hand their work to a thread pool the size of
the connection pool instead of pretending to be async. Flask + gunicorn would have done the
webhook equally well; its built-in ``MAX_CONTENT_LENGTH`` was the one thing we had to add here.

No globals: everything a request needs is one typed ``WebState`` (``checkin.app.web.deps``) on
``app.state.web``, built once here from the ``Services`` the composition root made; handlers
receive its parts as FastAPI dependencies (``ServicesDep``, ``MetricsDep``, ``WebDep``).
"""

from __future__ import annotations

import gc
import logging
import os
import signal
import socket
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from fastapi import FastAPI
from twilio.request_validator import RequestValidator

from checkin.app.web import checkin_form, console, fhir_api, health, nurse, twilio
from checkin.app.web.deps import WebState
from checkin.app.web.hardening import AccessLog, RelativeRedirects
from checkin.app.web.limits import MAX_BODY_BYTES, BodyLimitMiddleware
from checkin.app.web.metrics import Metrics
from checkin.app.web.metrics_cache import FiguresCache
from checkin.deps import Services
from checkin.inbound.process import Assess

log = logging.getLogger(__name__)

# Threads per web process that run database work. A process runs one thread's Python at a time
# (the GIL): two keep one thread's statements waiting on PostgreSQL while the other computes,
# and more only queue for the GIL and hand it back and forth. Measured, webhook_latency --rate
# 400 --workers 2 on two cores: p99 17-34 ms with 2 threads, 130 with 1, 122-123 with 10 (the
# pool's size, the bound before).
DB_THREADS = 2


def create_app(
    services: Services,
    *,
    metrics: Metrics | None = None,
    assess: Assess | None = None,
    max_body_bytes: int = MAX_BODY_BYTES,
) -> FastAPI:
    """Build the app for ``services``. ``assess`` replaces ``checkin.core.triage.assess`` (tests that
    script an assessment); ``metrics`` lets a caller share a registry."""
    app = FastAPI(
        title="checkin",
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
        # FastAPI's own OpenTelemetry spans, metrics and exception logs (messages and stack
        # traces, which can hold a patient's words) stay off, whatever a process's OTEL_*
        # environment says: our logs go through the redaction filter, these would not. Off, its
        # per-request check of the global providers (2.8 us, reading os.environ) is skipped too.
        telemetry={"tracing": False, "metrics": False, "logs": False, "operation_spans": False},
    )
    metrics = metrics or Metrics()
    if assess is None:
        from checkin.inbound.process import default_assess

        assess = default_assess()  # fail at start-up, not on the first patient's reply
    token = services.settings.twilio.auth_token if services.settings.twilio else None
    app.state.web = WebState(
        services=services,
        metrics=metrics,
        assess=assess,
        # None when Twilio is not configured: the webhooks then refuse with 503 (never unverified).
        validator=RequestValidator(token) if token else None,
        # SQLite has one writer: queue this process's writers on a Python lock (see handle_sms).
        write_lock=threading.Lock() if services.is_sqlite else None,
        # Database work runs in DB_THREADS threads (fewer if the pool is smaller: past the
        # pool's size SQLAlchemy opens and closes "overflow" connections per request, and on
        # PostgreSQL each one is a new backend process). Requests beyond that wait in the
        # executor's queue, which costs nothing. A plain executor, not anyio.to_thread with a
        # CapacityLimiter: the same bound for a third of the hand-off's CPU (see in_db_thread).
        db_threads=ThreadPoolExecutor(min(DB_THREADS, _pool_size(services)), thread_name_prefix="checkin-db"),
        figures=FiguresCache(),
    )
    app.include_router(health.router)
    app.include_router(twilio.router)
    app.include_router(checkin_form.router)
    app.include_router(nurse.router)
    app.include_router(fhir_api.router)
    console.install(app)
    app.add_middleware(RelativeRedirects)
    app.add_middleware(
        BodyLimitMiddleware,
        max_bytes=max_body_bytes,
        on_reject=lambda reason: metrics.inc("http_rejected_total", reason=reason),
    )
    app.add_middleware(AccessLog)  # outermost: sees every request, refused ones included
    return app


def _pool_size(services: Services) -> int:
    size = getattr(services.engine.pool, "size", None)
    return max(1, int(size())) if callable(size) else 4


def serve(
    services: Services,
    host: str = "127.0.0.1",
    port: int = 8000,
    *,
    sockets: list[socket.socket] | None = None,
    supervised: bool = False,
    **uvicorn_kw: Any,
) -> None:
    """Run the app under uvicorn until interrupted.

    ``sockets``: listen on these instead of binding ``host:port`` (``checkin web --workers``).
    ``supervised``: one of several processes under ``checkin.app.web.workers``: SIGINT is left
    to the parent (which passes a SIGTERM on, so Ctrl-C in a terminal does not arrive twice and
    turn a graceful stop into a forced one), and the process stops if its parent is gone.

    Proxy headers are off: signatures are checked against CHECKIN_PUBLIC_URL, so nothing needs
    ``X-Forwarded-*``, and trusting them from any peer would let it spoof scheme and client
    address. uvicorn's access log is off because check-in form URLs carry the patient's token;
    ``AccessLog`` writes one line per request with the route template instead of the path.
    """
    import uvicorn

    from checkin.logs import configure

    configure(services.settings.log_level)
    for note in services.notes:  # which channels, where alerts go: as the worker says them
        log.info(note, extra={"event": "web.note"})
    app = create_app(services)
    # Everything built so far lives as long as the process. Freezing it keeps the collector from
    # re-scanning it on every full collection: measured, those pauses were 15-30 ms at 200
    # requests/s, most of the p99 budget.
    gc.collect()
    gc.freeze()
    options: dict[str, Any] = {
        "proxy_headers": False,
        "access_log": False,
        "log_config": None,
        "server_header": False,
        "timeout_graceful_shutdown": 10,
    }
    options.update(uvicorn_kw)

    parent = os.getppid()

    class Server(uvicorn.Server):
        def handle_exit(self, sig: int, frame: Any) -> None:
            if supervised and sig == signal.SIGINT:
                return
            # uvicorn shuts down gracefully and then re-raises the signal, which would end the
            # process before `checkin serve` has stopped its worker (sends in flight, leases,
            # the worker's row). Return normally instead; the exit code is then 0.
            super().handle_exit(sig, frame)
            self._captured_signals.clear()

        async def on_tick(self, counter: int) -> bool:
            if supervised and counter % 10 == 0 and os.getppid() != parent:
                self.should_exit = True  # the supervisor was killed: do not linger unsupervised
            return await super().on_tick(counter)

    Server(uvicorn.Config(app, host=host, port=port, **options)).run(sockets=sockets)
