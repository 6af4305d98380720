"""docs/reliability.md R5: email through a real SMTP server (aiosmtpd on loopback): 451 then
success, 550 for one recipient only, and the relay stopped then restarted. Each email must
arrive exactly once, counted by the outbox id in our Message-ID."""

from __future__ import annotations

import email
import re
from collections import Counter, deque
from collections.abc import Callable, Iterator
from datetime import timedelta
from email.policy import default as default_policy
from typing import Any

import pytest
from sqlalchemy import select

from checkin.channels.email import SmtpConfig, SmtpEmailChannel
from checkin.deps import Services
from checkin.outbound.breaker import BreakerPolicy, Breakers
from checkin.outbound.dispatch import run_once
from checkin.outbound.reconcile import reconcile_once
from checkin.store.models import Alert, AuditEvent
from checkin.store.outbox import fit_provider_id
from tests.channels.channels_support import SmtpServer
from tests.outbound.support import NOW, add_patient, add_row, get_row, make_services

W = "worker-a"


class Relay:
    """Accepts mail, recording each message; ``refuse[address]`` queues RCPT replies."""

    def __init__(self) -> None:
        self.received: list[email.message.EmailMessage] = []
        self.refuse: dict[str, deque[str]] = {}
        self.drop_after_data = 0  # how many DATA to queue and then hang up on before replying
        self.refusing_everyone: Callable[[], bool] = lambda: False  # a relay-wide 550 while True

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, options: list[str]
    ) -> str:
        if self.refusing_everyone():
            return "550 5.7.1 Relaying denied"
        replies = self.refuse.get(address)
        if replies:
            reply = replies[0]
            if not reply.startswith("5"):
                replies.popleft()  # a temporary refusal is used up; a permanent one stays
            return reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.received.append(email.message_from_bytes(envelope.content, policy=default_policy))  # type: ignore[arg-type]
        if self.drop_after_data:
            self.drop_after_data -= 1
            server.transport.close()  # queued, but the sender never hears the 250
        return "250 Message accepted for delivery"

    def per_outbox(self) -> Counter[int]:
        ids = [re.search(r"outbox-(\d+)", str(m["Message-ID"])) for m in self.received]
        return Counter(int(found.group(1)) for found in ids if found)


class Server(SmtpServer):
    def __init__(self) -> None:
        super().__init__(Relay())


@pytest.fixture
def smtp() -> Iterator[Server]:
    server = Server()
    server.start()
    yield server
    server.stop()


@pytest.fixture
def mailer(db_url: str, smtp: Server) -> Iterator[Services]:
    channel = SmtpEmailChannel(
        SmtpConfig(host="127.0.0.1", port=smtp.port, tls="none", sender="care@hospital.example", timeout=2)
    )
    services = make_services(db_url, email=channel)
    yield services
    services.engine.dispose()


def email_row(services: Services, address: str) -> int:
    with services.sessions() as s, s.begin():
        p, e = add_patient(s, email=address)
        return add_row(s, p, e, channel="email", expires=NOW + timedelta(days=1)).id


def next_attempt(services: Services, row_id: int) -> Any:
    row = get_row(services, row_id)
    assert row.status == "pending" and row.next_attempt_at is not None
    services.clock.set(row.next_attempt_at)  # type: ignore[attr-defined]
    return row.next_attempt_at


def test_it_retries_a_451_and_delivers_the_email_once(mailer: Services, smtp: Server) -> None:
    row_id = email_row(mailer, "ana@example.org")
    smtp.relay.refuse["ana@example.org"] = deque(["451 4.3.0 Try again later"])

    run_once(mailer, NOW, worker_id=W)
    assert get_row(mailer, row_id).last_error_code == "451"
    assert smtp.relay.received == []
    run_once(mailer, next_attempt(mailer, row_id), worker_id=W)

    row = get_row(mailer, row_id)
    assert (row.status, row.attempts) == ("sent", 2)
    assert smtp.relay.per_outbox() == {row_id: 1}
    message_id = str(smtp.relay.received[0]["Message-ID"])
    assert row.provider_id == fit_provider_id(message_id)
    with mailer.sessions() as s:  # the full Message-ID is in the audit log
        sent = s.scalars(select(AuditEvent).where(AuditEvent.action == "outbox.sent")).one()
        assert sent.detail["provider_id"] == message_id


def test_it_treats_a_550_as_permanent_for_that_recipient_only(mailer: Services, smtp: Server) -> None:
    bounced = email_row(mailer, "gone@example.org")
    fine = email_row(mailer, "ana@example.org")
    smtp.relay.refuse["gone@example.org"] = deque(["550 5.1.1 No such user"])

    run_once(mailer, NOW, worker_id=W)
    # One 550 could be the relay's answer to everyone: asked once more before it is final.
    assert (get_row(mailer, bounced).status, get_row(mailer, bounced).last_error_code) == ("pending", "?550")
    with mailer.sessions() as s:
        assert s.scalars(select(Alert)).all() == []
    run_once(mailer, NOW + timedelta(hours=2), worker_id=W)

    row = get_row(mailer, bounced)
    assert (row.status, row.last_error_code, row.attempts) == ("dead", "550", 1)
    assert get_row(mailer, fine).status == "sent"
    assert smtp.relay.per_outbox() == {fine: 1}
    with mailer.sessions() as s:
        assert [a.kind for a in s.scalars(select(Alert))] == ["contact_problem"]


