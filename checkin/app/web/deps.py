"""Typed request dependencies: what a handler may ask FastAPI for.

``create_app`` builds one ``WebState`` and keeps it on ``app.state.web``; handlers declare what
they use (``services: ServicesDep``, ``metrics: MetricsDep``, ``web: WebDep``) and helpers that
already hold the ``Request`` call ``web_of(request)``. Either way the type is checked, instead of
each module reading untyped attributes off ``app.state``.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from starlette.requests import HTTPConnection
from twilio.request_validator import RequestValidator

from checkin.app.web.metrics import Metrics
from checkin.app.web.metrics_cache import FiguresCache
from checkin.deps import Services
from checkin.inbound.process import Assess


@dataclass(frozen=True)
class WebState:
    services: Services
    metrics: Metrics
    assess: Assess  # checkin.core.triage.assess, or a scripted one in tests
    validator: RequestValidator | None  # None when Twilio is not configured: webhooks answer 503
    write_lock: threading.Lock | None  # SQLite: this process's writers queue here
    db_threads: ThreadPoolExecutor  # the only threads that touch the database (app.DB_THREADS)
    figures: FiguresCache  # /metrics: database figures, one computation per interval


def web_of(conn: HTTPConnection) -> WebState:
    web = conn.app.state.web
    assert isinstance(web, WebState), "app built without create_app"
    return web


def _web(request: Request) -> WebState:
    return web_of(request)


def _services(request: Request) -> Services:
    return web_of(request).services


def _metrics(request: Request) -> Metrics:
    return web_of(request).metrics


WebDep = Annotated[WebState, Depends(_web)]
ServicesDep = Annotated[Services, Depends(_services)]
MetricsDep = Annotated[Metrics, Depends(_metrics)]
