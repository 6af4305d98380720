"""The HL7 mapping file, ``schedules/hl7.yaml``: what an EHR's codes and fields mean here. Pure.

Validated like the schedules (every problem is ``file:line: key: what is wrong``)::

    facilities: [RIVERSIDE]       # MSH-6 (receiving facility) values that are ours; others get AR
    timezone: America/Chicago     # the facility's zone: HL7 times without an offset are read in
                                  # it, and patients the feed enrolls get it
    procedures:                   # AIS-3 (or SCH-7) codes of a surgery -> the schedule it starts
      "22612": lumbar-fusion
    appointment_types:            # SCH-8 (or AIS-3) codes of a follow-up visit -> its kind
      FU2W: first_visit
    fields:                       # where the contact details are, as SEG-field[.component]
      phone: PID-13.1
      email: PID-13.4
      language: PID-15.1
    languages: {ENG: en, SPA: es} # PID-15 codes -> checkin languages (case ignored)
    smoker:                       # an OBX whose OBX-3.1 is `observation` says smoking status;
      observation: 72166-2        # any of `codes` (OBX-5.1) makes the patient a smoker
      codes: ["449868002", "428041000124106", "77176002"]

Codes are compared as text, so quote numeric ones or not, as you like.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import Any

from checkin.core.languages import LANGUAGES
from checkin.core.schedule.yamlsource import LineMap, read_yaml
from checkin.core.suggest import unknown
from checkin.core.zones import zone_problem
from checkin.errors import ScheduleError, ScheduleErrors

FILE_NAME = "hl7.yaml"
TOP_KEYS = ("facilities", "timezone", "procedures", "appointment_types", "fields", "languages", "smoker")
FIELD_KEYS = ("phone", "email", "language")
_PATH = re.compile(r"^([A-Z][A-Z0-9]{2})-(\d{1,3})(?:\.(\d{1,2}))?$")
_CODE = re.compile(r"^[^\s|^~\\&]{1,40}$")
_KIND = re.compile(r"^[a-z][a-z0-9_]{0,31}$")


@dataclass(frozen=True)
class FieldPath:
    """One component of one field of the first segment with that id: ``PID-13.4``."""

    segment: str
    field: int
    component: int = 1

    def __str__(self) -> str:
        return f"{self.segment}-{self.field}" + (f".{self.component}" if self.component != 1 else "")

    @classmethod
    def parse(cls, text: str) -> FieldPath | None:
        m = _PATH.match(text)
        if not m or int(m.group(2)) < 1 or (m.group(3) is not None and int(m.group(3)) < 1):
            return None
        return cls(m.group(1), int(m.group(2)), int(m.group(3) or 1))


@dataclass(frozen=True)
class Hl7Mapping:
    facilities: frozenset[str]
    timezone: str
    procedures: Mapping[str, str]  # surgery code -> schedule id
    appointment_types: Mapping[str, str] = field(default_factory=dict)  # visit code -> kind
    phone: FieldPath = FieldPath("PID", 13, 1)
    email: FieldPath = FieldPath("PID", 13, 4)
    language: FieldPath = FieldPath("PID", 15, 1)
    languages: Mapping[str, str] = field(default_factory=dict)  # upper-case HL7 code -> en/es
    smoker_observation: str | None = None
    smoker_yes: frozenset[str] = frozenset()


def parse_mapping(
    text: str,
    filename: str,
    *,
    schedule_ids: Collection[str] | None = None,
    appointment_kinds: Collection[str] | None = None,
) -> Hl7Mapping:
    """Parse the mapping; raises ScheduleErrors with every problem found.

    With ``schedule_ids`` (and ``appointment_kinds``), each mapped schedule (kind) must be one
    of them, so a typo is caught when the file is validated rather than when a message comes.
    """
    data, problems = read_yaml(text)
    errors = [ScheduleError(filename, p.line, p.key, p.problem) for p in problems]
    if errors:
        raise ScheduleErrors(errors)
    if not isinstance(data, LineMap):
        raise ScheduleErrors([ScheduleError(filename, 1, None, "must be a mapping with `procedures:`")])

    def err(node: LineMap, key: str | None, problem: str) -> None:
        errors.append(ScheduleError(filename, node.line_of(key) if key else node.line, key, problem))

    for key in data:
        if key not in TOP_KEYS:
            err(data, str(key), unknown("key", str(key), TOP_KEYS))
    facilities = _facilities(data, err)
    tz = data.get("timezone")
    if not isinstance(tz, str) or zone_problem(tz):
        err(data, "timezone" if "timezone" in data else None, _zone_text(tz))
    procedures = _codes(data, "procedures", err, required=True, targets=schedule_ids, what="schedule")
    kinds = _codes(data, "appointment_types", err, required=False, targets=appointment_kinds, what="kind")
    for code in set(procedures) & set(kinds):
        err(data, "appointment_types", f"code {code!r} is also a procedure code; a code means one thing")
    paths = _fields(data, err)
    languages = _languages(data, err)
    smoker_code, smoker_yes = _smoker(data, err)
    if errors:
        raise ScheduleErrors(errors)
    return Hl7Mapping(
        facilities=facilities,
        timezone=str(tz),
        procedures=procedures,
        appointment_types=kinds,
        phone=paths.get("phone", FieldPath("PID", 13, 1)),
        email=paths.get("email", FieldPath("PID", 13, 4)),
        language=paths.get("language", FieldPath("PID", 15, 1)),
        languages=languages,
        smoker_observation=smoker_code,
        smoker_yes=smoker_yes,
    )


def _zone_text(tz: object) -> str:
    if tz is None:
        return "`timezone` is required: the facility's IANA zone, e.g. America/Chicago"
    if not isinstance(tz, str):
        return f"{tz!r} is not an IANA zone like America/Chicago"
    return zone_problem(tz) or ""


def _text(value: Any) -> str | None:
    """A scalar as text (YAML reads 22612 as a number and yes as true); None for a mapping."""
    if isinstance(value, bool):
        return "Y" if value else "N"
    if isinstance(value, (str, int)):
        return str(value).strip()
    return None


def _facilities(data: LineMap, err: Any) -> frozenset[str]:
    raw = data.get("facilities")
    items = [raw] if isinstance(raw, str) else raw
    if not isinstance(items, list) or not items:
        err(
            data,
            "facilities" if "facilities" in data else None,
            "`facilities` must list the MSH-6 names that are ours",
        )
        return frozenset()
    names = [_text(i) for i in items]
    if any(not n or not _CODE.match(n) for n in names):
        err(data, "facilities", "each facility must be a name without spaces or HL7 delimiters (|^~\\&)")
    return frozenset(n for n in names if n)


def _codes(
    data: LineMap, key: str, err: Any, *, required: bool, targets: Collection[str] | None, what: str
) -> dict[str, str]:
    node = data.get(key)
    if node is None and not required:
        return {}
    if not isinstance(node, LineMap) or not node:
        err(
            data,
            key if key in data else None,
            f'`{key}` must map codes to a {what}, e.g. "22612": lumbar-fusion',
        )
        return {}
    found: dict[str, str] = {}
    for raw_code, target in node.items():
        code, line_key = _text(raw_code), str(raw_code)
        if not code or not _CODE.match(code):
            err(node, line_key, "a code must be text without spaces or HL7 delimiters (|^~\\&)")
            continue
        if not isinstance(target, str) or not target:
            err(node, line_key, f"must name a {what}")
            continue
        if what == "kind" and not _KIND.match(target):
            err(node, line_key, f"{target!r} is not an appointment kind like first_visit")
            continue
        if targets is not None and target not in targets:
            err(node, line_key, unknown(what, target, targets))
            continue
        found[code] = target
    return found


def _fields(data: LineMap, err: Any) -> dict[str, FieldPath]:
    node = data.get("fields")
    if node is None:
        return {}
    if not isinstance(node, LineMap):
        err(data, "fields", f"must map {', '.join(FIELD_KEYS)} to a field such as PID-13.1")
        return {}
    paths: dict[str, FieldPath] = {}
    for key, value in node.items():
        if key not in FIELD_KEYS:
            err(node, str(key), unknown("field", str(key), FIELD_KEYS))
            continue
        path = FieldPath.parse(value) if isinstance(value, str) else None
        if path is None:
            err(node, str(key), f"{value!r} is not a field like PID-13.1 (segment-field.component)")
            continue
        paths[str(key)] = path
    return paths


def _languages(data: LineMap, err: Any) -> dict[str, str]:
    node = data.get("languages")
    if node is None:
        return {}
    if not isinstance(node, LineMap):
        err(data, "languages", "must map HL7 language codes to en or es, e.g. SPA: es")
        return {}
    found: dict[str, str] = {}
    for raw_code, lang in node.items():
        code = _text(raw_code)
        if not code or lang not in LANGUAGES:
            err(node, str(raw_code), f"{lang!r} is not one of {', '.join(LANGUAGES)}")
            continue
        found[code.upper()] = str(lang)
    return found


def _smoker(data: LineMap, err: Any) -> tuple[str | None, frozenset[str]]:
    node = data.get("smoker")
    if node is None:
        return None, frozenset()
    if not isinstance(node, LineMap):
        err(data, "smoker", "must have `observation` (an OBX-3 code) and `codes` (OBX-5 codes)")
        return None, frozenset()
    for key in node:
        if key not in ("observation", "codes"):
            err(node, str(key), unknown("key", str(key), ("observation", "codes")))
    code = _text(node.get("observation"))
    if not code or not _CODE.match(code):
        where, key = (node, "observation") if "observation" in node else (data, "smoker")
        err(where, key, "`observation` must be the OBX-3 code, e.g. 72166-2")
    raw_yes = node.get("codes")
    yes = [_text(v) for v in raw_yes] if isinstance(raw_yes, list) else []
    if not yes or any(not v for v in yes):
        where, key = (node, "codes") if "codes" in node else (data, "smoker")
        err(where, key, "`codes` must list the OBX-5 codes that mean a smoker")
    return code or None, frozenset(v for v in yes if v)
