"""docs/reliability.md R3, R3b, R3c, R4: the real Twilio adapter against a recording fake, driven
through dispatch.run_once and reconcile.reconcile_once on a ManualClock."""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import timedelta

import pytest
from sqlalchemy import select

from checkin.channels.memory import MemoryChannel
from checkin.deps import Services
from checkin.errors import ChannelError
from checkin.outbound.breaker import BreakerPolicy, Breakers
from checkin.outbound.dispatch import run_once, sender_key
from checkin.outbound.ratelimit import held_until
from checkin.outbound.reconcile import reconcile_once
from checkin.store.models import Alert, AuditEvent, OutboxMessage, Patient
from checkin.store.outbox import DEFAULT_POLICY
from tests.channels.fake_twilio_server import Answer, closed_port_url
from tests.outbound.support import (
    NOW,
    HoldingTwilio,
    add_patient,
    add_row,
    get_row,
    make_services,
    twilio_channel,
)

W = "worker-a"


@pytest.fixture
def twilio(db_url: str, fake: HoldingTwilio) -> Iterator[Services]:
    """Services whose SMS channel is the real adapter talking to the fake."""
    s = make_services(db_url, sms=twilio_channel(fake.url, timeout=0.5))
    yield s
    s.engine.dispose()


def one_row(services: Services, **kw: object) -> int:
    with services.sessions() as s, s.begin():
        p, e = add_patient(s, **kw)  # type: ignore[arg-type]
        return add_row(s, p, e).id


def at(services: Services, when: object) -> None:
    services.clock.set(when)  # type: ignore[attr-defined]


# ---- R3: 429 -------------------------------------------------------------------------------


def test_it_retries_a_429_after_retry_after_and_sends_exactly_once(
    twilio: Services, fake: HoldingTwilio
) -> None:
    row_id = one_row(twilio)
    fake.script(Answer.rate_limited("120"), Answer.rate_limited("2"), Answer.ok())

    run_once(twilio, NOW, worker_id=W)
    row = get_row(twilio, row_id)
    assert (row.status, row.attempts, row.last_error_code) == ("pending", 1, "20429")
    assert row.next_attempt_at is not None
    assert row.next_attempt_at - NOW >= timedelta(seconds=120)  # Retry-After beats the backoff
    with twilio.sessions() as s:  # and the whole sender waits, not only this row
        held = held_until(s, sender_key(twilio.settings, "sms") or "", NOW)
        assert held is not None and held >= NOW + timedelta(seconds=120)

    assert run_once(twilio, row.next_attempt_at - timedelta(seconds=1), worker_id=W) == 0
    at(twilio, row.next_attempt_at)
    run_once(twilio, row.next_attempt_at, worker_id=W)
    second = get_row(twilio, row_id)
    assert (second.status, second.attempts) == ("pending", 2)
    assert second.next_attempt_at - row.next_attempt_at >= timedelta(seconds=2)

    at(twilio, second.next_attempt_at)
    run_once(twilio, second.next_attempt_at, worker_id=W)
    done = get_row(twilio, row_id)
    assert (done.status, done.attempts) == ("sent", 3)
    assert len(fake.creates()) == 3 and fake.per_outbox() == {row_id: 1}
    assert done.provider_id == fake.messages[0]["sid"]


# ---- R3b: 500 and read timeout -------------------------------------------------------------

AMBIGUOUS = {
    "500": Answer.server_error,
    "read timeout": lambda created: Answer.slow(1.5, created=created),
}


@pytest.mark.parametrize("kind", AMBIGUOUS)
def test_it_reconciles_an_ambiguous_send_that_went_out_without_resending(
    twilio: Services, fake: HoldingTwilio, kind: str
) -> None:
    row_id = one_row(twilio)
    fake.script(AMBIGUOUS[kind](created=True))

    run_once(twilio, NOW, worker_id=W)
    assert get_row(twilio, row_id).status == "in_doubt"
    assert run_once(twilio, NOW + timedelta(hours=1), worker_id=W) == 0  # never resent blindly

    later = NOW + DEFAULT_POLICY.settle
    at(twilio, later)
    assert reconcile_once(twilio, later, worker_id=W) == 1
    row = get_row(twilio, row_id)
    assert (row.status, row.provider_id) == ("sent", fake.messages[0]["sid"])
    assert len(fake.creates()) == 1 and fake.per_outbox() == {row_id: 1}


