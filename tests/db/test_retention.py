"""Retention clears message bodies older than the set age and keeps the audit trail."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from checkin.store import audit
from checkin.store.models import AuditEvent, InboundMessage, OutboxMessage
from checkin.store.retention import PURGED, purge
from tests.inbound.support import NOW, add_outbox, add_patient

OLD = NOW - timedelta(days=400)
RECENT = NOW - timedelta(days=10)


def reply(session: Session, patient_id: int, sid: str, at: object, body: str) -> None:
    session.add(
        InboundMessage(
            message_sid=sid,
            from_phone="+16175550142",
            body=body,
            patient_id=patient_id,
            received_at=at,
            processed_at=at,
            severity="urgent",
            flags=["fever"],
            assessment={"evidence": [body]},
        )
    )


def test_it_clears_old_bodies_and_keeps_the_rest(session: Session) -> None:
    p = add_patient(session)
    old_sent = add_outbox(session, p, sent_at=OLD, status="sent")
    old_pending = add_outbox(session, p, due_at=OLD, status="pending")
    recent = add_outbox(session, p, sent_at=RECENT, status="sent")
    for row in (old_sent, old_pending, recent):
        row.body, row.subject, row.html = "Ana, any fever today?", "Day 3", "<p>Ana</p>"
    reply(session, p.id, "SM" + "1" * 32, OLD, "fever 102 since noon")
    reply(session, p.id, "SM" + "2" * 32, RECENT, "wound leaking")
    audit.record(session, at=OLD, actor="system", action="inbound.received", patient_ref=p.reference)
    session.flush()
    audit_before = session.scalar(select(func.count()).select_from(AuditEvent))

    done = purge(session, now=NOW, days=365, actor="cli:test")
    session.flush()
    session.expire_all()

    assert (done.replies, done.sent) == (1, 1)
    bodies = dict(session.execute(select(InboundMessage.message_sid, InboundMessage.body)).all())
    assert bodies == {"SM" + "1" * 32: PURGED, "SM" + "2" * 32: "wound leaking"}
    old_reply = session.scalars(select(InboundMessage).where(InboundMessage.received_at < RECENT)).one()
    assert old_reply.assessment is None and old_reply.severity == "urgent" and old_reply.flags == ["fever"]
    texts = {r.id: (r.body, r.subject, r.html, r.status) for r in session.scalars(select(OutboxMessage))}
    assert texts[old_sent.id] == (None, None, None, "sent")
    assert texts[old_pending.id][0] == "Ana, any fever today?"  # still to be sent
    assert texts[recent.id][0] == "Ana, any fever today?"
    assert session.scalar(select(func.count()).select_from(AuditEvent)) == audit_before + 1
    last = session.scalars(select(AuditEvent).order_by(AuditEvent.id.desc())).first()
    assert last is not None and last.action == "retention.purged" and last.detail["replies"] == 1
    # Run again: nothing more to clear.
    again = purge(session, now=NOW, days=365, actor="cli:test")
    assert (again.replies, again.sent) == (0, 0)


def test_it_refuses_a_short_retention(session: Session) -> None:
    with pytest.raises(ValueError, match="at least 30 days"):
        purge(session, now=NOW, days=7, actor="cli:test")


def test_the_command_shows_asks_and_clears(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from checkin.app.cli.main import cli
    from checkin.store.db import make_engine, session_factory, upgrade
    from tests.support import ROOT

    db = tmp_path / "r.db"
    url = f"sqlite:///{db}"
    upgrade(url)
    engine = make_engine(url)
    with session_factory(engine).begin() as s:
        p = add_patient(s)
        reply(s, p.id, "SM" + "3" * 32, NOW - timedelta(days=4000), "old words")
    env = {
        "CHECKIN_DATABASE_URL": url,
        "CHECKIN_SCHEDULES_DIR": str(ROOT / "schedules"),
        "CHECKIN_TEMPLATES_DIR": str(ROOT / "templates"),
    }
    run = CliRunner()
    base = ["--env-file", str(db) + ".none", "retention", "purge"]
    assert run.invoke(cli, [*base, "--days", "7"], env=env).exit_code == 2
    declined = run.invoke(cli, [*base, "--days", "365"], env=env, input="n\n")
    assert "1 reply text(s)" in declined.output and "nothing cleared" in declined.output
    done = run.invoke(cli, [*base, "--days", "365", "--yes"], env=env)
    assert done.exit_code == 0 and "cleared 1 reply text(s)" in done.output, done.output
    with session_factory(engine)() as s:
        assert s.scalars(select(InboundMessage.body)).all() == [PURGED]
    engine.dispose()
