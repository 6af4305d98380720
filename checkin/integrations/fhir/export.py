"""Send queued resources to the EHR: claim, write, record; retried with backoff, never twice.

A pass claims due rows (``FOR UPDATE SKIP LOCKED`` on PostgreSQL, so several exporters share
the queue) by pushing ``retry_at`` one lease ahead, commits, writes each outside any
transaction, and records the outcome. An exporter that dies mid-write leaves its rows to be
claimed again when the lease ends; the write is a conditional create/update, so the second
write finds the first one's resource instead of making another.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from checkin.clock import Clock
from checkin.integrations.fhir.client import FhirClient
from checkin.integrations.fhir.queue import Systems, enqueue
from checkin.store.fhir_exports import DEAD, PENDING, SENT, FhirExport

log = logging.getLogger("checkin.integrations.fhir")
ops = logging.getLogger("checkin.ops")
LEASE = timedelta(minutes=2)
MAX_TRIES = 12  # about a day of backoff: then an operator looks (checkin.ops)


@dataclass
class PassReport:
    queued: int = 0
    written: int = 0
    retried: int = 0
    refused: int = 0
    details: list[str] = field(default_factory=list)


def backoff(tries: int) -> timedelta:
    return min(timedelta(seconds=30 * 2 ** max(0, tries - 1)), timedelta(hours=4))


def run_pass(
    sessions: Callable[[], Session], client: FhirClient, *, systems: Systems, clock: Clock, limit: int = 100
) -> PassReport:
    """Queue what is new, then write what is due; one pass."""
    report = PassReport()
    now = clock.now()
    with sessions() as session, session.begin():
        report.queued = enqueue(session, systems=systems, now=now)
    for export_id in _claim(sessions, now, limit):
        _write(sessions, client, export_id, clock, report)
    return report


def _claim(sessions: Callable[[], Session], now: datetime, limit: int) -> list[int]:
    with sessions() as session, session.begin():
        rows = list(
            session.scalars(
                select(FhirExport)
                .where(FhirExport.state == PENDING, FhirExport.retry_at <= now)
                .order_by(FhirExport.retry_at, FhirExport.id)
                .limit(limit)
                .with_for_update(skip_locked=True)
            )
        )
        for row in rows:
            row.retry_at = now + LEASE
        return [r.id for r in rows]


def _write(
    sessions: Callable[[], Session], client: FhirClient, export_id: int, clock: Clock, report: PassReport
) -> None:
    with sessions() as session:
        row = session.get(FhirExport, export_id)
        if row is None:
            return
        resource_type, identifier, payload = row.resource_type, row.identifier, row.payload
    result = client.write(resource_type, identifier, payload)
    now = clock.now()
    with sessions() as session, session.begin():
        row = session.get(FhirExport, export_id, with_for_update=True)
        if row is None or row.state != PENDING:
            return
        row.tries += 1
        row.updated_at = now
        if result.outcome == "written":
            row.state, row.written_at, row.last_error = SENT, now, None
            report.written += 1
        elif result.outcome == "retry" and row.tries < MAX_TRIES:
            row.retry_at, row.last_error = now + backoff(row.tries), result.detail
            report.retried += 1
        else:
            row.state, row.last_error = DEAD, result.detail
            report.refused += 1
            ops.error(
                "fhir write given up",
                extra={
                    "event": "fhir.dead",
                    "fhir_export_id": export_id,
                    "type": resource_type,
                    "tries": row.tries,
                },
            )
    report.details.append(f"{identifier}: {result.outcome} {result.detail}")
    log.info(
        "fhir write",
        extra={"event": f"fhir.{result.outcome}", "fhir_export_id": export_id, "type": resource_type},
    )
