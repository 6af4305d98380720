"""Real MLLP frames over TCP, sent with the ``hl7`` package's client, to the asyncio listener."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from datetime import date

import hl7
import pytest
from sqlalchemy import func, select
from sqlalchemy.engine import Engine

from checkin.states import EnrollmentStatus
from checkin.store.db import make_engine, session_factory
from checkin.store.hl7_messages import Hl7Message
from checkin.store.models import Enrollment, OutboxMessage
from tests.integrations.support import Listener, adt, feed, pid, send, siu


@pytest.fixture
def listener(engine: Engine, default_schedules: dict) -> Iterator[Listener]:
    server = Listener(feed(engine, default_schedules))
    yield server
    server.close()


def _msa(ack: str) -> tuple[str, str]:
    msg = hl7.parse(ack)
    return str(msg["MSA.F1"]), str(msg["MSA.F2"])


def _enrollments(engine: Engine) -> list[Enrollment]:
    with session_factory(engine)() as s:
        return list(s.scalars(select(Enrollment)))


def test_the_issue_walk_over_one_connection(listener: Listener, engine: Engine) -> None:
    pv1 = "|".join(["PV1", "1", "I", *[""] * 42, "20260326120000"])
    acks = send(
        listener.port,
        siu(control="W1"),
        siu("S13", control="W2", start="20260324070000"),
        adt("A03", pid(), pv1, control="W3"),
        siu("S15", control="W4"),
    )
    assert [_msa(a) for a in acks] == [("AA", "W1"), ("AA", "W2"), ("AA", "W3"), ("AA", "W4")]
    (e,) = _enrollments(engine)
    assert (e.surgery_date, e.discharge_date, e.status) == (
        date(2026, 3, 24),
        date(2026, 3, 26),
        EnrollmentStatus.WITHDRAWN,
    )


def test_a_resend_over_a_new_connection_gets_the_same_ack(listener: Listener, engine: Engine) -> None:
    (first,) = send(listener.port, siu(control="R1"))
    with session_factory(engine)() as s:
        planned = s.scalar(select(func.count()).select_from(OutboxMessage))
    (again,) = send(listener.port, siu(control="R1"))
    assert again == first
    with session_factory(engine)() as s:
        assert s.scalar(select(func.count()).select_from(OutboxMessage)) == planned


def test_a_malformed_message_gets_an_error_ack_naming_the_field(listener: Listener, engine: Engine) -> None:
    acks = send(
        listener.port,
        siu(control="B1", pid_segment="PID|1||^^^RIV^MR||Reyes^Maria"),
        siu(control="B2", start="tomorrow"),
        siu(control="B3", code="12345^Other^CPT"),
        "MSH|^~\\&|EPIC|RIVERSIDE|CHECKIN|RIVERSIDE-SPINE|20260303||ORU^R01|B4|P|2.5.1\rPID|1||1\r",
    )
    assert [_msa(a)[0] for a in acks] == ["AE", "AE", "AE", "AR"]
    assert "ERR||PID^1^3|101^^HL70357|E" in acks[0] and "AIS-4: 'tomorrow'" in acks[1]
    assert "AIS-3: code '12345'" in acks[2] and "MSH-9" in acks[3]
    assert _enrollments(engine) == []


def test_a_frame_that_is_not_mllp_closes_the_connection_without_an_ack(listener: Listener) -> None:
    with socket.create_connection(("127.0.0.1", listener.port), timeout=5) as sock:
        sock.sendall(b"MSH|no start block\x1c\r")
        assert sock.recv(100) == b""
    assert _msa(send(listener.port, siu(control="OK1"))[0]) == ("AA", "OK1")  # the listener still serves


@pytest.mark.postgres
def test_two_listeners_on_postgresql_receiving_the_same_message_enroll_once(
    pg_url: str, default_schedules: dict
) -> None:
    engines = [make_engine(pg_url), make_engine(pg_url)]
    listeners = [Listener(feed(e, default_schedules)) for e in engines]
    try:
        for round_ in range(5):  # several rounds: the race is won each way at least sometimes
            message = siu(control=f"TWIN{round_}", pid_segment=pid(f"5000{round_}"))
            barrier = threading.Barrier(2)
            acks: list[str] = ["", ""]

            def push(
                i: int, msg: str = message, gate: threading.Barrier = barrier, out: list[str] = acks
            ) -> None:
                gate.wait()
                out[i] = send(listeners[i].port, msg)[0]

            threads = [threading.Thread(target=push, args=(i,)) for i in range(2)]
            for t in threads:
                t.start()
            for t in threads:
                t.join(30)
            assert acks[0] == acks[1] and _msa(acks[0]) == ("AA", f"TWIN{round_}")
        with session_factory(engines[0])() as s:
            assert s.scalar(select(func.count()).select_from(Enrollment)) == 5
            assert s.scalar(select(func.count()).select_from(Hl7Message)) == 5
    finally:
        for server in listeners:
            server.close()
        for e in engines:
            e.dispose()
