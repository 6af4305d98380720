"""Liveness and readiness. Liveness touches nothing (a database hiccup must not get every
instance restarted); readiness runs ``SELECT 1`` and answers 503 when the database is down, so
a load balancer stops sending webhooks that would fail."""

from __future__ import annotations

import hmac
import logging

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, PlainTextResponse
from sqlalchemy import text

from checkin.app.web.deps import MetricsDep, ServicesDep, WebDep
from checkin.app.web.limits import in_db_thread
from checkin.config import Settings
from checkin.store.status import Figures

log = logging.getLogger(__name__)
router = APIRouter()


@router.get("/healthz")
async def healthz() -> JSONResponse:
    return JSONResponse({"status": "ok"})


@router.get("/readyz")
async def readyz(request: Request, services: ServicesDep, metrics: MetricsDep) -> JSONResponse:

    def ping() -> None:
        with services.engine.connect() as conn:
            conn.execute(text("SELECT 1"))

    try:
        await in_db_thread(request, ping)
    except Exception as exc:  # noqa: BLE001 - any failure means "not ready"
        log.warning("readiness check failed", extra={"error": type(exc).__name__})
        metrics.inc("readiness_failures_total")
        return JSONResponse({"status": "database unavailable"}, status_code=503)
    return JSONResponse({"status": "ready"})


def metrics_allowed(settings: Settings, authorization: str | None) -> bool:
    """A matching ``Authorization: Bearer`` when CHECKIN_METRICS_TOKEN is set; without it, only
    in development (production keeps /metrics closed rather than public)."""
    token = settings.metrics_token
    if token is None:
        return settings.env != "production"
    scheme, _, given = (authorization or "").partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), token.encode())


@router.get("/metrics")
async def metrics_page(request: Request, web: WebDep) -> PlainTextResponse:
    """Prometheus text: database-derived figures (every process's work, cached for
    ``METRICS_INTERVAL``) plus this process's counters (webhook signature failures,
    rejections). Behind CHECKIN_METRICS_TOKEN (deploy/reverse-proxy.md also keeps it off the
    internet)."""
    from checkin.store.status import collect, prometheus_text

    services, metrics = web.services, web.metrics
    if not metrics_allowed(services.settings, request.headers.get("authorization")):
        metrics.inc("metrics_refused_total")
        return PlainTextResponse(
            "unauthorized\n", status_code=401, headers={"WWW-Authenticate": 'Bearer realm="metrics"'}
        )

    def figures() -> Figures:
        with services.sessions() as session:
            return collect(session, services.clock.now())

    try:
        f = await in_db_thread(request, web.figures.get, figures)
    except Exception as exc:  # noqa: BLE001 - a scrape must not take the process down
        log.warning("metrics failed", extra={"error": type(exc).__name__})
        return PlainTextResponse("# database unavailable\n", status_code=503)
    return PlainTextResponse(prometheus_text(f, metrics.snapshot()), media_type="text/plain; version=0.0.4")
