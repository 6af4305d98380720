from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy.orm import Session

from checkin.store.models import Alert, InboundMessage, OutboxMessage, Patient, Worker
from checkin.store.status import collect, prometheus_text, status_lines

NOW = datetime(2026, 3, 1, 15, 0, tzinfo=UTC)


def outbox(key: str, status: str, due: datetime, **kw: object) -> OutboxMessage:
    return OutboxMessage(
        key=key,
        step_id="s",
        occurrence=0,
        channel="sms",
        message="m",
        due_at=due,
        expires_at=due + timedelta(hours=8),
        status=status,
        created_at=NOW,
        updated_at=NOW,
        **kw,
    )


def seed(session: Session) -> None:
    p = Patient(reference="P-TEST123", mrn="1", first_name="A", timezone="UTC", created_at=NOW)
    session.add(p)
    session.flush()
    session.add_all(
        [
            outbox("a", "pending", NOW - timedelta(minutes=10)),
            outbox("b", "pending", NOW + timedelta(hours=1)),
            outbox(
                "c",
                "sent",
                NOW - timedelta(minutes=30),
                last_attempt_at=NOW - timedelta(minutes=20),
                sent_at=NOW - timedelta(minutes=20) + timedelta(seconds=2),
            ),
            outbox("d", "dead", NOW - timedelta(days=1)),
            InboundMessage(
                message_sid="SM1", body="x", severity="emergency", received_at=NOW, patient_id=p.id
            ),
            Alert(
                patient_id=p.id,
                kind="red_flag",
                severity="emergency",
                flags=["fever"],
                status="open",
                escalation_level=2,
                opened_at=NOW,
                updated_at=NOW,
            ),
            Worker(id="w1", host="h", pid=1, started_at=NOW, heartbeat_at=NOW - timedelta(seconds=5)),
            Worker(id="w2", host="h", pid=2, started_at=NOW, heartbeat_at=NOW - timedelta(minutes=5)),
        ]
    )
    session.commit()


def test_it_counts_messages_and_the_oldest_due_one(session: Session) -> None:
    seed(session)
    f = collect(session, NOW)
    assert f.messages["pending"] == 2 and f.messages["sent"] == 1 and f.messages["dead"] == 1
    assert f.oldest_due_seconds == 600
    assert f.send_latency_p50 == 2.0 and f.sent_last_hour == 1


def test_it_counts_replies_alerts_and_live_workers(session: Session) -> None:
    seed(session)
    f = collect(session, NOW)
    assert f.inbound["emergency"] == 1 and f.alerts_open["emergency"] == 1
    assert f.escalations == 1 and f.workers_alive == 1  # level 2 = first notice + one escalation


def test_it_writes_prometheus_text(session: Session) -> None:
    seed(session)
    text = prometheus_text(collect(session, NOW), {'webhook_signature_failures_total{reason="forged"}': 3})
    assert 'checkin_messages{status="pending"} 2' in text
    assert "checkin_oldest_due_message_age_seconds 600" in text
    assert 'checkin_alerts_open{severity="emergency"} 1' in text
    assert 'checkin_webhook_signature_failures_total{reason="forged"} 3' in text
    assert "# TYPE checkin_messages gauge" in text


def test_it_prints_a_status_summary(session: Session) -> None:
    seed(session)
    lines = status_lines(collect(session, NOW))
    assert any("(escalations 1)" in line for line in lines)
    assert any(line.startswith("workers     1 alive") for line in lines)