@pytest.mark.parametrize("kind", AMBIGUOUS)
def test_it_resends_once_an_ambiguous_send_the_provider_does_not_hold(
    twilio: Services, fake: HoldingTwilio, kind: str
) -> None:
    row_id = one_row(twilio)
    fake.script(AMBIGUOUS[kind](created=False))

    run_once(twilio, NOW, worker_id=W)
    assert get_row(twilio, row_id).status == "in_doubt"
    # Too early to conclude "not sent": Twilio lists a message only once it has a DateSent.
    reconcile_once(twilio, NOW + timedelta(seconds=10), worker_id=W)
    early = get_row(twilio, row_id)
    assert early.status == "in_doubt"
    assert early.next_attempt_at == NOW + DEFAULT_POLICY.settle

    later = NOW + DEFAULT_POLICY.settle
    at(twilio, later)
    reconcile_once(twilio, later, worker_id=W)
    assert get_row(twilio, row_id).status == "pending"
    run_once(twilio, later, worker_id=W)
    row = get_row(twilio, row_id)
    assert (row.status, row.attempts) == ("sent", 2)
    assert len(fake.creates()) == 2 and fake.per_outbox() == {row_id: 1}


def test_it_keeps_a_row_in_doubt_while_the_provider_cannot_list(db_url: str) -> None:
    clock_services = make_services(db_url)
    services = clock_services
    sms = services.sms
    assert isinstance(sms, MemoryChannel)
    row_id = one_row(services)
    sms.fail_next(1, ChannelError("HTTP 500", permanent=False, ambiguous=True))
    run_once(services, NOW, worker_id=W)

    def broken(to: str, since: object) -> list[object]:
        raise ChannelError("listing messages failed: HTTP 503", permanent=False)

    sms.list_recent = broken  # type: ignore[method-assign,assignment]
    later = NOW + DEFAULT_POLICY.settle
    reconcile_once(services, later, worker_id=W)
    row = get_row(services, row_id)
    assert row.status == "in_doubt" and row.next_attempt_at is not None
    assert row.next_attempt_at >= later + DEFAULT_POLICY.backoff_base
    assert len(sms.attempts) == 1

    # Unresolved a day after the attempt: dead, with the reason, still not resent.
    reconcile_once(services, NOW + timedelta(hours=24), worker_id=W)
    row = get_row(services, row_id)
    assert (row.status, row.status_reason) == ("dead", "could not reconcile within 24 h")
    assert len(sms.attempts) == 1
    services.engine.dispose()


def test_it_does_not_take_another_rows_provider_message_as_proof(services: Services) -> None:
    sms = services.sms
    assert isinstance(sms, MemoryChannel)
    with services.sessions() as s, s.begin():
        p, e = add_patient(s)
        first = add_row(s, p, e, step="a").id
        second = add_row(s, p, e, step="b").id  # same text to the same patient
    run_once(services, NOW, worker_id=W, limit=1)
    sms.fail_next(1, ChannelError("HTTP 500", permanent=False, ambiguous=True))
    run_once(services, NOW, worker_id=W, limit=1)
    assert get_row(services, second).status == "in_doubt"

    reconcile_once(services, NOW + DEFAULT_POLICY.settle, worker_id=W)
    assert get_row(services, second).status == "pending"  # SM000001 belongs to `first`
    assert get_row(services, first).provider_id == "SM000001"


# ---- R3c: connection refused ---------------------------------------------------------------


