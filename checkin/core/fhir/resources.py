"""The FHIR R4 resources checkin sends and serves, as dicts. Pure: values in, JSON-ready out.

- Pain score: ``Observation`` LOINC 72514-3 (pain severity, 0-10 verbal numeric rating, reported),
  ``valueQuantity`` in UCUM ``{score}``, category ``survey``.
- Temperature: ``Observation`` LOINC 8310-5 (body temperature), UCUM ``[degF]`` (what patients
  text in the US), category ``vital-signs``.
- An alert: ``Flag`` (category ``clinical``), ``active`` while open or acknowledged, ``inactive``
  once resolved, its period from opening to resolution.

Every resource carries an ``identifier`` in checkin's own system: the key the EHR's conditional
create (``If-None-Exist``) or conditional update matches, so a retried write never duplicates.
The patient is a logical reference by MRN (``subject.identifier``): checkin does not know the
EHR's Patient ids. The reply a reading came from is ``derivedFrom`` by identifier.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

LOINC = "http://loinc.org"
UCUM = "http://unitsofmeasure.org"
OBS_CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"
FLAG_CATEGORY = "http://terminology.hl7.org/CodeSystem/flag-category"
PAIN = "pain"
TEMPERATURE = "temperature"
_KINDS = {
    PAIN: ("72514-3", "Pain severity - 0-10 verbal numeric rating [Score] - Reported", "{score}", "survey"),
    TEMPERATURE: ("8310-5", "Body temperature", "[degF]", "vital-signs"),
}


def instant(at: datetime) -> str:
    """A FHIR instant/dateTime in UTC with seconds: ``2026-03-03T15:00:00Z``."""
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def subject(mrn: str, mrn_system: str) -> dict[str, Any]:
    return {"identifier": {"system": mrn_system, "value": mrn}}


def observation(
    kind: str,
    value: float,
    *,
    identifier: str,
    id_system: str,
    mrn: str,
    mrn_system: str,
    effective: datetime,
    message_identifier: str,
) -> dict[str, Any]:
    """A patient-reported pain score or temperature (``kind`` is ``pain`` or ``temperature``)."""
    code, display, unit, category = _KINDS[kind]
    return {
        "resourceType": "Observation",
        "identifier": [{"system": id_system, "value": identifier}],
        "status": "final",
        "category": [{"coding": [{"system": OBS_CATEGORY, "code": category}]}],
        "code": {"coding": [{"system": LOINC, "code": code, "display": display}], "text": display},
        "subject": subject(mrn, mrn_system),
        "effectiveDateTime": instant(effective),
        "issued": instant(effective),
        "valueQuantity": {"value": value, "unit": unit, "system": UCUM, "code": unit},
        "derivedFrom": [
            {"identifier": {"system": id_system, "value": message_identifier}, "display": "patient's reply"}
        ],
    }


def flag(
    *,
    identifier: str,
    id_system: str,
    mrn: str,
    mrn_system: str,
    severity: str,
    flags: list[str],
    active: bool,
    opened: datetime,
    closed: datetime | None,
) -> dict[str, Any]:
    """An alert as a Flag: what a nurse is (or was) looking into, never the patient's words."""
    text = f"checkin {severity} alert" + (f": {', '.join(flags)}" if flags else "")
    period = {"start": instant(opened)} | ({"end": instant(closed)} if closed else {})
    return {
        "resourceType": "Flag",
        "identifier": [{"system": id_system, "value": identifier}],
        "status": "active" if active else "inactive",
        "category": [{"coding": [{"system": FLAG_CATEGORY, "code": "clinical", "display": "Clinical"}]}],
        "code": {"coding": [{"system": f"{id_system}:alert-severity", "code": severity}], "text": text},
        "subject": subject(mrn, mrn_system),
        "period": period,
    }


def patient(*, reference: str, mrn: str, mrn_system: str, first_name: str) -> dict[str, Any]:
    """The patient as the read API shows them: id is checkin's reference, the MRN an identifier."""
    return {
        "resourceType": "Patient",
        "id": reference,
        "identifier": [{"system": mrn_system, "value": mrn}],
        "name": [{"given": [first_name]}],
    }


def searchset(resources: list[dict[str, Any]], *, base_url: str) -> dict[str, Any]:
    """A search result; no ``entry`` when nothing matched (FHIR JSON has no empty arrays)."""
    bundle: dict[str, Any] = {"resourceType": "Bundle", "type": "searchset", "total": len(resources)}
    if not resources:
        return bundle
    return bundle | {
        "entry": [
            {
                "fullUrl": f"{base_url}/{r['resourceType']}/{r['id']}",
                "resource": r,
                "search": {"mode": "match"},
            }
            if "id" in r
            else {"resource": r, "search": {"mode": "match"}}
            for r in resources
        ]
    }
