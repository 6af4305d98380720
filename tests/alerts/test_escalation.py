"""R13: an unacknowledged alert climbs its ladder on time, once per step; acknowledgement (once or
twice) stops it; two sweeps racing on PostgreSQL issue each step's messages once."""

from __future__ import annotations

import threading
from collections import Counter
from datetime import timedelta
from pathlib import Path

import pytest

from checkin.alerts import lifecycle as alerts_mod
from checkin.alerts.sweeps import escalate_once
from checkin.deps import Services
from tests.alerts.support import (
    NOW,
    NURSES,
    ON_CALL_PHONE,
    add_patient,
    alerts,
    audit,
    make_services,
    reply,
    staff_rows,
)

FEVER = "I have a fever of 102 since last night"


def steps(services: Services) -> Counter[int]:
    return Counter(int(r.key.split(":")[4]) for r in staff_rows(services))


def ack(services: Services, alert_id: int, by: str, minutes: float) -> alerts_mod.StaffAction:
    with services.sessions.begin() as s:
        done = alerts_mod.acknowledge(s, alert_id, by=by, now=NOW + timedelta(minutes=minutes))
        assert done is not None
        return done


def test_it_climbs_the_urgent_ladder_at_15_and_30_minutes_once_per_step(services: Services) -> None:
    _, _, phone = add_patient(services)
    reply(services, phone, FEVER)
    for minute in (1, 5, 14.9):
        assert escalate_once(services, NOW + timedelta(minutes=minute)) == 0
    assert escalate_once(services, NOW + timedelta(minutes=15)) == len(NURSES)
    assert escalate_once(services, NOW + timedelta(minutes=16)) == 0
    assert escalate_once(services, NOW + timedelta(minutes=29)) == 0
    assert escalate_once(services, NOW + timedelta(minutes=30)) == 1
    for minute in (31, 45, 59):
        assert escalate_once(services, NOW + timedelta(minutes=minute)) == 0
    assert steps(services) == {0: 2, 1: 2, 2: 1}
    page = [r for r in staff_rows(services) if r.key.split(":")[4] == "2"]
    assert [(r.channel, r.recipient) for r in page] == [("sms", ON_CALL_PHONE)]
    second = [r for r in staff_rows(services) if r.key.split(":")[4] == "1"]
    assert all("escalation step 2" in (r.subject or "") for r in second)
    (alert,) = alerts(services)
    # The ladder does not end: the last step repeats at 60 minutes (see test_never_quiet).
    assert (alert.escalation_level, alert.next_escalation_at) == (3, NOW + timedelta(minutes=60))


def test_it_keeps_the_ladders_clock_when_the_sweep_runs_late(services: Services) -> None:
    _, _, phone = add_patient(services)
    reply(services, phone, FEVER)
    # The worker was down for 40 minutes: both overdue steps go now, each once.
    assert escalate_once(services, NOW + timedelta(minutes=40)) == len(NURSES) + 1
    assert escalate_once(services, NOW + timedelta(minutes=41)) == 0
    assert steps(services) == {0: 2, 1: 2, 2: 1}


def test_it_stops_escalating_once_acknowledged_and_a_second_ack_changes_nothing(services: Services) -> None:
    _, _, phone = add_patient(services)
    result = reply(services, phone, FEVER)
    assert result.alert_id is not None
    first = ack(services, result.alert_id, NURSES[1], 3)
    second = ack(services, result.alert_id, NURSES[0], 4)
    assert first.changed and not second.changed
    (alert,) = alerts(services)
    assert (alert.status, alert.acknowledged_by, alert.next_escalation_at) == (
        "acknowledged",
        NURSES[1],
        None,
    )
    assert alert.acknowledged_at == NOW + timedelta(minutes=3)
    for minute in (15, 30, 120):
        assert escalate_once(services, NOW + timedelta(minutes=minute)) == 0
    assert steps(services) == {0: 2}
    assert [(e.action, e.actor) for e in audit(services, "alert.ack")] == [
        ("alert.acknowledged", NURSES[1]),
        ("alert.ack_repeated", NURSES[0]),
    ]