def test_it_backs_off_on_connection_refused_then_dead_letters_and_the_next_message_goes(
    db_url: str, fake: HoldingTwilio
) -> None:
    services = make_services(db_url, sms=twilio_channel(closed_port_url()))
    with services.sessions() as s, s.begin():
        p, e = add_patient(s)
        failing = add_row(s, p, e, expires=NOW + timedelta(days=2)).id
        q, f = add_patient(s)
        following = add_row(s, q, f, due=NOW + timedelta(hours=3), expires=NOW + timedelta(days=2)).id
    rng = random.Random(3)
    now, delays = NOW, []
    for attempt in range(1, DEFAULT_POLICY.max_attempts + 1):
        at(services, now)
        assert run_once(services, now, worker_id=W, rng=rng) >= 1
        row = get_row(services, failing)
        assert row.attempts == attempt and row.claimed_by is None
        if attempt < DEFAULT_POLICY.max_attempts:
            assert row.status == "pending" and row.next_attempt_at is not None
            delay = row.next_attempt_at - now
            ceiling = min(timedelta(hours=1), timedelta(seconds=30) * 2**attempt)
            assert timedelta(seconds=30) <= delay <= ceiling
            delays.append(delay)
            now = row.next_attempt_at
    assert (row.status, row.status_reason.startswith("gave up after 8 attempts")) == ("dead", True)
    assert delays[-1] > delays[0]  # it backed off
    assert len(set(delays)) == len(delays)  # with jitter

    # The provider is back: the next message goes; the dead one is not retried.
    services.sms = twilio_channel(fake.url)
    later = NOW + timedelta(hours=4)
    at(services, later)
    run_once(services, later, worker_id=W)
    assert get_row(services, following).status == "sent"
    assert get_row(services, failing).status == "dead"
    assert fake.per_outbox() == {following: 1}
    services.engine.dispose()


# ---- R4: permanent errors ------------------------------------------------------------------


def test_it_marks_the_patient_opted_out_on_21610_and_holds_their_sms(
    twilio: Services, fake: HoldingTwilio
) -> None:
    with twilio.sessions() as s, s.begin():
        p, e = add_patient(s, email="ana@example.org")
        refused = add_row(s, p, e, step="a").id
        later_sms = add_row(
            s, p, e, step="b", due=NOW + timedelta(days=1), expires=NOW + timedelta(days=1, hours=6)
        ).id
        email = add_row(
            s,
            p,
            e,
            step="c",
            channel="email",
            due=NOW + timedelta(days=1),
            expires=NOW + timedelta(days=1, hours=6),
        ).id
        patient_id = p.id
    fake.script(Answer.error(400, 21610, "Attempt to send to unsubscribed recipient"))

    run_once(twilio, NOW, worker_id=W)
    with twilio.sessions() as s:
        patient = s.get(Patient, patient_id)
        assert patient is not None and patient.sms_opted_out and patient.sms_opted_out_at == NOW
        status = {r.id: (r.status, r.status_reason) for r in s.scalars(select(OutboxMessage))}
        actions = list(s.scalars(select(AuditEvent.action)))
    assert status[refused] == ("held", "patient opted out of SMS (21610)")
    assert status[later_sms] == ("held", "patient opted out of SMS")
    assert status[email][0] == "pending"
    assert "patient.sms_opted_out" in actions
    assert len(fake.creates()) == 1  # no retry

    run_once(twilio, NOW + timedelta(days=1), worker_id=W)
    assert len(fake.creates()) == 1


@pytest.mark.parametrize(("code", "phone_status"), [(21211, "invalid"), (21614, "landline")])
def test_it_flags_a_bad_number_falls_back_to_email_and_tells_the_care_team(
    twilio: Services, fake: HoldingTwilio, code: int, phone_status: str
) -> None:
    with twilio.sessions() as s, s.begin():
        p, e = add_patient(s, email="ana@example.org")
        refused = add_row(s, p, e, step="a").id
        next_day = add_row(
            s, p, e, step="b", due=NOW + timedelta(days=1), expires=NOW + timedelta(days=1, hours=6)
        ).id
        patient_id, enrollment_id = p.id, e.id
    fake.script(Answer.error(400, code, "bad number"), Answer.error(400, code, "bad number"))

    run_once(twilio, NOW, worker_id=W)  # one refusal could be Twilio's answer to everyone
    first = get_row(twilio, refused)
    assert (first.status, first.attempts, first.last_error_code) == ("pending", 0, f"?{code}")
    with twilio.sessions() as s:
        assert s.scalar(select(Alert)) is None
    confirm = refuse_again(twilio)
    row = get_row(twilio, refused)
    assert (row.status, row.last_error_code, row.attempts) == ("dead", str(code), 1)
    with twilio.sessions() as s:
        patient = s.get(Patient, patient_id)
        assert patient is not None and patient.phone_status == phone_status
        fallback = s.scalar(select(OutboxMessage).where(OutboxMessage.key == f"{enrollment_id}:a:1:email"))
        alerts = list(s.scalars(select(Alert)))
    assert fallback is not None and (fallback.status, fallback.channel) == ("pending", "email")
    assert [(a.kind, a.severity, a.status) for a in alerts] == [("contact_problem", "watch", "open")]

    run_once(twilio, confirm, worker_id=W)  # the fallback email goes at once
    assert isinstance(twilio.email, MemoryChannel)
    assert [m.outbox_id for m in twilio.email.sent] == [fallback.id]

    # The next SMS for that patient is not attempted: it falls back too, without a new alert.
    later = NOW + timedelta(days=1)
    at(twilio, later)
    run_once(twilio, later, worker_id=W)
    assert get_row(twilio, next_day).status == "skipped"
    assert len(fake.creates()) == 2
    with twilio.sessions() as s:
        assert (
            s.scalar(select(OutboxMessage.status).where(OutboxMessage.key == f"{enrollment_id}:b:1:email"))
            is not None
        )
        assert len(list(s.scalars(select(Alert)))) == 1


