"""Alerts never go quiet: a new red flag on an open or acknowledged alert notifies again, once
per recipient and round; the last ladder step repeats until someone acknowledges; two sweeps
racing on PostgreSQL issue each round's and each repeat's messages once."""

from __future__ import annotations

import threading
from collections import Counter
from datetime import timedelta
from pathlib import Path

import pytest

from checkin.alerts import lifecycle as alerts_mod
from checkin.alerts.sweeps import escalate_once
from checkin.core.care_teams import parse_care_teams
from checkin.deps import Services
from checkin.errors import ScheduleErrors
from tests.alerts.support import (
    CARE_TEAMS,
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
FELL = "I fell and can't get up"
URINE = "I can't pee and I'm numb between my legs"


def at(minutes: float) -> timedelta:
    return timedelta(minutes=minutes)


def ack(services: Services, alert_id: int, by: str, minutes: float) -> None:
    with services.sessions.begin() as s:
        assert alerts_mod.acknowledge(s, alert_id, by=by, now=NOW + at(minutes)) is not None


def rounds(services: Services) -> Counter[tuple[str, str]]:
    """(round, recipient) -> messages."""
    return Counter((r.key.split(":")[2], r.recipient or "") for r in staff_rows(services))


def test_a_second_red_flag_after_ack_notifies_each_nurse_once_and_a_third_does_not_storm(
    services: Services,
) -> None:
    _, _, phone = add_patient(services)
    first = reply(services, phone, FEVER)
    assert first.alert_id is not None
    ack(services, first.alert_id, NURSES[0], 2)
    second = reply(services, phone, FEVER, NOW + at(5))
    assert second.alert_id == first.alert_id and second.renotify
    (alert,) = alerts(services)
    assert (alert.status, alert.escalation_round, alert.escalation_level) == ("open", 1, 1)
    assert (alert.acknowledged_by, alert.acknowledged_at) == (None, None)
    assert rounds(services) == {
        ("r0", NURSES[0]): 1,
        ("r0", NURSES[1]): 1,
        ("r1", NURSES[0]): 1,
        ("r1", NURSES[1]): 1,
    }
    # The same red flag again while the round is open: joined, nobody paged again.
    third = reply(services, phone, FEVER, NOW + at(6))
    assert not third.renotify
    assert escalate_once(services, NOW + at(7)) == 0
    assert sum(rounds(services).values()) == 4
    joined = list(audit(services, "alert.joined"))
    assert [(e.detail or {}).get("new_round") for e in joined] == [True, False]


def test_a_new_round_tells_the_assignee_and_not_the_whole_team(services: Services) -> None:
    _, _, phone = add_patient(services)
    first = reply(services, phone, FEVER)
    assert first.alert_id is not None
    with services.sessions.begin() as s:
        assert alerts_mod.assign(s, first.alert_id, to=NURSES[1], now=NOW + at(1)) is not None
    ack(services, first.alert_id, NURSES[1], 2)
    second = reply(services, phone, FELL, NOW + at(3))
    assert second.renotify
    r1 = [r for r in staff_rows(services) if r.key.split(":")[2] != "r0"]
    assert r1, "the new flag notified nobody"
    emails = [r.recipient for r in r1 if r.channel == "email"]
    assert emails == [NURSES[1]]  # the assignee, not the whole team
    (alert,) = alerts(services)
    assert alert.status == "open" and alert.escalation_round == 1


def test_the_last_step_repeats_at_the_interval_and_stops_on_ack(services: Services) -> None:
    _, _, phone = add_patient(services)
    result = reply(services, phone, FEVER)
    assert result.alert_id is not None
    assert escalate_once(services, NOW + at(30)) == len(NURSES) + 1  # steps 1 and 2 overdue
    assert escalate_once(services, NOW + at(59)) == 0
    assert escalate_once(services, NOW + at(60)) == 1  # repeat of the on-call page
    assert escalate_once(services, NOW + at(61)) == 0
    assert escalate_once(services, NOW + at(90)) == 1
    pages = [r for r in staff_rows(services) if r.channel == "sms"]
    assert [r.recipient for r in pages] == [ON_CALL_PHONE] * 3
    assert len({r.key for r in pages}) == 3
    assert len(audit(services, "alert.repeated")) == 2
    ack(services, result.alert_id, NURSES[0], 95)
    for minute in (120, 150, 600):
        assert escalate_once(services, NOW + at(minute)) == 0
    assert len([r for r in staff_rows(services) if r.channel == "sms"]) == 3


def test_a_late_sweep_sends_one_repeat_not_a_burst(services: Services) -> None:
    _, _, phone = add_patient(services)
    reply(services, phone, FEVER)
    escalate_once(services, NOW + at(30))
    before = len(staff_rows(services))
    assert escalate_once(services, NOW + at(60 + 30 * 10 + 5)) == 1  # worker down for 5 hours
    assert len(staff_rows(services)) == before + 1
    # And the clock is kept: the next repeat is at the next 30-minute mark, not 30 minutes from now.
    assert escalate_once(services, NOW + at(60 + 30 * 11 - 1)) == 0
    assert escalate_once(services, NOW + at(60 + 30 * 11)) == 1


def test_repeat_every_is_read_and_validated_with_file_and_line() -> None:
    text = CARE_TEAMS.replace(
        "    on_call: {name: On call", "    repeat_every: 45m\n    on_call: {name: On call", 1
    )
    team = parse_care_teams(text, "care-teams.yaml").for_name("spine")
    assert (team.repeat("urgent"), team.repeat("emergency"), team.repeat("watch")) == (at(45), at(45), None)
    assert parse_care_teams(CARE_TEAMS, "care-teams.yaml").for_name("spine").repeat("urgent") == at(30)
    for bad, why in (("soon", "duration"), ("2m", "at least 5m")):
        broken = CARE_TEAMS.replace(
            "    on_call: {name: On call", f"    repeat_every: {bad}\n    on_call: {{name: On call", 1
        )
        line = broken.splitlines().index(f"    repeat_every: {bad}") + 1
        with pytest.raises(ScheduleErrors) as caught:
            parse_care_teams(broken, "care-teams.yaml")
        assert f"care-teams.yaml:{line}" in str(caught.value) and why in str(caught.value)
        assert "repeat_every" in str(caught.value)


@pytest.mark.postgres
def test_new_rounds_and_repeats_are_issued_once_when_sweeps_race(pg_url: str, tmp_path: Path) -> None:
    services = make_services(pg_url, tmp_path)
    ids = []
    for _ in range(10):
        _, _, phone = add_patient(services)
        result = handle_without_notifying(services, phone)
        ids.append((result, phone))
    barrier = threading.Barrier(4)
    errors: list[BaseException] = []

    def sweep(when: timedelta) -> None:
        try:
            barrier.wait(10)
            escalate_once(services, NOW + when)
        except BaseException as exc:
            errors.append(exc)

    def race(when: timedelta) -> None:
        threads = [threading.Thread(target=sweep, args=(when,)) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)

    race(at(0))
    for alert_id, _ in ids:
        ack(services, alert_id, NURSES[0], 1)
    for alert_id, phone in ids:
        from checkin.inbound.process import InboundSms, handle_sms

        handle_sms(
            services,
            InboundSms(message_sid=f"SMrace{alert_id:026d}", from_phone=phone, body=URINE),
            NOW + at(2),
        )
    for when in (at(2), at(12), at(41)):  # round 1 (emergency, from minute 2): steps 0 and 1
        race(when)
    race(at(42))  # the last step's first repeat: 2 + 10 + 30 minutes
    assert errors == []
    keys = [r.key for r in staff_rows(services)]
    assert len(keys) == len(set(keys))
    per_alert = Counter(k.split(":")[1] for k in keys)
    # r0: 2 nurses; r1 emergency: 2 nurses + on-call, on-call at 10m, one repeat at 40m.
    assert set(per_alert.values()) == {2 + 3 + 1 + 1}


def handle_without_notifying(services: Services, phone: str) -> int:
    from checkin.inbound.process import InboundSms, handle_sms

    result = handle_sms(
        services, InboundSms(message_sid=f"SMw{phone[1:]:>029}", from_phone=phone, body=FEVER), NOW
    )
    assert result.alert_id is not None
    return int(result.alert_id)


def test_a_new_flag_on_an_open_alert_is_told_at_once_and_the_ladder_keeps_its_clock(
    services: Services,
) -> None:
    _, _, phone = add_patient(services)
    first = reply(services, phone, FEVER)
    assert first.alert_id is not None
    assert escalate_once(services, NOW + at(30)) == len(NURSES) + 1  # steps 1 and 2
    (before,) = alerts(services)
    level, due = before.escalation_level, before.next_escalation_at
    fell = reply(services, phone, FELL, NOW + at(35))
    assert fell.renotify and fell.alert_id == first.alert_id
    (alert,) = alerts(services)
    assert (alert.status, alert.escalation_round) == ("open", 1)
    assert (alert.escalation_level, alert.next_escalation_at) == (level, due)  # no restart
    assert rounds(services)[("r1", NURSES[0])] == 1 and rounds(services)[("r1", NURSES[1])] == 1
    # The same flag again, and the first one again: storm suppression, nobody paged.
    total = sum(rounds(services).values())
    for minute, text in ((36, FELL), (37, FEVER)):
        assert not reply(services, phone, text, NOW + at(minute)).renotify
    assert sum(rounds(services).values()) == total
    # The ladder's repeat comes on its old clock (minute 60), once.
    assert escalate_once(services, NOW + at(59)) == 0
    assert escalate_once(services, NOW + at(60)) == 1
    assert [(e.detail or {}).get("news") for e in audit(services, "alert.joined")] == [True, False, False]


def test_news_on_an_assigned_open_alert_goes_to_the_assignee(services: Services) -> None:
    _, _, phone = add_patient(services)
    first = reply(services, phone, FEVER)
    assert first.alert_id is not None
    with services.sessions.begin() as s:
        assert alerts_mod.assign(s, first.alert_id, to=NURSES[1], now=NOW + at(1)) is not None
    assert reply(services, phone, FELL, NOW + at(3)).renotify
    news = [r for r in staff_rows(services) if r.key.split(":")[2] == "r1"]
    assert [(r.channel, r.recipient) for r in news] == [("email", NURSES[1])]
