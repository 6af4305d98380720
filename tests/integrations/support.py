"""HL7 v2 test messages as an EHR's interface engine sends them, and a Feed on a database."""

from __future__ import annotations

from collections.abc import Mapping
from itertools import count

from sqlalchemy.engine import Engine

from checkin.clock import ManualClock
from checkin.content.hl7_mapping import read_hl7_mapping
from checkin.core.schedule import Schedule
from checkin.integrations.hl7.apply import Site
from checkin.integrations.hl7.feed import Feed
from checkin.store.db import session_factory
from tests.support import NOW, ROOT

FACILITY = "RIVERSIDE-SPINE"
_ids = count(1)

MSH = "MSH|^~\\&|EPIC|RIVERSIDE|CHECKIN|{facility}|20260303100000||{type}|{control_id}|P|2.5.1"
PID = "PID|1||{mrn}^^^RIV^MR||Reyes^{first}^L||19600101|F|||||{phone}^PRN^PH~^NET^Internet^{email}||{lang}"


def control_id() -> str:
    return f"MSG{next(_ids):06d}"


def pid(
    mrn: str = "100234",
    *,
    first: str = "Maria",
    phone: str = "(312) 555-0147",
    email: str = "",
    lang: str = "ENG",
) -> str:
    return PID.format(mrn=mrn, first=first, phone=phone, email=email, lang=lang)


def siu(
    trigger: str = "S12",
    *,
    code: str = "22612^Posterior lumbar fusion^CPT",
    start: str = "20260320073000",
    appointment_type: str = "SURGERY",
    control: str | None = None,
    facility: str = FACILITY,
    pid_segment: str | None = None,
    booking: str = "SCH-1",
    extra: tuple[str, ...] = (),
) -> str:
    segments = [
        MSH.format(facility=facility, type=f"SIU^{trigger}^SIU_S12", control_id=control or control_id()),
        f"SCH|{booking}|{booking}-F|||||Surgery^Surgery|{appointment_type}",
        pid_segment if pid_segment is not None else pid(),
        "RGS|1",
        f"AIS|1||{code}|{start}",
        *extra,
    ]
    return "\r".join(s for s in segments if s) + "\r"


def adt(trigger: str, *segments: str, control: str | None = None, mrn: str = "100234") -> str:
    head = MSH.format(facility=FACILITY, type=f"ADT^{trigger}^ADT_A01", control_id=control or control_id())
    return "\r".join([head, f"EVN|{trigger}|20260303100000", *(segments or (pid(mrn),))]) + "\r"


def site() -> Site:
    return Site(
        default_region="US",
        emergency_number="911",
        crisis_line="988",
        emergency_regions=frozenset({"US", "CA"}),
    )


def feed(engine: Engine, schedules: Mapping[str, Schedule], clock: ManualClock | None = None) -> Feed:
    mapping = read_hl7_mapping(ROOT / "schedules" / "hl7.yaml", schedules.values())
    return Feed(
        session_factory(engine),
        mapping=mapping,
        schedules=schedules,
        site=site(),
        clock=clock or ManualClock(NOW),
    )


class Listener:
    """``checkin.integrations.hl7.listener.serve`` on a free loopback port, in a thread."""

    def __init__(self, f: Feed) -> None:
        import asyncio
        import threading

        from checkin.integrations.hl7.listener import serve

        self.port = 0
        started = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None

        async def main() -> None:
            self._loop, self._stop = asyncio.get_running_loop(), asyncio.Event()

            def ready(port: int) -> None:
                self.port = port
                started.set()

            await serve(f, "127.0.0.1", 0, stop=self._stop, ready=ready)

        self._thread = threading.Thread(target=asyncio.run, args=(main(),), daemon=True)
        self._thread.start()
        if not started.wait(10):
            raise RuntimeError("the HL7 listener did not start")

    def close(self) -> None:
        assert self._loop is not None and self._stop is not None
        self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(10)


def send(port: int, *messages: str) -> list[str]:
    """Send each message over one MLLP connection with the ``hl7`` package's client; the ACKs."""
    from hl7.client import MLLPClient

    acks = []
    with MLLPClient("127.0.0.1", port) as client:
        for m in messages:
            raw = client.send_message(m)
            acks.append(raw.decode("utf-8").strip("\x0b\x1c\r"))
    return acks
