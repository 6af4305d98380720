"""Liveness touches nothing; readiness checks the database."""

from __future__ import annotations

from fastapi.testclient import TestClient


def test_it_reports_the_process_alive(client: TestClient) -> None:
    r = client.get("/healthz")
    assert r.status_code == 200 and r.json() == {"status": "ok"}


def test_it_reports_ready_when_the_database_answers(client: TestClient) -> None:
    r = client.get("/readyz")
    assert r.status_code == 200 and r.json() == {"status": "ready"}


def test_it_exposes_no_api_docs(client: TestClient) -> None:
    assert client.get("/docs").status_code == 404
    assert client.get("/openapi.json").status_code == 404


def test_it_serves_prometheus_metrics_with_database_figures(client: TestClient) -> None:
    client.post("/webhooks/twilio/sms", data={"Body": "x"})  # unsigned: counted as a failure
    r = client.get("/metrics")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    assert 'checkin_messages{status="pending"} 0' in r.text
    assert "checkin_oldest_due_message_age_seconds 0" in r.text
    assert "checkin_webhook_signature_failures_total" in r.text
