"""How many statements one reply costs: each is a round trip to the database in the webhook
(issue 15: 400 replies/s on two cores). A change that adds one fails here; raise the bound only
with the reason in the commit."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

from sqlalchemy import event

from checkin.core.triage.model import Flag, Severity
from checkin.deps import Services
from checkin.inbound.process import InboundSms, handle_sms
from tests.inbound.support import NOW, ScriptedAssess, add_outbox, add_patient, assessment, new_sid


@contextmanager
def statements(services: Services) -> Iterator[list[str]]:
    """The statements the engine sends meanwhile (BEGIN and COMMIT aside: PostgreSQL's driver
    sends those without the event, SQLite's BEGIN IMMEDIATE goes through it)."""
    seen: list[str] = []

    def note(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if not statement.lstrip().upper().startswith("BEGIN"):
            seen.append(statement.split(None, 1)[0].upper())

    event.listen(services.engine, "before_cursor_execute", note)
    try:
        yield seen
    finally:
        event.remove(services.engine, "before_cursor_execute", note)


def ana_with_a_question(services: Services) -> None:
    with services.sessions.begin() as s:
        add_outbox(s, add_patient(s), sent_at=NOW - timedelta(hours=1))


def reply(services: Services, body: str, assess: ScriptedAssess) -> Any:
    return handle_sms(
        services, InboundSms(message_sid=new_sid(), from_phone="+16175550123", body=body), NOW, assess=assess
    )


def postgres(services: Services) -> bool:
    return services.engine.dialect.name == "postgresql"


def test_a_calm_answer_costs_two_statements_on_postgresql_five_on_sqlite(services: Services) -> None:
    ana_with_a_question(services)
    with statements(services) as seen:
        result = reply(services, "98.6", ScriptedAssess())
    assert result.outbox_id is not None and result.alert_id is None  # answered, nothing alarming
    if postgres(services):
        # store the message and find the patient with their questions (a WITH of the INSERT);
        # save the outcome, mark the question answered and audit (a WITH of two UPDATEs)
        assert seen == ["WITH", "WITH"]
    else:  # SQLite has no INSERT or UPDATE inside WITH
        assert seen == ["INSERT", "SELECT", "UPDATE", "UPDATE", "INSERT"]


def test_an_urgent_answer_that_opens_an_alert_costs_two_more(services: Services) -> None:
    ana_with_a_question(services)
    urgent = ScriptedAssess({"101.9": assessment(Flag.FEVER, severity=Severity.URGENT)})
    with statements(services) as seen:
        result = reply(services, "101.9", urgent)
    assert result.alert_opened
    # as a calm one, and: find the patient's unresolved alert, open one (its audit row is
    # written with the reply's)
    if postgres(services):
        assert seen == ["WITH", "SELECT", "INSERT", "WITH"]
    else:
        assert seen == ["INSERT", "SELECT", "SELECT", "INSERT", "UPDATE", "UPDATE", "INSERT"]


def test_the_answer_is_saved_with_the_outcome(services: Services) -> None:
    # Folding the answer into the outcome's statement must still close the question: a second
    # reply finds no open question to answer.
    ana_with_a_question(services)
    first = reply(services, "98.6", ScriptedAssess())
    second = reply(services, "99.1", ScriptedAssess())
    assert first.outbox_id is not None
    assert second.outbox_id is None
