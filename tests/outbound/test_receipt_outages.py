"""A receipt survives a database outage of any length: the provider call happened, so its
outcome is stored when the database returns, and a row is ``sent`` without its provider id
only when the schema refuses the value (issue 15; the old fallback fired after ~3.5 s of a
plain outage).

Failures are injected at the engine (``before_cursor_execute``) as the driver's own errors,
so SQLAlchemy wraps and classifies them exactly as it does a real outage.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import event

from checkin.channels.memory import MemoryChannel
from checkin.deps import Services
from checkin.outbound.dispatch import run_once
from tests.outbound.support import NOW, add_patient, add_row, get_row

W = "worker-a"


class FailingReceipts:
    """Makes the next ``times`` receipt writes (the UPDATE that stores a provider id) fail
    with ``make_error(dbapi)``."""

    def __init__(self, services: Services, times: int, make_error: Callable[[Any], Exception]) -> None:
        self.left = times
        self.failed = 0
        self._dbapi = services.engine.dialect.loaded_dbapi
        self._make_error = make_error
        event.listen(services.engine, "before_cursor_execute", self._before)

    def _before(self, conn: object, cursor: object, statement: str, *args: object) -> None:
        if (
            self.left
            # On PostgreSQL the receipt's UPDATE is the CTE of its audit row's INSERT.
            and " ".join(statement.split())
            .upper()
            .startswith(("UPDATE OUTBOX", "WITH SENT AS (UPDATE OUTBOX"))
            and "provider_id" in statement
        ):
            self.left -= 1
            self.failed += 1
            raise self._make_error(self._dbapi)


OUTAGES: dict[str, Callable[[Any], Exception]] = {
    "server gone": lambda dbapi: dbapi.OperationalError("server closed the connection unexpectedly"),
    "connection closed": lambda dbapi: dbapi.InterfaceError("connection already closed"),
}


@pytest.mark.parametrize("kind", OUTAGES)
def test_a_receipt_is_stored_after_an_outage_longer_than_any_retry_budget(
    services: Services, kind: str
) -> None:
    with services.sessions() as s, s.begin():
        row_id = add_row(s, *add_patient(s)).id
    outage = FailingReceipts(services, times=40, make_error=OUTAGES[kind])
    waits: list[float] = []

    run_once(services, NOW, worker_id=W, outage_sleep=waits.append)

    row = get_row(services, row_id)
    assert (row.status, row.provider_id) == ("sent", "SM000001")
    assert row.status_reason is None or "not stored" not in row.status_reason
    assert outage.failed == 40 and len(waits) == 40
    assert sum(waits) > 60  # a minute of outage, far past the old ~3.5 s fallback
    assert max(waits) <= 2.0  # but the database is tried again every couple of seconds
    assert isinstance(services.sms, MemoryChannel) and len(services.sms.attempts) == 1


def test_only_a_refusal_by_the_schema_marks_it_sent_without_the_receipt(services: Services) -> None:
    with services.sessions() as s, s.begin():
        row_id = add_row(s, *add_patient(s)).id
    FailingReceipts(services, times=1000, make_error=lambda dbapi: dbapi.DataError("value too long"))
    waits: list[float] = []

    run_once(services, NOW, worker_id=W, outage_sleep=waits.append)

    row = get_row(services, row_id)
    assert (row.status, row.provider_id) == ("sent", None)
    assert row.status_reason == "sent; receipt not stored (DataError)"
    assert waits == []  # a refusal is not waited out
