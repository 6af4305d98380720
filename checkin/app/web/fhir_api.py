"""The FHIR read API for the EHR: ``GET /fhir/Patient?identifier=`` and ``/fhir/Observation?patient=``.

Read-only, behind one bearer token (``CHECKIN_FHIR_READ_TOKEN``, compared in constant time);
unset, the URLs answer 404 as if they did not exist. Answers are ``application/fhir+json``
searchset Bundles; every read is audited (``checkin.integrations.fhir.read``).
"""

from __future__ import annotations

import hmac
from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from sqlalchemy.orm import Session

from checkin.app.web.deps import ServicesDep
from checkin.app.web.limits import in_db_thread
from checkin.deps import Services
from checkin.integrations.fhir.queue import Systems

router = APIRouter(prefix="/fhir")
FHIR_JSON = "application/fhir+json"


def _outcome(status: int, code: str, text: str) -> JSONResponse:
    body = {
        "resourceType": "OperationOutcome",
        "issue": [{"severity": "error", "code": code, "diagnostics": text}],
    }
    return JSONResponse(body, status_code=status, media_type=FHIR_JSON)


def _refused(request: Request, services: Services) -> Response | None:
    token = services.settings.fhir_read_token
    if token is None:
        return Response(status_code=404)
    given = request.headers.get("authorization", "")
    if not hmac.compare_digest(given.encode(), f"Bearer {token}".encode()):
        return _outcome(401, "login", "a valid bearer token is required")
    return None


def _systems(services: Services) -> tuple[Systems, str]:
    s = services.settings
    base = f"{s.public_url}/fhir" if s.public_url else "/fhir"
    return Systems(
        ids=f"{s.public_url}/fhir/id" if s.public_url else "urn:checkin:id", mrn=s.fhir_mrn_system
    ), base


async def _search(
    request: Request, services: Services, run: Callable[[Session, Systems, str], dict[str, Any]]
) -> Response:
    refused = _refused(request, services)
    if refused is not None:
        return refused
    systems, base = _systems(services)

    def work() -> dict[str, Any]:
        with services.sessions() as session, session.begin():
            return run(session, systems, base)

    return JSONResponse(await in_db_thread(request, work), media_type=FHIR_JSON)


@router.get("/Patient")
async def search_patients(request: Request, services: ServicesDep, identifier: str = "") -> Response:
    from checkin.integrations.fhir.read import patients

    if not identifier:
        return _outcome(400, "required", "search by identifier=[system|]MRN")
    now = services.clock.now()
    return await _search(
        request, services, lambda s, sy, b: patients(s, identifier, systems=sy, base_url=b, now=now)
    )


@router.get("/Observation")
async def search_observations(request: Request, services: ServicesDep, patient: str = "") -> Response:
    from checkin.integrations.fhir.read import observations

    if not patient:
        return _outcome(400, "required", "search by patient=<Patient id>")
    now = services.clock.now()
    return await _search(
        request, services, lambda s, sy, b: observations(s, patient, systems=sy, base_url=b, now=now)
    )
