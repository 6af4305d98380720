"""FHIR R4 out against a recording test server: what is written, that it validates, and that
5xx answers and timeouts are retried without ever making a second resource."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.engine import Engine

from checkin.clock import ManualClock
from checkin.fhir_settings import FhirSettings
from checkin.integrations.fhir.client import FhirClient
from checkin.integrations.fhir.export import PassReport, run_pass
from checkin.integrations.fhir.queue import Systems
from checkin.store.db import session_factory
from checkin.store.fhir_exports import FhirExport
from checkin.store.models import Alert, InboundMessage, Patient
from tests.integrations.fhir_server import FhirServer, key_pair
from tests.integrations.support import feed, siu
from tests.support import NOW

SYSTEMS = Systems(ids="https://checkin.example.org/fhir/id", mrn="urn:oid:1.2.3.4")


@pytest.fixture
def server() -> Iterator[FhirServer]:
    pem, public = key_pair()
    s = FhirServer(public)
    s.start()
    s.private_key = pem  # type: ignore[attr-defined]
    yield s
    s.stop()


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(NOW)


def _client(server: FhirServer, clock: ManualClock, key: str | None = None) -> FhirClient:
    settings = FhirSettings(
        base_url=server.base,
        token_url=f"{server.base}/token",
        client_id="checkin-test",
        private_key=key or server.private_key,  # type: ignore[attr-defined]
        mrn_system=SYSTEMS.mrn,
    )
    return FhirClient(settings, id_system=SYSTEMS.ids, http=httpx.Client(timeout=0.5))


def _seed(engine: Engine, default_schedules: dict, clock: ManualClock) -> int:
    """A patient enrolled by the HL7 feed, a reply with a pain score and a temperature, and an
    open alert; returns the alert id."""
    assert feed(engine, default_schedules, clock).handle(siu()).code == "AA"
    with session_factory(engine)() as s, s.begin():
        patient = s.scalars(select(Patient)).one()
        reply = InboundMessage(
            message_sid="SM1",
            channel="sms",
            body="pain 7, temp 101.5",
            patient_id=patient.id,
            assessment={"pain_score": 7, "temperature_f": 101.5, "severity": "urgent"},
            received_at=NOW,
            flags=["fever"],
        )
        s.add(reply)
        s.flush()
        alert = Alert(
            patient_id=patient.id,
            kind="red_flag",
            severity="urgent",
            flags=["fever"],
            status="open",
            inbound_id=reply.id,
            escalation_level=0,
            escalation_round=0,
            opened_at=NOW,
            updated_at=NOW,
        )
        s.add(alert)
        s.flush()
        return alert.id


def _pass(engine: Engine, server: FhirServer, clock: ManualClock) -> PassReport:
    return run_pass(session_factory(engine), _client(server, clock), systems=SYSTEMS, clock=clock)


def test_readings_become_observations_and_alerts_flags(
    engine: Engine, default_schedules: dict, server: FhirServer, clock: ManualClock
) -> None:
    _seed(engine, default_schedules, clock)
    report = _pass(engine, server, clock)
    assert (report.queued, report.written) == (3, 3), report.details
    assert server.invalid == [] and server.tokens_issued == 1
    pain = next(r for r in server.resources.values() if r["code"]["coding"][0]["code"] == "72514-3")
    temp = next(r for r in server.resources.values() if r["code"]["coding"][0]["code"] == "8310-5")
    assert pain["valueQuantity"] == {
        "value": 7.0,
        "unit": "{score}",
        "system": "http://unitsofmeasure.org",
        "code": "{score}",
    }
    assert temp["valueQuantity"]["value"] == 101.5 and temp["valueQuantity"]["code"] == "[degF]"
    assert pain["subject"] == {"identifier": {"system": "urn:oid:1.2.3.4", "value": "100234"}}
    assert pain["effectiveDateTime"] == "2026-03-03T15:00:00Z" and pain["derivedFrom"][0]["identifier"][
        "value"
    ].startswith("message-")
    (fl,) = [r for r in server.resources.values() if r["resourceType"] == "Flag"]
    assert fl["status"] == "active" and "urgent" in fl["code"]["text"]
    assert _pass(engine, server, clock).written == 0  # nothing new: nothing written again


def test_a_5xx_is_retried_later_without_a_duplicate(
    engine: Engine, default_schedules: dict, server: FhirServer, clock: ManualClock
) -> None:
    _seed(engine, default_schedules, clock)
    server.faults = ["500", "500-after-store"]
    first = _pass(engine, server, clock)
    assert (first.written, first.retried) == (1, 2)
    assert _pass(engine, server, clock).written == 0  # not due yet: backoff
    clock.advance(timedelta(minutes=5))
    second = _pass(engine, server, clock)
    assert second.written == 2
    assert len(server.resources) == 3  # the write that landed behind a 500 was not made twice
    with session_factory(engine)() as s:
        assert {r.state for r in s.scalars(select(FhirExport))} == {"sent"}


def test_a_timeout_is_retried_without_a_duplicate(
    engine: Engine, default_schedules: dict, server: FhirServer, clock: ManualClock
) -> None:
    _seed(engine, default_schedules, clock)
    server.faults = ["slow"]
    first = _pass(engine, server, clock)
    assert first.retried == 1 and any("ReadTimeout" in d for d in first.details)
    clock.advance(timedelta(minutes=5))
    assert _pass(engine, server, clock).written == 1
    assert len(server.resources) == 3
    posts = [w for w in server.writes if w[0] == "POST"]
    assert len(posts) == 3  # two readings, one of them twice


def test_a_resolved_alert_updates_its_flag(
    engine: Engine, default_schedules: dict, server: FhirServer, clock: ManualClock
) -> None:
    alert_id = _seed(engine, default_schedules, clock)
    _pass(engine, server, clock)
    clock.advance(timedelta(hours=1))
    with session_factory(engine)() as s, s.begin():
        alert = s.get(Alert, alert_id)
        assert alert is not None
        alert.status, alert.resolved_at, alert.updated_at = "resolved", clock.now(), clock.now()
    report = _pass(engine, server, clock)
    assert (report.queued, report.written) == (1, 1)
    (fl,) = [r for r in server.resources.values() if r["resourceType"] == "Flag"]
    assert fl["status"] == "inactive" and fl["period"]["end"] == "2026-03-03T16:00:00Z"


def test_a_refusal_is_not_retried(
    engine: Engine, default_schedules: dict, server: FhirServer, clock: ManualClock
) -> None:
    _seed(engine, default_schedules, clock)
    server.faults = ["422"]
    assert _pass(engine, server, clock).refused == 1
    with session_factory(engine)() as s:
        dead = s.scalars(select(FhirExport).where(FhirExport.state == "dead")).one()
        assert dead.last_error is not None and dead.last_error.startswith("422")


def test_a_client_assertion_signed_with_another_key_gets_no_token(
    engine: Engine, default_schedules: dict, server: FhirServer, clock: ManualClock
) -> None:
    _seed(engine, default_schedules, clock)
    other, _ = key_pair()
    client = _client(server, clock, key=other)
    report = run_pass(session_factory(engine), client, systems=SYSTEMS, clock=clock)
    assert report.written == 0 and report.retried == 3 and server.resources == {}


def test_checkin_fhir_export_once(
    tmp_path, default_schedules: dict, server: FhirServer, clock: ManualClock
) -> None:  # type: ignore[no-untyped-def]
    from click.testing import CliRunner

    from checkin.app.cli.main import cli
    from checkin.store.db import make_engine, upgrade
    from tests.support import ROOT

    url = f"sqlite:///{tmp_path / 'fhir.db'}"
    upgrade(url)
    engine = make_engine(url)
    _seed(engine, default_schedules, clock)
    engine.dispose()
    env = {
        "CHECKIN_DATABASE_URL": url,
        "CHECKIN_SCHEDULES_DIR": str(ROOT / "schedules"),
        "CHECKIN_TEMPLATES_DIR": str(ROOT / "templates"),
        "CHECKIN_FHIR_BASE_URL": server.base,
        "CHECKIN_FHIR_TOKEN_URL": f"{server.base}/token",
        "CHECKIN_FHIR_CLIENT_ID": "checkin-test",
        "CHECKIN_FHIR_PRIVATE_KEY": server.private_key,  # type: ignore[attr-defined]
        "CHECKIN_FHIR_MRN_SYSTEM": SYSTEMS.mrn,
    }
    result = CliRunner().invoke(
        cli, ["--env-file", str(tmp_path / "none.env"), "fhir", "export", "--once"], env=env
    )
    assert result.exit_code == 0, result.output
    assert "queued 3, written 3, to retry 0, refused 0" in result.output
    assert len(server.resources) == 3 and server.invalid == []


def test_fhir_settings_name_what_is_missing_and_read_the_key_file_late(tmp_path, server: FhirServer) -> None:  # type: ignore[no-untyped-def]
    from checkin.config import Settings
    from checkin.errors import ConfigError

    env = {"CHECKIN_FHIR_BASE_URL": server.base, "CHECKIN_FHIR_TOKEN_URL": f"{server.base}/token"}
    with pytest.raises(ConfigError, match="CHECKIN_FHIR_CLIENT_ID: is required"):
        Settings.from_env(env)
    key = tmp_path / "key.pem"
    settings = Settings.from_env(
        {**env, "CHECKIN_FHIR_CLIENT_ID": "c", "CHECKIN_FHIR_PRIVATE_KEY_FILE": str(key)}
    )
    assert settings.fhir is not None  # the file is not read by every process
    with pytest.raises(ConfigError, match="cannot read"):
        settings.fhir.key()
    key.write_text(server.private_key)  # type: ignore[attr-defined]
    assert settings.fhir.key().startswith("-----BEGIN PRIVATE KEY-----")
    assert Settings.from_env({}).fhir is None