def test_it_stops_after_an_ack_that_comes_between_two_steps(services: Services) -> None:
    _, _, phone = add_patient(services)
    result = reply(services, phone, FEVER)
    assert result.alert_id is not None
    assert escalate_once(services, NOW + timedelta(minutes=15)) == len(NURSES)
    ack(services, result.alert_id, NURSES[0], 20)
    assert escalate_once(services, NOW + timedelta(minutes=30)) == 0
    assert escalate_once(services, NOW + timedelta(hours=5)) == 0
    assert steps(services) == {0: 2, 1: 2}


def test_it_cancels_escalation_messages_not_yet_sent_when_acknowledged(services: Services) -> None:
    _, _, phone = add_patient(services)
    result = reply(services, phone, FEVER)
    assert result.alert_id is not None
    ack(services, result.alert_id, NURSES[0], 1)
    assert {r.status for r in staff_rows(services)} == {"cancelled"}


def test_it_pages_again_when_severity_rises_after_an_acknowledgement(services: Services) -> None:
    _, _, phone = add_patient(services)
    result = reply(services, phone, FEVER)
    assert result.alert_id is not None
    ack(services, result.alert_id, NURSES[0], 2)
    reply(services, phone, "now I can't pee at all", NOW + timedelta(minutes=5))
    (alert,) = alerts(services)
    assert (alert.status, alert.severity, alert.escalation_level) == ("open", "emergency", 1)
    assert (
        escalate_once(services, NOW + timedelta(minutes=15)) == 1
    )  # emergency step 2 at 10 min after the rise
    assert [k for k in (r.key for r in staff_rows(services)) if ":emergency:1:" in k] == [
        f"alert:{alert.id}:r1:emergency:1:on_call_sms:{ON_CALL_PHONE}"
    ]


def test_it_resolves_only_with_a_note_and_resolving_twice_is_harmless(services: Services) -> None:
    _, _, phone = add_patient(services)
    result = reply(services, phone, FEVER)
    assert result.alert_id is not None
    with services.sessions.begin() as s, pytest.raises(ValueError):
        alerts_mod.resolve(s, result.alert_id, by=NURSES[0], note="   ", now=NOW)
    with services.sessions.begin() as s:
        done = alerts_mod.resolve(s, result.alert_id, by=NURSES[0], note="Called; seen in clinic.", now=NOW)
        again = alerts_mod.resolve(s, result.alert_id, by=NURSES[1], note="dup", now=NOW)
        assert done is not None and done.changed and again is not None and not again.changed
    (alert,) = alerts(services)
    assert (alert.status, alert.resolved_by, alert.resolution_note) == (
        "resolved",
        NURSES[0],
        "Called; seen in clinic.",
    )
    assert escalate_once(services, NOW + timedelta(hours=1)) == 0
    # A new red flag after resolution is a new alert, notified afresh.
    reply(services, phone, FEVER, NOW + timedelta(hours=2))
    assert len(alerts(services)) == 2


@pytest.mark.postgres
def test_it_issues_each_step_once_when_sweeps_race(pg_url: str, tmp_path: Path) -> None:
    # PostgreSQL only: SQLite runs one worker, so sweeps never race there.
    services = make_services(pg_url, tmp_path)
    for _ in range(20):
        _, _, phone = add_patient(services)
        reply(services, phone, FEVER)
    barrier = threading.Barrier(4)
    errors: list[BaseException] = []

    def sweep(at: timedelta) -> None:
        try:
            barrier.wait(10)
            escalate_once(services, NOW + at)
        except BaseException as exc:
            errors.append(exc)

    for at in (timedelta(minutes=15), timedelta(minutes=30)):
        threads = [threading.Thread(target=sweep, args=(at,)) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
    assert errors == []
    keys = [r.key for r in staff_rows(services)]
    assert len(keys) == len(set(keys)) == 20 * (2 + 2 + 1)
    assert Counter(steps(services)) == {0: 40, 1: 40, 2: 20}
    escalated = list(audit(services, "alert.escalated"))
    assert len(escalated) == 40  # one audit row per alert and step: the losers issued nothing