def test_it_opens_the_contact_alert_but_no_fallback_without_email_consent(
    twilio: Services, fake: HoldingTwilio
) -> None:
    with twilio.sessions() as s, s.begin():
        p, e = add_patient(s)
        add_row(s, p, e)
    fake.script(Answer.error(400, 21211, "bad number"), Answer.error(400, 21211, "bad number"))
    run_once(twilio, NOW, worker_id=W)
    refuse_again(twilio)
    with twilio.sessions() as s:
        assert [r.channel for r in s.scalars(select(OutboxMessage))] == ["sms"]
        assert len(list(s.scalars(select(Alert)))) == 1


def test_a_bad_number_refusal_that_does_not_come_again_is_no_bad_number(
    twilio: Services, fake: HoldingTwilio
) -> None:
    """Twilio answering 21211 once (to everyone, for a moment) must not flag the patient's
    number, fall back to email or tell nurses: the row is asked once more and goes."""
    with twilio.sessions() as s, s.begin():
        p, e = add_patient(s, email="ana@example.org")
        row_id = add_row(s, p, e).id
        patient_id = p.id
    fake.script(Answer.error(400, 21211, "bad number"), Answer.ok())

    run_once(twilio, NOW, worker_id=W)
    refuse_again(twilio)

    row = get_row(twilio, row_id)
    assert (row.status, row.attempts, row.last_error_code) == ("sent", 1, None)
    with twilio.sessions() as s:
        patient = s.get(Patient, patient_id)
        assert patient is not None and patient.phone_status == "ok"
        assert [r.channel for r in s.scalars(select(OutboxMessage))] == ["sms"]  # no fallback
        assert s.scalar(select(Alert)) is None
        confirming = s.scalars(select(AuditEvent).where(AuditEvent.action == "outbox.confirming")).all()
    assert len(confirming) == 1 and len(fake.creates()) == 2


def refuse_again(services: Services) -> object:
    """Run the dispatcher when the refused row is asked again; returns that time."""
    confirm = NOW + DEFAULT_POLICY.confirm_refusal
    assert run_once(services, confirm - timedelta(seconds=1), worker_id=W) == 0  # not before
    at(services, confirm)
    run_once(services, confirm, worker_id=W)
    return confirm


# ---- provider outages behind the circuit breaker -------------------------------------------


def test_twilio_answering_500_to_everything_costs_five_sends_not_the_queue(
    twilio: Services, fake: HoldingTwilio
) -> None:
    with twilio.sessions() as s, s.begin():
        ids = [add_row(s, *add_patient(s)).id for _ in range(20)]
    fake.script(*[Answer.server_error() for _ in range(100)])
    breakers = Breakers()

    run_once(twilio, NOW, worker_id=W, breakers=breakers)

    assert len(fake.creates()) == BreakerPolicy().faults
    rows = [get_row(twilio, i) for i in ids]
    assert sorted(r.status for r in rows).count("in_doubt") == BreakerPolicy().faults
    held = [r for r in rows if r.status == "pending"]
    assert len(held) == 20 - BreakerPolicy().faults and {r.attempts for r in held} == {0}
