"""Check a resource against the FHIR models of ``fhir.resources`` before it leaves checkin.

``fhir.resources`` ships R5, R4B and STU3 models; R4B (4.3) is R4 with fixes, identical for the
fields of Observation, Flag, Patient and Bundle that checkin writes, so it stands in for R4.
"""

from __future__ import annotations

from typing import Any

from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.flag import Flag
from fhir.resources.R4B.observation import Observation
from fhir.resources.R4B.patient import Patient
from pydantic import ValidationError

MODELS: dict[str, Any] = {"Observation": Observation, "Flag": Flag, "Patient": Patient, "Bundle": Bundle}


class InvalidResource(ValueError):
    pass


def validate(resource: dict[str, Any]) -> None:
    """Raise InvalidResource naming the first wrong field; a resource type checkin does not
    write is wrong too."""
    model = MODELS.get(str(resource.get("resourceType")))
    if model is None:
        raise InvalidResource(f"resourceType {resource.get('resourceType')!r} is not one checkin writes")
    try:
        model.model_validate(resource)
    except ValidationError as e:
        first = e.errors()[0]
        where = ".".join(str(p) for p in first.get("loc", ()))
        raise InvalidResource(f"{resource['resourceType']}.{where}: {first.get('msg')}") from None
