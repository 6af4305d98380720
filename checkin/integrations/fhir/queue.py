"""Find what the EHR should get and queue it: readings as Observations, alerts as Flags.

``enqueue`` is a sweep, not a hook: it reads replies and alerts where their owners wrote them
(``inbound_messages.assessment``, ``alerts``) and queues each resource once, keyed by its
identifier, so it can run in any process, any number of times, alongside the others.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from checkin.core.fhir.resources import PAIN, TEMPERATURE, flag, observation
from checkin.integrations.fhir.validate import validate
from checkin.states import AlertStatus
from checkin.store.fhir_exports import PENDING, FhirExport
from checkin.store.models import Alert, InboundMessage, Patient

BATCH = 500


@dataclass(frozen=True)
class Systems:
    """Identifier systems: checkin's own (the conditional-create key) and the hospital's MRNs."""

    ids: str
    mrn: str


def enqueue(session: Session, *, systems: Systems, now: datetime) -> int:
    """Queue new readings and changed alerts in the caller's transaction; how many were queued."""
    return _readings(session, systems, now) + _alerts(session, systems, now)


def _readings(session: Session, systems: Systems, now: datetime) -> int:
    done = session.scalar(select(func.max(FhirExport.source_id)).where(FhirExport.source == "inbound")) or 0
    rows = session.execute(
        select(InboundMessage.id, InboundMessage.assessment, InboundMessage.received_at, Patient.mrn)
        .join(Patient, Patient.id == InboundMessage.patient_id)
        .where(InboundMessage.id > done, InboundMessage.assessment.is_not(None))
        .order_by(InboundMessage.id)
        .limit(BATCH)
    ).all()
    queued = 0
    for inbound_id, assessment, received_at, mrn in rows:
        for identifier, resource in reply_observations(inbound_id, assessment, received_at, mrn, systems):
            queued += _add(session, identifier, "Observation", "inbound", inbound_id, resource, now, None)
    return queued


def reply_observations(
    inbound_id: int, assessment: dict[str, Any] | None, received_at: datetime, mrn: str, systems: Systems
) -> Iterator[tuple[str, dict[str, Any]]]:
    """(identifier, Observation) for each pain score and temperature one reply's triage read;
    the export and the read API share the identifiers."""
    for kind, key in ((PAIN, "pain_score"), (TEMPERATURE, "temperature_f")):
        value = (assessment or {}).get(key)
        if not isinstance(value, int | float) or isinstance(value, bool):
            continue
        identifier = f"obs-{inbound_id}-{kind}"
        yield (
            identifier,
            observation(
                kind,
                float(value),
                identifier=identifier,
                id_system=systems.ids,
                mrn=mrn,
                mrn_system=systems.mrn,
                effective=received_at,
                message_identifier=f"message-{inbound_id}",
            ),
        )


def _alerts(session: Session, systems: Systems, now: datetime) -> int:
    changed = session.execute(
        select(Alert, Patient.mrn, FhirExport)
        .join(Patient, Patient.id == Alert.patient_id)
        .outerjoin(FhirExport, (FhirExport.source == "alert") & (FhirExport.source_id == Alert.id))
        .where(or_(FhirExport.id.is_(None), FhirExport.source_updated_at < Alert.updated_at))
        .order_by(Alert.id)
        .limit(BATCH)
    ).all()
    queued = 0
    for alert, mrn, joined in changed:
        export: FhirExport | None = joined  # None: never queued (outer join)
        identifier = f"flag-{alert.id}"
        resource = flag(
            identifier=identifier,
            id_system=systems.ids,
            mrn=mrn,
            mrn_system=systems.mrn,
            severity=alert.severity,
            flags=list(alert.flags or []),
            active=alert.status != AlertStatus.RESOLVED,
            opened=alert.opened_at,
            closed=alert.resolved_at,
        )
        if export is None:
            queued += _add(session, identifier, "Flag", "alert", alert.id, resource, now, alert.updated_at)
            continue
        validate(resource)
        export.payload, export.state, export.tries, export.last_error = resource, PENDING, 0, None
        export.retry_at, export.updated_at, export.source_updated_at = now, now, alert.updated_at
        queued += 1
    return queued


def _add(
    session: Session,
    identifier: str,
    resource_type: str,
    source: str,
    source_id: int,
    resource: dict[str, Any],
    now: datetime,
    source_updated_at: datetime | None,
) -> int:
    """Insert one row; 0 when another process queued the same identifier first."""
    validate(resource)  # a resource that would be refused is a bug here, not the EHR's problem
    try:
        with session.begin_nested():
            session.add(
                FhirExport(
                    identifier=identifier,
                    resource_type=resource_type,
                    source=source,
                    source_id=source_id,
                    payload=resource,
                    state=PENDING,
                    tries=0,
                    retry_at=now,
                    source_updated_at=source_updated_at,
                    created_at=now,
                    updated_at=now,
                )
            )
    except IntegrityError:
        return 0
    return 1