def test_it_delivers_each_email_once_when_a_down_relay_returns(mailer: Services, smtp: Server) -> None:
    ids = [email_row(mailer, f"p{i}@example.org") for i in range(3)]
    smtp.stop()
    run_once(mailer, NOW, worker_id=W)
    assert {get_row(mailer, i).status for i in ids} == {"pending"}
    assert {get_row(mailer, i).status_reason for i in ids} == {"SMTP connect failed (ConnectionRefusedError)"}

    smtp.start()
    later = NOW + timedelta(hours=2)  # past every backoff
    mailer.clock.set(later)  # type: ignore[attr-defined]
    run_once(mailer, later, worker_id=W)
    run_once(mailer, later + timedelta(hours=2), worker_id=W)
    assert smtp.relay.per_outbox() == dict.fromkeys(ids, 1)
    assert {get_row(mailer, i).status for i in ids} == {"sent"}


def test_a_resend_after_a_lost_data_reply_carries_the_same_message_id(mailer: Services, smtp: Server) -> None:
    row_id = email_row(mailer, "ana@example.org")
    smtp.relay.drop_after_data = 1

    run_once(mailer, NOW, worker_id=W)
    assert get_row(mailer, row_id).status == "in_doubt"  # the relay queued it; we cannot know
    later = NOW + timedelta(minutes=2)
    mailer.clock.set(later)  # type: ignore[attr-defined]
    reconcile_once(mailer, later, worker_id=W)
    run_once(mailer, later, worker_id=W)

    row = get_row(mailer, row_id)
    assert (row.status, row.attempts) == ("sent", 2)
    first, second = (str(m["Message-ID"]) for m in smtp.relay.received)
    assert first == second  # mail systems can drop the copy
    assert row.provider_id == fit_provider_id(first)


def test_a_relay_wide_550_for_10_seconds_dead_letters_nothing(
    mailer: Services, smtp: Server, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("INFO", logger="checkin.ops")
    ids = [email_row(mailer, f"p{i}@example.org") for i in range(20)]
    smtp.relay.refusing_everyone = lambda: mailer.clock.now() < NOW + timedelta(seconds=10)
    breakers = Breakers()

    now = NOW
    for _ in range(180):  # the worker's dispatch tick, every second for 3 minutes
        mailer.clock.set(now)  # type: ignore[attr-defined]
        run_once(mailer, now, worker_id=W, breakers=breakers)
        now += timedelta(seconds=1)

    rows = [get_row(mailer, i) for i in ids]
    assert [r.status for r in rows] == ["sent"] * 20  # not even the first refusal is dead
    assert smtp.relay.per_outbox() == dict.fromkeys(ids, 1)
    # Rows held while the circuit was open kept their attempt budget: only the refused sends
    # after the first (read as the relay's) and the failed probe spent one.
    spent = sorted(r.attempts for r in rows)
    assert spent.count(1) >= 20 - BreakerPolicy().burst and max(spent) == 2
    with mailer.sessions() as s:
        assert s.scalars(select(Alert)).all() == []  # no contact-problem alert for anyone
    opened = [r for r in caplog.records if getattr(r, "event", None) == "channel.circuit_open"]
    assert len(opened) == 1


def test_a_minute_of_relay_down_then_10_seconds_of_550_dead_letters_nothing(
    mailer: Services, smtp: Server, caplog: pytest.LogCaptureFixture
) -> None:
    """Issue 15's provider faults back to back through one circuit: the relay refuses
    connections for 60 s, comes back answering 550 to everyone for 10 s, then recovers."""
    caplog.set_level("INFO", logger="checkin.ops")
    ids = [email_row(mailer, f"p{i}@example.org") for i in range(20)]
    back = NOW + timedelta(seconds=60)
    smtp.relay.refusing_everyone = lambda: mailer.clock.now() < back + timedelta(seconds=10)
    smtp.stop()
    breakers = Breakers()

    now = NOW
    for _ in range(240):  # the worker's dispatch tick, every second for 4 minutes
        if now == back:
            smtp.start()
        mailer.clock.set(now)  # type: ignore[attr-defined]
        run_once(mailer, now, worker_id=W, breakers=breakers)
        now += timedelta(seconds=1)

    rows = [get_row(mailer, i) for i in ids]
    assert [r.status for r in rows] == ["sent"] * 20
    assert smtp.relay.per_outbox() == dict.fromkeys(ids, 1)
    # Failed sends: the faults that opened the circuit, then one per probe (waits of 5, 10, 20,
    # 40 s…); every row held meanwhile kept its attempt budget.
    failed = sum(r.attempts for r in rows) - 20
    assert failed <= BreakerPolicy().faults + 4, sorted(r.attempts for r in rows)
    with mailer.sessions() as s:
        assert s.scalars(select(Alert)).all() == []
    opened = [r for r in caplog.records if getattr(r, "event", None) == "channel.circuit_open"]
    assert len(opened) == 1
