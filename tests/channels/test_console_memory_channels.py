"""ConsoleChannel and MemoryChannel behaviour beyond the shared contract."""

from __future__ import annotations

import io
import threading
from datetime import UTC, datetime, timedelta

import pytest

from checkin.channels import Channel, OutgoingMessage, ReconcilableChannel
from checkin.channels.console import ConsoleChannel
from checkin.channels.memory import MemoryChannel
from checkin.clock import ManualClock
from checkin.errors import ChannelError

START = datetime(2026, 5, 4, 14, 0, tzinfo=UTC)
TRANSIENT = ChannelError("rate limited", permanent=False, code="20429", retry_after=3.0)
PERMANENT = ChannelError("unsubscribed", permanent=True, code="21610")


def sms(outbox_id: int = 1, to: str = "+15005550006", text: str = "Drink water.") -> OutgoingMessage:
    return OutgoingMessage(outbox_id=outbox_id, to=to, channel="sms", text=text, reference=f"P-{outbox_id}")


def email(outbox_id: int, to: str, text: str, subject: str, html: str | None = None) -> OutgoingMessage:
    return OutgoingMessage(
        outbox_id=outbox_id,
        to=to,
        channel="email",
        text=text,
        subject=subject,
        html=html,
        reference=f"P-{outbox_id}",
    )


def test_it_prints_one_block_per_message_with_counting_ids() -> None:
    out = io.StringIO()
    console = ConsoleChannel(out, reveal=True)
    mail = email(8, "p@example.org", "Line one\nLine two", "Visit", html="<p>x</p>")

    receipts = [console.send(sms(outbox_id=7)), console.send(mail)]

    assert [r.provider_id for r in receipts] == ["console-1", "console-2"]
    first, second = out.getvalue().split("----- console-2")
    assert "sms outbox=7 ref=P-7" in first and "to: +15005550006" in first
    assert "Drink water." in first and "subject:" not in first
    assert "email outbox=8 ref=P-8" in second
    assert "subject: Visit" in second and "Line one\nLine two" in second
    assert "[html alternative: 8 characters, not shown]" in second


def test_it_redacts_like_a_log_unless_told_to_reveal() -> None:
    out = io.StringIO()
    console = ConsoleChannel(out)
    console.send(sms(outbox_id=3, to="+16175550142", text="My fever is 103 and my wound leaks"))
    console.send(email(4, "ana.lopez@mail.test", "Hi Ana", "Ana, day 3"))
    printed = out.getvalue()
    assert "sms outbox=3 ref=P-3" in printed and "to: ###########" in printed
    assert "to: …@mail.test" in printed and "ana.lopez" not in printed
    for secret in ("6175550142", "fever", "Hi Ana", "Ana, day 3"):
        assert secret not in printed
    assert "[text: 34 characters, redacted; reveal=True prints it]" in printed


def test_it_numbers_console_messages_uniquely_across_threads() -> None:
    console = ConsoleChannel(io.StringIO())
    ids: list[str] = []

    def send_many() -> None:
        for i in range(50):
            ids.append(console.send(sms(outbox_id=i)).provider_id)

    threads = [threading.Thread(target=send_many) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert sorted(ids) == sorted(f"console-{n}" for n in range(1, 201))


def test_it_satisfies_the_channel_protocols() -> None:
    assert isinstance(ConsoleChannel(io.StringIO()), Channel)
    assert isinstance(MemoryChannel(), ReconcilableChannel)


def test_it_records_sent_messages_in_order() -> None:
    memory = MemoryChannel()
    messages = [sms(outbox_id=i) for i in range(3)]

    for m in messages:
        memory.send(m)

    assert memory.sent == messages
    assert memory.attempts == messages


def test_it_fails_the_next_n_sends_then_recovers() -> None:
    memory = MemoryChannel()
    memory.fail_next(2, TRANSIENT)

    errors = []
    for i in range(2):
        with pytest.raises(ChannelError) as caught:
            memory.send(sms(outbox_id=i))
        errors.append(caught.value)
    memory.send(sms(outbox_id=9))

    assert [(e.code, e.retry_after, e.permanent) for e in errors] == [("20429", 3.0, False)] * 2
    assert errors[0] is not errors[1] and errors[0] is not TRANSIENT
    assert [m.outbox_id for m in memory.sent] == [9]
    assert len(memory.attempts) == 3


def test_it_fails_one_recipient_only() -> None:
    memory = MemoryChannel()
    memory.fail_for("+15005550009", PERMANENT)

    memory.send(sms(outbox_id=1))
    for outbox_id in (2, 3):
        with pytest.raises(ChannelError) as caught:
            memory.send(sms(outbox_id=outbox_id, to="+15005550009"))
        assert caught.value.code == "21610"

    assert [m.outbox_id for m in memory.sent] == [1]


def test_it_fails_one_recipient_a_limited_number_of_times() -> None:
    memory = MemoryChannel()
    memory.fail_for("+15005550009", TRANSIENT, times=1)

    with pytest.raises(ChannelError):
        memory.send(sms(outbox_id=1, to="+15005550009"))
    memory.send(sms(outbox_id=2, to="+15005550009"))

    assert [m.outbox_id for m in memory.sent] == [2]


def test_it_clears_scripted_failures() -> None:
    memory = MemoryChannel()
    memory.fail_next(3, TRANSIENT)
    memory.fail_for("+15005550006", PERMANENT)

    memory.clear_failures()

    assert memory.send(sms()).provider_id


def test_it_records_an_ambiguous_failure_that_was_delivered() -> None:
    clock = ManualClock(START)
    memory = MemoryChannel(clock)
    memory.fail_next(1, ChannelError("read timeout", permanent=False, ambiguous=True), delivered=True)

    with pytest.raises(ChannelError) as caught:
        memory.send(sms(text="Any fever today?"))

    assert caught.value.ambiguous
    [held] = memory.list_recent("+15005550006", START)
    assert (held.body, held.date_created) == ("Any fever today?", START)


def test_it_lists_by_recipient_and_time_newest_first() -> None:
    clock = ManualClock(START)
    memory = MemoryChannel(clock)
    first = memory.send(sms(outbox_id=1))
    clock.advance(timedelta(minutes=10))
    second = memory.send(sms(outbox_id=2))
    memory.send(sms(outbox_id=3, to="+15005550009"))

    assert [m.provider_id for m in memory.list_recent("+15005550006", START)] == [
        second.provider_id,
        first.provider_id,
    ]
    assert [m.provider_id for m in memory.list_recent("+15005550006", START + timedelta(minutes=5))] == [
        second.provider_id
    ]


def test_it_rejects_a_negative_failure_count() -> None:
    with pytest.raises(ValueError):
        MemoryChannel().fail_next(-1, TRANSIENT)


def test_it_keeps_recipient_and_text_out_of_repr() -> None:
    text = repr(sms(to="+15005550006", text="Any numbness in your legs?"))

    assert "+15005550006" not in text and "numbness" not in text
    assert "outbox_id=1" in text and "P-1" in text


def test_it_rejects_an_unknown_channel_name() -> None:
    with pytest.raises(ValueError):
        OutgoingMessage(
            outbox_id=1,
            to="x",
            channel="fax",
            text="t",  # type: ignore[arg-type]
            reference="r",
        )
