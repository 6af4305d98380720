"""docs/reliability.md R7b: status callbacks repeat and arrive out of order; a terminal state wins."""

from __future__ import annotations

from itertools import permutations

import pytest
from sqlalchemy import func, select

from checkin.channels import OutgoingMessage, Receipt
from checkin.deps import Services
from checkin.outbound.delivery import record_status
from checkin.outbound.dispatch import run_once
from checkin.store.models import Alert, DeliveryEvent
from tests.outbound.support import NOW, add_patient, add_row, get_row


def sent_row(services: Services, provider_id: str = "SM1", **kw: object) -> int:
    with services.sessions() as s, s.begin():
        p, e = add_patient(s)
        return add_row(
            s, p, e, status="sent", provider_id=provider_id, sent_at=NOW, delivery_status="queued", **kw
        ).id  # type: ignore[arg-type]


def callback(
    services: Services, row_id: int | None, status: str, code: str | None = None, provider_id: str = "SM1"
) -> object:
    with services.sessions() as s, s.begin():
        return record_status(s, provider_id, row_id, status, code, NOW)


@pytest.mark.parametrize("order", list(permutations(["queued", "sent", "delivered"])))
def test_it_ends_delivered_whatever_order_the_callbacks_come_in(
    services: Services, order: tuple[str, ...]
) -> None:
    row_id = sent_row(services)
    for status in order:
        callback(services, row_id, status)
    assert get_row(services, row_id).delivery_status == "delivered"


@pytest.mark.parametrize("order", list(permutations(["sent", "failed", "delivered"])))
def test_it_keeps_a_failure_whatever_arrives_after_it(services: Services, order: tuple[str, ...]) -> None:
    # A two-segment message: one segment failed, the other was delivered.
    row_id = sent_row(services)
    for status in order:
        callback(services, row_id, status, "30008" if status == "failed" else None)
    assert get_row(services, row_id).delivery_status == "failed"
    with services.sessions() as s:
        assert s.scalar(select(DeliveryEvent.error_code).where(DeliveryEvent.status == "failed")) == "30008"


def test_it_stores_a_repeated_callback_once(services: Services) -> None:
    row_id = sent_row(services)
    first = callback(services, row_id, "delivered")
    again = callback(services, row_id, "delivered")
    assert (first.new, again.new) == (True, False)  # type: ignore[attr-defined]
    with services.sessions() as s:
        assert s.scalar(select(func.count()).select_from(DeliveryEvent)) == 1


def test_it_marks_sent_a_row_whose_receipt_was_never_recorded(services: Services) -> None:
    # The worker died after Twilio accepted the message; the callback proves it went.
    with services.sessions() as s, s.begin():
        p, e = add_patient(s)
        row_id = add_row(s, p, e, status="in_doubt", attempts=1, last_attempt_at=NOW).id
    callback(services, row_id, "sent", provider_id="SMlost")
    row = get_row(services, row_id)
    assert (row.status, row.provider_id, row.delivery_status) == ("sent", "SMlost", "sent")


def test_it_finds_the_row_by_provider_id_when_the_url_names_another(services: Services) -> None:
    ours = sent_row(services, "SMours")
    other = sent_row(services, "SMother")
    callback(services, other, "delivered", provider_id="SMours")
    assert get_row(services, ours).delivery_status == "delivered"
    assert get_row(services, other).delivery_status == "queued"


def test_it_opens_one_contact_problem_alert_for_an_unreachable_number(services: Services) -> None:
    with services.sessions() as s, s.begin():
        p, e = add_patient(s)
        a = add_row(s, p, e, step="a", status="sent", provider_id="SMa").id
        b = add_row(s, p, e, step="b", status="sent", provider_id="SMb").id
    callback(services, a, "undelivered", "30003", provider_id="SMa")
    callback(services, b, "failed", "30005", provider_id="SMb")
    callback(services, None, "failed", "30007", provider_id="SMb")  # carrier filter: not the number
    with services.sessions() as s:
        alerts = list(s.scalars(select(Alert)))
    assert [(x.kind, x.severity, x.status) for x in alerts] == [("contact_problem", "watch", "open")]


def test_it_does_not_step_back_from_a_callback_that_beat_the_receipt(services: Services) -> None:
    with services.sessions() as s, s.begin():
        p, e = add_patient(s)
        row_id = add_row(s, p, e).id

    class Fast:
        def send(self, message: OutgoingMessage) -> Receipt:
            callback(services, message.outbox_id, "delivered", provider_id="SMfast")
            return Receipt("SMfast", "queued")

    services.sms = Fast()
    run_once(services, NOW, worker_id="w")
    row = get_row(services, row_id)
    assert (row.status, row.provider_id, row.delivery_status) == ("sent", "SMfast", "delivered")
