"""Liveness and readiness. Liveness touches nothing (a database hiccup must not get every
instance restarted); readiness runs ``SELECT 1`` and answers 503 when the database is down, so
a load balancer stops sending webhooks that would fail."""

from __future__ import annotations

import logging

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, PlainTextResponse
from sqlalchemy import text

from checkin.app.web.deps import MetricsDep, ServicesDep
from checkin.app.web.limits import in_db_thread

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


@router.get("/metrics")
async def metrics_page(request: Request, services: ServicesDep, metrics: MetricsDep) -> PlainTextResponse:
    """Prometheus text: database-derived figures (every process's work) plus this process's
    counters (webhook signature failures, rejections). Keep it off the public internet
    (deploy/reverse-proxy.md)."""
    from checkin.store.status import collect, prometheus_text

    def figures() -> str:
        with services.sessions() as session:
            f = collect(session, services.clock.now())
        return prometheus_text(f, metrics.snapshot())

    try:
        body = await in_db_thread(request, figures)
    except Exception as exc:  # noqa: BLE001 - a scrape must not take the process down
        log.warning("metrics failed", extra={"error": type(exc).__name__})
        return PlainTextResponse("# database unavailable\n", status_code=503)
    return PlainTextResponse(body, media_type="text/plain; version=0.0.4")
