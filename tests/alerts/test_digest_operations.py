"""The daily digest tells staff of the sending itself (issue 15): messages that expired unsent
(after a long outage or while no worker ran) and a provider failing for minutes, from data
already stored: expired rows and the breaker's audit rows. Counts, channels and times only."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import select

from checkin.alerts.sweeps import digest_once
from checkin.deps import Services
from checkin.outbound.breaker import STILL_OPEN, close_circuit, open_circuit, still_open
from checkin.store import outbox
from checkin.store.models import AuditEvent, OutboxMessage
from tests.alerts.support import NURSES, add_patient, make_services
from tests.support import ROOT

SEVEN_AM = datetime(2026, 3, 4, 12, 0, tzinfo=UTC)  # 07:00 in New York (EST)
H = timedelta(hours=1)
EXPIRED_LINE = "3 message(s) expired unsent and were skipped (email 1, sms 2): never sent"
OUTAGE_LINE = "email provider failing: sending held more than 5 minutes from Wed Mar 04 01:00"


def unsent(services: Services, patient_id: int, channel: str, expires: datetime) -> str:
    """A pending row that expires at ``expires``; returns its key."""
    with services.sessions.begin() as s:
        key = f"x:{patient_id}:{channel}:{expires.isoformat()}"
        s.add(
            OutboxMessage(
                key=key,
                patient_id=patient_id,
                step_id="wound-check",
                occurrence=1,
                channel=channel,
                message="wound_check",
                urgent=False,
                due_at=expires - 6 * H,
                expires_at=expires,
                status="pending",
                attempts=0,
                created_at=expires - 6 * H,
                updated_at=expires - 6 * H,
            )
        )
        return key


def a_bad_night(services: Services) -> list[str]:
    """A day before the digest: three messages expired unsent in the last 24 hours (and one the
    day before, which is not this digest's), and the email provider failed for 40 minutes from
    01:00 local (06:00 UTC); an SMS blip of a minute is no outage."""
    refs = []
    for channel, expired_at in [
        ("sms", SEVEN_AM - 3 * H),
        ("sms", SEVEN_AM - 2 * H),
        ("email", SEVEN_AM - H),
    ]:
        pid, ref, _ = add_patient(services)
        refs.append(ref)
        unsent(services, pid, channel, expired_at)
        with services.sessions.begin() as s:
            outbox.skip_expired(s, expired_at)  # the worker's expire tick
    pid, _, _ = add_patient(services)
    unsent(services, pid, "sms", SEVEN_AM - 30 * H)
    with services.sessions.begin() as s:
        outbox.skip_expired(s, SEVEN_AM - 30 * H)

    opened = SEVEN_AM - 6 * H
    with services.sessions.begin() as s:
        assert open_circuit(s, "email", opened + timedelta(seconds=5), opened)
        assert open_circuit(s, "sms", opened + timedelta(seconds=5), opened)
    with services.sessions.begin() as s:
        assert close_circuit(s, "sms", opened + timedelta(minutes=1))  # closed before anyone was told
    with services.sessions.begin() as s:
        assert still_open(s, opened + STILL_OPEN + timedelta(seconds=5)) == [("email", opened)]
        assert still_open(s, opened + STILL_OPEN + timedelta(seconds=10)) == []  # told once
    with services.sessions.begin() as s:
        assert close_circuit(s, "email", opened + timedelta(minutes=20))
        assert not close_circuit(s, "email", opened + timedelta(minutes=21))  # already closed
    with services.sessions() as s:
        closings = s.scalars(
            select(AuditEvent).where(AuditEvent.action == "channel.circuit_closed").order_by(AuditEvent.at)
        ).all()
        assert [(e.subject, e.at) for e in closings] == [
            ("circuit:sms", opened + timedelta(minutes=1)),
            ("circuit:email", opened + timedelta(minutes=20)),
        ]
    return refs


def mails(services: Services) -> list[OutboxMessage]:
    with services.sessions() as s:
        rows = s.scalars(select(OutboxMessage).where(OutboxMessage.key.like("digest:spine:%")))
        return [r for r in rows if r.recipient]


def test_the_digest_tells_of_expired_messages_and_a_long_outage_without_patients(
    services: Services,
) -> None:
    refs = a_bad_night(services)

    # Nothing else to report: the operations part alone is worth the digest.
    assert digest_once(services, SEVEN_AM) >= len(NURSES)

    [mail, *_] = mails(services)
    text, html = mail.body or "", mail.html or ""
    assert mail.subject == (
        "Daily digest 2026-03-04 - Spine nurses: 0 open alert(s), 0 missed check-in(s), "
        "3 expired unsent, provider outage"
    )
    assert "OPERATIONS (24 h)" in text and EXPIRED_LINE in text and OUTAGE_LINE in text
    assert "sms provider failing" not in text  # closed within 5 minutes
    assert "Operations (last 24 h)" in html and EXPIRED_LINE in html and OUTAGE_LINE in html
    assert not any(ref in text or ref in html for ref in refs)  # counts, not patients
    with services.sessions() as s:
        queued = s.scalars(select(AuditEvent).where(AuditEvent.action == "digest.queued")).first()
    assert queued is not None
    assert (queued.detail["expired_unsent"], queued.detail["long_outages"]) == (3, 1)


def test_a_quiet_day_has_no_operations_part(services: Services) -> None:
    pid, _, _ = add_patient(services)
    unsent(services, pid, "sms", SEVEN_AM - 30 * H)  # expired the day before
    with services.sessions.begin() as s:
        outbox.skip_expired(s, SEVEN_AM - 30 * H)
    assert digest_once(services, SEVEN_AM) == 0  # nothing to report


def test_the_built_in_text_carries_the_operations_lines_when_a_template_fails(
    db_url: str, tmp_path: Path
) -> None:
    templates = tmp_path / "templates"
    shutil.copytree(ROOT / "templates", templates)
    (templates / "staff" / "digest.txt.j2").write_text("{{ broken(", encoding="utf-8")
    services = make_services(db_url, tmp_path, templates=templates)
    try:
        a_bad_night(services)
        digest_once(services, SEVEN_AM)
        text = mails(services)[0].body or ""
    finally:
        services.engine.dispose()
    assert (
        "Operations: 3 message(s) expired unsent and were skipped (email 1, sms 2) in the last 24 h" in text
    )
    assert (
        "Operations: email provider failing; sending held more than 5 minutes from Wed Mar 04 01:00" in text
    )
