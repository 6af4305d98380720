"""The pure core of the feed: reading a message into an event, dates, and the ACK's shape."""

from __future__ import annotations

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import hl7
import pytest

from checkin.core.hl7.ack import build_ack, escape
from checkin.core.hl7.fields import Hl7Problem, error, parse_dtm
from checkin.core.hl7.mapping import parse_mapping
from checkin.core.hl7.message import BookVisit, Enroll, Merge, MoveSurgery, read_event, read_header
from tests.integrations.support import adt, pid, siu
from tests.support import ROOT

MAPPING = parse_mapping((ROOT / "schedules" / "hl7.yaml").read_text(), "hl7.yaml")
CHICAGO = ZoneInfo("America/Chicago")


def _event(text: str) -> object:
    msg, header = read_header(text)
    return read_event(msg, header, MAPPING)


def test_s12_reads_the_person_the_procedure_and_the_local_date() -> None:
    smoker = "OBX|1|CWE|72166-2^Tobacco smoking status^LN||449868002^Current every day smoker^SCT"
    event = _event(siu(start="20260320233000-0500", pid_segment=pid(lang="spa"), extra=(smoker,)))
    assert isinstance(event, Enroll)
    assert (event.procedure, event.surgery_date, event.timezone) == (
        "lumbar-fusion",
        date(2026, 3, 20),
        "America/Chicago",
    )
    assert (event.person.mrn, event.person.first_name, event.person.language, event.person.smoker) == (
        "100234",
        "Maria",
        "es",
        True,
    )


def test_the_phone_may_come_as_area_code_and_local_number() -> None:
    text = siu(pid_segment="PID|1||100234^^^RIV^MR||Reyes^Maria||||||||^PRN^PH^^^312^5550147")
    event = _event(text)
    assert isinstance(event, Enroll) and event.person.phone == "3125550147"


def test_s14_with_an_acdf_code_in_sch_7_moves_cervical_fusion() -> None:
    text = siu("S14", code="", start="20260402").replace("|Surgery^Surgery|", "|22551^ACDF^CPT|")
    assert _event(text) == MoveSurgery("100234", "cervical-fusion", date(2026, 4, 2))


def test_a_visit_keeps_its_wall_time_in_the_facility_zone() -> None:
    event = _event(siu(code="", appointment_type="POSTOP-2W", start="202603311015"))
    assert isinstance(event, BookVisit) and event.kind == "first_visit"
    assert event.at == datetime(2026, 3, 31, 10, 15, tzinfo=CHICAGO)


def test_a40_names_both_mrns() -> None:
    assert _event(adt("A40", pid("200"), "MRG|100^^^RIV^MR")) == Merge("200", "100")


def test_the_mrn_is_the_mr_identifier_not_the_first() -> None:
    text = siu(pid_segment="PID|1||999-99-9999^^^SSA^SS~100777^^^RIV^MR||Reyes^Maria||||||||3125550147")
    event = _event(text)
    assert isinstance(event, Enroll) and event.person.mrn == "100777"


@pytest.mark.parametrize(
    ("text", "want"),
    [
        ("20260320", datetime(2026, 3, 20, 5, 0, tzinfo=UTC)),
        ("202603200730", datetime(2026, 3, 20, 12, 30, tzinfo=UTC)),
        ("20260320073015.1234+0100", datetime(2026, 3, 20, 6, 30, 15, tzinfo=UTC)),
    ],
)
def test_hl7_times(text: str, want: datetime) -> None:
    assert parse_dtm(text, "AIS-4", CHICAGO) == want


def test_the_ack_names_the_field_and_escapes_delimiters() -> None:
    _, header = read_header(siu(control="X\\F\\1"))  # X|1, escaped
    problem = error("PID-13.4", "'a|b^c' is not an email address")
    ack = build_ack(header, "AE", ack_id="A1", now=datetime(2026, 3, 3, tzinfo=UTC), problem=problem)
    parsed = hl7.parse(ack.strip("\r"))
    assert str(parsed["MSA.F1"]) == "AE" and parsed.unescape(str(parsed["MSA.F2"])) == "X|1"
    assert str(parsed.segment("ERR")(2)) == "PID^1^13^1^4"
    assert parsed.unescape(str(parsed.segment("ERR")(8))) == "PID-13.4: 'a|b^c' is not an email address"
    assert str(parsed.segment("MSH")(9)) == "ACK^S12^ACK" and str(parsed.segment("MSH")(5)) == "EPIC"
    assert escape("a\\b") == "a\\E\\b"


def test_an_unreadable_message_is_rejected() -> None:
    with pytest.raises(Hl7Problem) as caught:
        read_header("hello")
    assert caught.value.ack == "AR" and caught.value.location == "MSH"
