"""What the FHIR read API answers: a patient by MRN, a patient's reported readings. Read-only.

Both return a ``searchset`` Bundle (empty when nothing matches, as FHIR search does) and audit
the read under the API client, so every view of a patient is in the audit log.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from checkin.core.fhir.resources import patient, searchset
from checkin.integrations.fhir.queue import Systems, reply_observations
from checkin.store import audit
from checkin.store.models import InboundMessage, Patient

ACTOR = "fhir-api"
MAX_RESULTS = 1000


def _audit(session: Session, found: Patient | None, what: str, now: datetime) -> None:
    audit.record(
        session,
        at=now,
        actor=ACTOR,
        action=f"fhir.read.{what}",
        patient_ref=found.reference if found else None,
        subject=f"patient:{found.id}" if found else None,
        found=found is not None,
    )


def patients(
    session: Session, identifier: str, *, systems: Systems, base_url: str, now: datetime
) -> dict[str, Any]:
    """``GET Patient?identifier=[system|]MRN``: a system other than the MRN system matches nothing."""
    system, bar, mrn = identifier.rpartition("|")
    found = None
    if not bar or system in ("", systems.mrn):
        found = session.scalar(select(Patient).where(Patient.mrn == mrn))
    _audit(session, found, "patient", now)
    resources = (
        [
            patient(
                reference=found.reference, mrn=found.mrn, mrn_system=systems.mrn, first_name=found.first_name
            )
        ]
        if found
        else []
    )
    return searchset(resources, base_url=base_url)


def observations(
    session: Session, reference: str, *, systems: Systems, base_url: str, now: datetime
) -> dict[str, Any]:
    """``GET Observation?patient=<id>`` (``Patient/<id>`` too): the patient's pain scores and
    temperatures, oldest first; ``id`` is the same identifier the export writes."""
    ref = reference.removeprefix("Patient/")
    found = session.scalar(select(Patient).where(Patient.reference == ref))
    _audit(session, found, "observation", now)
    resources: list[dict[str, Any]] = []
    if found is not None:
        rows = session.execute(
            select(InboundMessage.id, InboundMessage.assessment, InboundMessage.received_at)
            .where(InboundMessage.patient_id == found.id, InboundMessage.assessment.is_not(None))
            .order_by(InboundMessage.received_at, InboundMessage.id)
            .limit(MAX_RESULTS)
        ).all()
        for inbound_id, assessment, received_at in rows:
            for identifier, resource in reply_observations(
                inbound_id, assessment, received_at, found.mrn, systems
            ):
                resource["id"] = identifier
                resource["subject"] = {"reference": f"Patient/{found.reference}", **resource["subject"]}
                resources.append(resource)
    return searchset(resources, base_url=base_url)
