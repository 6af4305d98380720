"""The HL7 mapping file as content: read ``schedules/hl7.yaml`` and check it against the schedules."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from checkin.core.hl7.mapping import FILE_NAME, Hl7Mapping, parse_mapping
from checkin.core.schedule import Schedule
from checkin.core.schedule.model import DISCHARGE, SURGERY
from checkin.errors import ConfigError, ScheduleError, ScheduleErrors

HL7_FILE = FILE_NAME


def _targets(schedules: Iterable[Schedule]) -> tuple[set[str], set[str]]:
    ids: set[str] = set()
    kinds: set[str] = set()
    for s in schedules:
        ids.add(s.id)
        kinds.update(step.anchor for step in s.steps if step.anchor not in (SURGERY, DISCHARGE))
    return ids, kinds


def read_hl7_mapping(path: Path, schedules: Iterable[Schedule] | None) -> Hl7Mapping:
    """Parse ``path``; with ``schedules``, every schedule and appointment kind it maps must be
    theirs. Raises ScheduleErrors (each ``file:line: key: problem``)."""
    ids, kinds = _targets(schedules) if schedules is not None else (None, None)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError:
        raise ScheduleErrors([ScheduleError(str(path), None, None, "is not UTF-8 text")]) from None
    return parse_mapping(text, str(path), schedule_ids=ids, appointment_kinds=kinds)


def load_hl7_mapping(directory: Path, schedules: Iterable[Schedule]) -> Hl7Mapping:
    """``directory/hl7.yaml``, checked against ``schedules``; ConfigError when it is missing."""
    path = directory / HL7_FILE
    if not path.is_file():
        raise ConfigError("CHECKIN_SCHEDULES_DIR", f"{path} is missing: the HL7 feed needs its mapping file")
    return read_hl7_mapping(path, schedules)


def check_hl7_mapping(
    path: Path, schedules: Iterable[Schedule] | None, errors: list[str], info: list[str]
) -> None:
    """Validate ``path`` for ``checkin schedules validate``: problems to ``errors``, a summary to ``info``."""
    try:
        m = read_hl7_mapping(path, schedules)
    except ScheduleErrors as e:
        errors.extend(str(x) for x in e.errors)
        return
    info.append(
        f"{path}: HL7 mapping, {len(m.procedures)} procedure code(s), "
        f"{len(m.appointment_types)} appointment type(s), facilities {', '.join(sorted(m.facilities))}"
    )
