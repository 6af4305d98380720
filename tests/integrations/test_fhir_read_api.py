"""The FHIR read API: bearer token, valid searchset Bundles, every read audited."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from fhir.resources.R4B.bundle import Bundle
from sqlalchemy import select

from checkin.app.web import create_app
from checkin.deps import Services
from checkin.store.models import AuditEvent, InboundMessage, Patient
from tests.inbound.support import services_for
from tests.integrations.support import feed, siu
from tests.support import NOW

TOKEN = "r" * 40


@pytest.fixture
def services(db_url: str, default_schedules: dict) -> Iterator[Services]:
    s = services_for(db_url)
    s = Services(
        **{
            **s.__dict__,
            "settings": s.settings.replace(fhir_read_token=TOKEN, fhir_mrn_system="urn:oid:1.2.3"),
        }
    )
    assert feed(s.engine, default_schedules).handle(siu()).code == "AA"
    with s.sessions() as session, session.begin():
        pid = session.scalars(select(Patient.id)).one()
        session.add(
            InboundMessage(
                message_sid="SM9",
                channel="sms",
                body="pain 6",
                patient_id=pid,
                assessment={"pain_score": 6},
                received_at=NOW,
                flags=[],
            )
        )
    yield s
    s.engine.dispose()


@pytest.fixture
def client(services: Services) -> Iterator[TestClient]:
    with TestClient(create_app(services)) as c:
        yield c


def test_a_patient_by_mrn_then_their_observations(client: TestClient, services: Services) -> None:
    found = client.get(
        "/fhir/Patient?identifier=urn:oid:1.2.3|100234", headers={"Authorization": f"Bearer {TOKEN}"}
    )
    assert found.status_code == 200 and found.headers["content-type"].startswith("application/fhir+json")
    bundle = Bundle.model_validate(found.json())
    assert bundle.total == 1
    patient_id = found.json()["entry"][0]["resource"]["id"]
    obs = client.get(
        f"/fhir/Observation?patient=Patient/{patient_id}", headers={"Authorization": f"Bearer {TOKEN}"}
    )
    body = obs.json()
    Bundle.model_validate(body)
    (entry,) = body["entry"]
    assert entry["resource"]["code"]["coding"][0]["code"] == "72514-3"
    assert entry["resource"]["valueQuantity"]["value"] == 6.0
    assert entry["resource"]["subject"]["reference"] == f"Patient/{patient_id}"
    with services.sessions() as s:
        actions = list(s.scalars(select(AuditEvent.action).where(AuditEvent.actor == "fhir-api")))
    assert actions == ["fhir.read.patient", "fhir.read.observation"]


def test_another_identifier_system_matches_nothing(client: TestClient) -> None:
    r = client.get("/fhir/Patient?identifier=urn:other|100234", headers={"Authorization": f"Bearer {TOKEN}"})
    assert r.status_code == 200 and r.json()["total"] == 0 and "entry" not in r.json()
    Bundle.model_validate(r.json())


def test_without_the_token_nothing_is_read(client: TestClient) -> None:
    assert client.get("/fhir/Patient?identifier=100234").status_code == 401
    wrong = client.get("/fhir/Patient?identifier=100234", headers={"Authorization": "Bearer " + "x" * 40})
    assert wrong.status_code == 401 and wrong.json()["resourceType"] == "OperationOutcome"
    assert client.get("/fhir/Patient", headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 400


def test_with_no_token_configured_the_api_does_not_exist(services: Services) -> None:
    off = Services(**{**services.__dict__, "settings": services.settings.replace(fhir_read_token=None)})
    with TestClient(create_app(off)) as c:
        assert (
            c.get("/fhir/Patient?identifier=100234", headers={"Authorization": f"Bearer {TOKEN}"}).status_code
            == 404
        )
