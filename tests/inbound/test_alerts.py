"""checkin.alerts.lifecycle: open, join, renotify for a new flag or a severity rise (never for the
same flags again); contact problems deduplicated."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import func, select

from checkin.alerts import lifecycle as alerts
from checkin.core.triage.model import Flag, Severity
from checkin.deps import Services
from checkin.inbound.process import InboundSms, handle_sms
from checkin.store.models import Alert, InboundMessage
from tests.inbound.support import (
    NOW,
    ScriptedAssess,
    add_patient,
    assessment,
    enrollment_of,
    new_sid,
)


def _inbound(s: Any, patient_id: int) -> InboundMessage:
    row = InboundMessage(
        message_sid=new_sid(),
        channel="sms",
        from_phone=None,
        body="x",
        patient_id=patient_id,
        flags=[],
        received_at=NOW,
    )
    s.add(row)
    s.flush()
    return row


def test_it_opens_an_alert_for_an_urgent_assessment(services: Services) -> None:
    with services.sessions.begin() as s:
        p = add_patient(s)
        change = alerts.raise_for_assessment(
            s,
            patient=p,
            enrollment=enrollment_of(s, p),
            inbound=_inbound(s, p.id),
            assessment=assessment(Flag.FEVER),
            now=NOW,
        )
        assert change is not None and change.opened and change.renotify
        assert (
            change.alert.kind == "red_flag"
            and change.alert.severity == "urgent"
            and change.alert.flags == ["fever"]
        )
        assert change.alert.inbound_id is not None and change.alert.status == "open"


def test_it_opens_nothing_for_a_calm_or_watch_only_assessment(services: Services) -> None:
    with services.sessions.begin() as s:
        p = add_patient(s)
        for a in (assessment(), assessment(severity=Severity.WATCH)):
            assert (
                alerts.raise_for_assessment(
                    s, patient=p, enrollment=None, inbound=_inbound(s, p.id), assessment=a, now=NOW
                )
                is None
            )


def test_it_joins_flags_and_renotifies_for_a_new_flag_or_a_rise_but_not_the_same_flag(
    services: Services,
) -> None:
    with services.sessions.begin() as s:
        p = add_patient(s)

        def raise_(a: Any, minutes: int) -> alerts.AlertChange:
            c = alerts.raise_for_assessment(
                s,
                patient=p,
                enrollment=None,
                inbound=_inbound(s, p.id),
                assessment=a,
                now=NOW + timedelta(minutes=minutes),
            )
            assert c is not None
            return c

        first = raise_(assessment(ambiguous=["numbness/weakness"]), 0)
        assert first.alert.severity == "watch"
        rise = raise_(assessment(Flag.WOUND_DRAINAGE), 1)
        new = raise_(assessment(Flag.FEVER), 2)
        same = raise_(assessment(Flag.FEVER), 3)
        top = raise_(assessment(Flag.CHEST_BREATHING), 4)
        lower = raise_(assessment(Flag.FALL), 5)
        again = raise_(assessment(Flag.FALL, Flag.FEVER), 6)
        changes = (first, rise, new, same, top, lower, again)
        assert [c.opened for c in changes] == [True] + [False] * 6
        assert [c.renotify for c in changes] == [True, True, True, False, True, True, False]
        # A rise restarts the ladder; a new flag on the open alert is news (the ladder keeps on).
        assert [c.news for c in changes] == [False, False, True, False, False, True, False]
        alert = lower.alert
        assert alert.severity == "emergency"
        assert alert.flags == [
            "ambiguous:numbness/weakness",
            "chest_breathing",
            "fall",
            "fever",
            "wound_drainage",
        ]
        assert s.scalar(select(func.count()).select_from(Alert)) == 1


def test_it_opens_a_new_alert_once_the_old_one_is_resolved(services: Services) -> None:
    with services.sessions.begin() as s:
        p = add_patient(s)
        c1 = alerts.raise_for_assessment(
            s,
            patient=p,
            enrollment=None,
            inbound=_inbound(s, p.id),
            assessment=assessment(Flag.FEVER),
            now=NOW,
        )
        assert c1 is not None
        c1.alert.status = "resolved"
        c2 = alerts.raise_for_assessment(
            s,
            patient=p,
            enrollment=None,
            inbound=_inbound(s, p.id),
            assessment=assessment(Flag.FEVER),
            now=NOW + timedelta(hours=1),
        )
        assert c2 is not None and c2.opened and c2.alert.id != c1.alert.id


def test_it_keeps_one_contact_problem_per_patient_while_open(services: Services) -> None:
    with services.sessions.begin() as s:
        p = add_patient(s)
        a = alerts.open_contact_problem(s, patient=p, reason="shared_phone", now=NOW)
        b = alerts.open_contact_problem(s, patient=p, reason="optout_candidate", now=NOW)
        assert a.opened and not b.opened and not b.renotify and a.alert.id == b.alert.id
        assert b.alert.flags == ["optout_candidate", "shared_phone"] and b.alert.severity == "watch"


def test_it_suppresses_a_storm_of_five_red_flags_into_one_alert(services: Services) -> None:
    with services.sessions.begin() as s:
        add_patient(s)
    texts = {
        "drainage": assessment(Flag.WOUND_DRAINAGE),
        "drainage again": assessment(Flag.WOUND_DRAINAGE),
        "still draining": assessment(Flag.WOUND_DRAINAGE),
        "fever": assessment(Flag.FEVER),
        "fever and drainage": assessment(Flag.FEVER, Flag.WOUND_DRAINAGE),
        "pain": assessment(Flag.SEVERE_PAIN),
        "breathing": assessment(Flag.CHEST_BREATHING),
    }
    fake = ScriptedAssess(texts)
    results = [
        handle_sms(
            services, InboundSms(new_sid(), "+16175550123", t), NOW + timedelta(minutes=i), assess=fake
        )
        for i, t in enumerate(texts)
    ]
    assert [r.alert_opened for r in results] == [True] + [False] * 6
    # The same flags again are one page; a new flag or a rise is told at once.
    assert [r.renotify for r in results] == [True, False, False, True, False, True, True]
    assert len({r.alert_id for r in results}) == 1
    with services.sessions() as s:
        (alert,) = s.scalars(select(Alert)).all()
        assert alert.severity == "emergency"
        assert alert.flags == ["chest_breathing", "fever", "severe_pain", "wound_drainage"]
