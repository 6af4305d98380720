"""Read one HL7 v2 message into what it asks of checkin. Pure: text and mapping in, an event out.

Accepted (profiles in docs/integrations.md):

- ``SIU^S12`` new booking; ``S13`` rescheduled, ``S14`` modified; ``S15`` cancelled, ``S17``
  deleted. A code in AIS-3 (or SCH-7) that ``procedures`` maps is a surgery (enroll, move the
  surgery date, withdraw); one in SCH-8 (or AIS-3) that ``appointment_types`` maps is a
  follow-up visit (book, move, cancel that appointment).
- ``ADT^A03`` discharge (PV1-45); ``ADT^A08``/``A31`` patient update (name, phone, email,
  language); ``ADT^A40`` merge (PID-3 survives, MRG-1 goes).

Anything else is an ``Hl7Problem``: ``AR`` for a message type or facility that is not ours (or
not HL7 at all), ``AE`` for a message that is ours but wrong, naming the field.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from zoneinfo import ZoneInfo

from checkin.core.hl7.fields import (
    REQUIRED_MISSING,
    TABLE_VALUE_NOT_FOUND,
    UNKNOWN_KEY,
    UNSUPPORTED_EVENT,
    UNSUPPORTED_MESSAGE_TYPE,
    Parsed,
    check_segments,
    error,
    parse,
    parse_date,
    parse_dtm,
    reject,
)
from checkin.core.hl7.mapping import Hl7Mapping

HANDLED = {"SIU": ("S12", "S13", "S14", "S15", "S17"), "ADT": ("A03", "A08", "A31", "A40")}
MAX_WHERE = 40
CANCELS = ("S15", "S17")


@dataclass(frozen=True)
class Header:
    control_id: str  # MSH-10
    sending_application: str  # MSH-3
    sending_facility: str  # MSH-4
    receiving_application: str  # MSH-5
    receiving_facility: str  # MSH-6
    message_type: str  # MSH-9.1
    trigger: str  # MSH-9.2
    processing_id: str  # MSH-11
    version: str  # MSH-12

    @property
    def sender(self) -> str:
        """Who sent it: MSH-10 is unique per sending application and facility."""
        return f"{self.sending_application}^{self.sending_facility}"

    @property
    def kind(self) -> str:
        return f"{self.message_type}^{self.trigger}"


@dataclass(frozen=True)
class Person:
    """The patient as PID (and OBX) give them; ``None``/empty means not sent."""

    mrn: str
    first_name: str
    phone: str
    email: str
    language: str | None  # a checkin language, mapped from the HL7 code
    smoker: bool | None


@dataclass(frozen=True)
class Enroll:
    person: Person
    procedure: str
    surgery_date: date
    timezone: str


@dataclass(frozen=True)
class MoveSurgery:
    mrn: str
    procedure: str
    surgery_date: date


@dataclass(frozen=True)
class Withdraw:
    mrn: str
    procedure: str


@dataclass(frozen=True)
class BookVisit:
    mrn: str
    kind: str
    at: datetime  # aware
    where: str | None
    external_id: str | None


@dataclass(frozen=True)
class CancelVisit:
    mrn: str
    kind: str


@dataclass(frozen=True)
class Discharge:
    mrn: str
    day: date


@dataclass(frozen=True)
class UpdatePatient:
    person: Person


@dataclass(frozen=True)
class Merge:
    surviving_mrn: str
    prior_mrn: str


Event = Enroll | MoveSurgery | Withdraw | BookVisit | CancelVisit | Discharge | UpdatePatient | Merge


def read_header(text: str) -> tuple[Parsed, Header]:
    """Parse ``text`` and its MSH; raises Hl7Problem (AR) when it is not HL7 at all."""
    msg = parse(text)
    v = msg.first
    header = Header(
        control_id=v("MSH", 10),
        sending_application=v("MSH", 3),
        sending_facility=v("MSH", 4),
        receiving_application=v("MSH", 5),
        receiving_facility=v("MSH", 6),
        message_type=v("MSH", 9, 1).upper(),
        trigger=v("MSH", 9, 2).upper(),
        processing_id=v("MSH", 11),
        version=v("MSH", 12),
    )
    return msg, header


def read_event(msg: Parsed, header: Header, mapping: Hl7Mapping) -> Event:
    """What the message asks; raises Hl7Problem (AR: not ours; AE: ours but wrong)."""
    if not header.control_id:
        raise reject("MSH-10", "the message control id is missing", REQUIRED_MISSING)
    if header.message_type not in HANDLED:
        raise reject(
            "MSH-9", f"message type {header.kind!r} is not one checkin takes", UNSUPPORTED_MESSAGE_TYPE
        )
    if header.trigger not in HANDLED[header.message_type]:
        raise reject("MSH-9", f"event {header.kind!r} is not one checkin takes", UNSUPPORTED_EVENT)
    if header.receiving_facility not in mapping.facilities:
        raise reject(
            "MSH-6", f"facility {header.receiving_facility!r} is not served here", TABLE_VALUE_NOT_FOUND
        )
    check_segments(msg)
    if not msg.has("PID"):
        raise error("PID", "the PID segment is missing", REQUIRED_MISSING)
    zone = ZoneInfo(mapping.timezone)
    if header.message_type == "SIU":
        return _scheduling(msg, header.trigger, mapping, zone)
    mrn = _mrn(msg)
    if header.trigger == "A03":
        raw = msg.first("PV1", 45) or msg.first("EVN", 6)
        if not raw:
            raise error("PV1-45", "the discharge date/time is missing", REQUIRED_MISSING)
        return Discharge(mrn, parse_date(raw, "PV1-45", zone))
    if header.trigger == "A40":
        prior = msg.first("MRG", 1)
        if not prior:
            raise error("MRG-1", "the prior patient identifier is missing", REQUIRED_MISSING)
        if prior == mrn:
            raise error("MRG-1", "the prior MRN is the surviving MRN")
        return Merge(mrn, prior)
    return UpdatePatient(_person(msg, mapping, mrn))


def _mrn(msg: Parsed) -> str:
    """PID-3: the repetition whose identifier type (CX-5) is MR, else the first."""
    pid = msg.segments("PID")[0]
    reps = range(1, msg.repetitions(pid, 3) + 1)
    ids = [(msg.value(pid, 3, 1, r), msg.value(pid, 3, 5, r).upper()) for r in reps]
    found = next((i for i, kind in ids if i and kind == "MR"), None) or next((i for i, _ in ids if i), "")
    if not found:
        raise error("PID-3", "the patient identifier (MRN) is missing", REQUIRED_MISSING)
    if len(found) > 64:
        raise error("PID-3", "the MRN is longer than 64 characters")
    return found


def _person(msg: Parsed, mapping: Hl7Mapping, mrn: str) -> Person:
    phone = msg.at(mapping.phone)
    if not phone and mapping.phone.component == 1:
        # XTN-1 is deprecated since v2.3; the number may be in area code (6) + local number (7).
        pid = msg.segments(mapping.phone.segment)
        seg = pid[0] if pid else None
        for rep in range(1, msg.repetitions(seg, mapping.phone.field) + 1):
            area, local = (
                msg.value(seg, mapping.phone.field, 6, rep),
                msg.value(seg, mapping.phone.field, 7, rep),
            )
            if local:
                phone = f"{area}{local}"
                break
    raw_language = msg.at(mapping.language).upper()
    language = mapping.languages.get(raw_language) if raw_language else None
    return Person(
        mrn=mrn,
        first_name=msg.first("PID", 5, 2),
        phone=phone,
        email=msg.at(mapping.email),
        language=language,
        smoker=_smoker(msg, mapping),
    )


def _smoker(msg: Parsed, mapping: Hl7Mapping) -> bool | None:
    if mapping.smoker_observation is None:
        return None
    for obx in msg.segments("OBX"):
        if msg.value(obx, 3, 1) == mapping.smoker_observation:
            return msg.value(obx, 5, 1) in mapping.smoker_yes
    return None


def _scheduling(msg: Parsed, trigger: str, mapping: Hl7Mapping, zone: ZoneInfo) -> Event:
    if not msg.has("SCH"):
        raise error("SCH", "the SCH segment is missing", REQUIRED_MISSING)
    mrn = _mrn(msg)
    services = [(msg.value(s, 3, 1), s) for s in msg.segments("AIS")]
    reason, appt_type = msg.first("SCH", 7, 1), msg.first("SCH", 8, 1)
    procedure = next(((c, s) for c, s in services if c in mapping.procedures), None)
    if procedure is None and reason in mapping.procedures:
        procedure = (reason, None)
    if procedure is not None:
        return _surgery(msg, trigger, mapping, zone, mrn, *procedure)
    visit = next(((c, s) for c, s in [(appt_type, None), *services] if c in mapping.appointment_types), None)
    if visit is not None:
        return _visit(msg, trigger, mapping, zone, mrn, *visit)
    codes = [c for c, _ in services if c] or [c for c in (reason, appt_type) if c]
    where = "AIS-3" if services else "SCH-8"
    if not codes:
        raise error(where, "no procedure or appointment type code", REQUIRED_MISSING)
    raise error(where, f"code {codes[0]!r} is not a procedure or appointment type in hl7.yaml", UNKNOWN_KEY)


def _surgery(
    msg: Parsed, trigger: str, mapping: Hl7Mapping, zone: ZoneInfo, mrn: str, code: str, ais: object
) -> Event:
    schedule = mapping.procedures[code]
    if trigger in CANCELS:
        return Withdraw(mrn, schedule)
    day = _start(msg, ais, zone).astimezone(zone).date()
    if trigger == "S12":
        return Enroll(_person(msg, mapping, mrn), schedule, day, mapping.timezone)
    return MoveSurgery(mrn, schedule, day)


def _visit(
    msg: Parsed, trigger: str, mapping: Hl7Mapping, zone: ZoneInfo, mrn: str, code: str, ais: object
) -> Event:
    kind = mapping.appointment_types[code]
    if trigger in CANCELS:
        return CancelVisit(mrn, kind)
    place = (msg.first("AIL", 3, 9) or msg.first("AIL", 3, 1))[:MAX_WHERE] or None
    external = (msg.first("SCH", 2) or msg.first("SCH", 1))[:64] or None
    return BookVisit(mrn, kind, _start(msg, ais, zone), place, external)


def _start(msg: Parsed, ais: object, zone: ZoneInfo) -> datetime:
    """When it starts: AIS-4 of the service, else SCH-11.4 (TQ start), else TQ1-7."""
    for location, raw in (
        ("AIS-4", msg.value(ais, 4) if ais is not None else msg.first("AIS", 4)),
        ("SCH-11.4", msg.first("SCH", 11, 4)),
        ("TQ1-7", msg.first("TQ1", 7)),
    ):
        if raw:
            return parse_dtm(raw, location, zone)
    raise error("AIS-4", "the start date/time is missing", REQUIRED_MISSING)
