"""Reading fields out of a parsed HL7 v2 message (the ``hl7`` package's tree). Pure.

Every accessor returns text with HL7 escapes undone (``\\F\\`` is ``|``) and never raises for a
field, repetition or component that is not there: it returns ``""``, as HL7 means by absence.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo

import hl7

from checkin.core.hl7.mapping import FieldPath
from checkin.core.window import local_instant

# ERR-3 codes (HL7 table 0357) checkin uses.
REQUIRED_MISSING = "101"
DATA_TYPE_ERROR = "102"
TABLE_VALUE_NOT_FOUND = "103"
UNSUPPORTED_MESSAGE_TYPE = "200"
UNSUPPORTED_EVENT = "201"
UNKNOWN_KEY = "204"
INTERNAL_ERROR = "207"


class Hl7Problem(Exception):
    """Why a message gets ``AE`` (understood but wrong) or ``AR`` (not ours, or not understood).

    ``location`` is the field at fault as HL7 writes it (``PID-13``), ``code`` an HL7 table 0357
    error code; the text may quote the bad value (it goes into the ACK and the database, never
    into a log).
    """

    def __init__(self, ack: str, location: str | None, problem: str, code: str = DATA_TYPE_ERROR) -> None:
        self.ack, self.location, self.problem, self.code = ack, location, problem, code
        super().__init__(f"{location}: {problem}" if location else problem)


def error(location: str | None, problem: str, code: str = DATA_TYPE_ERROR) -> Hl7Problem:
    return Hl7Problem("AE", location, problem, code)


def reject(location: str | None, problem: str, code: str) -> Hl7Problem:
    return Hl7Problem("AR", location, problem, code)


@dataclass(frozen=True)
class Parsed:
    """A message as the ``hl7`` package parsed it, with safe accessors."""

    message: Any  # hl7.Message (untyped library)

    def segments(self, segment_id: str) -> list[Any]:
        return [s for s in self.message if str(s[0]) == segment_id]

    def has(self, segment_id: str) -> bool:
        return bool(self.segments(segment_id))

    def value(self, segment: Any, field: int, component: int = 1, repetition: int = 1) -> str:
        if segment is None or field >= len(segment):
            return ""
        try:
            raw = segment.extract_field(1, field, repetition, component, 1)
        except (IndexError, KeyError):
            return ""
        return str(self.message.unescape(str(raw))).strip()

    def first(self, segment_id: str, field: int, component: int = 1, repetition: int = 1) -> str:
        found = self.segments(segment_id)
        return self.value(found[0], field, component, repetition) if found else ""

    def repetitions(self, segment: Any, field: int) -> int:
        if segment is None or field >= len(segment):
            return 0
        node = segment[field]
        # A repeated field is a Field of Repetitions; a plain one is a Field of text/components.
        return len(node) if node and all(isinstance(r, hl7.Repetition) for r in node) else 1

    def at(self, path: FieldPath) -> str:
        """The first non-empty ``path`` over the field's repetitions (the first phone, email …)."""
        found = self.segments(path.segment)
        if not found:
            return ""
        seg = found[0]
        for rep in range(1, self.repetitions(seg, path.field) + 1):
            text = self.value(seg, path.field, path.component, rep)
            if text:
                return text
        return ""


def parse(text: str) -> Parsed:
    """Parse one message; segments may end in CR, LF or CRLF. Raises Hl7Problem (AR) when it
    is not an HL7 v2 message at all."""
    text = text.replace("\r\n", "\r").replace("\n", "\r").strip("\r\x0b\x1c ")
    if not text.startswith("MSH") or len(text) < 8:
        raise reject("MSH", "the message does not start with an MSH segment", "100")
    try:
        return Parsed(hl7.parse(text))
    except (hl7.ParseException, IndexError, ValueError) as e:
        raise reject("MSH", f"the message cannot be parsed ({e})", "100") from None


def check_segments(parsed: Parsed) -> None:
    """Raise Hl7Problem (AE) for a line that is not a segment (its MSH was read, so the message
    is HL7 and ours to answer; ERR names the line, as an ERL cannot)."""
    for number, segment in enumerate(parsed.message, start=1):
        name = str(segment[0])
        if not _SEGMENT.match(name):
            raise error(None, f"segment {number}: {name[:20]!r} is not a segment id like PID", "100")


_SEGMENT = re.compile(r"^[A-Z][A-Z0-9]{2}$")


_DTM = re.compile(
    r"^(\d{4})(\d{2})?(\d{2})?(?:(\d{2})(\d{2})?(\d{2})?(?:\.\d{1,4})?)?(?:([+-])(\d{2})(\d{2}))?$"
)


def parse_dtm(text: str, location: str, zone: ZoneInfo) -> datetime:
    """An HL7 DTM (``YYYYMMDD[HHMM[SS[.S]]][+/-ZZZZ]``) as an aware datetime; without an offset
    it is read in ``zone`` (the facility's). Raises Hl7Problem (AE) naming ``location``."""
    m = _DTM.match(text)
    if not m or m.group(2) is None or m.group(3) is None:
        raise error(location, f"{text!r} is not a date like 20270314 or 202703140730")
    y, mo, d, h, mi, s, sign, oh, om = m.groups()
    try:
        naive = datetime(int(y), int(mo), int(d), int(h or 0), int(mi or 0), int(s or 0))
    except ValueError:
        raise error(location, f"{text!r} is not a date that exists") from None
    if sign is None:
        return local_instant(naive.date(), naive.time(), zone)
    offset = timedelta(hours=int(oh), minutes=int(om)) * (-1 if sign == "-" else 1)
    return naive.replace(tzinfo=timezone(offset))


def parse_date(text: str, location: str, zone: ZoneInfo) -> date:
    """The calendar date of an HL7 DTM in ``zone``."""
    return parse_dtm(text, location, zone).astimezone(zone).date()
