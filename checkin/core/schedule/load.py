"""Load and validate ``schedules/<id>.yaml`` into a ``Schedule``. Pure except for reading files.

Contract: ``parse_schedule_text`` / ``load_schedule`` return a ``Schedule`` or raise
``ScheduleErrors`` listing *every* problem found in the file, each a ``ScheduleError`` naming
file, line and key (``file:line: key: problem``). A file with any problem yields no schedule:
a half-loaded schedule could silently drop a step. The format is documented in
``schedules/README.md``.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import replace
from datetime import date, time
from pathlib import Path

from checkin.core.schedule.checker import Checker, kind, parse_duration, parse_time
from checkin.core.schedule.load_steps import STEP_KEYS, TemplateExists, check_steps
from checkin.core.schedule.load_timing import check_daily_limit, check_discharge_fallback
from checkin.core.schedule.model import Schedule
from checkin.core.schedule.yamlsource import LineMap, read_yaml
from checkin.errors import ScheduleError, ScheduleErrors

# The parsers stay importable from here, where callers have always found them.
__all__ = [
    "CARE_TEAMS_FILE",
    "NOT_SCHEDULES",
    "STEP_KEYS",
    "ScheduleRegistry",
    "TemplateExists",
    "load_schedule",
    "load_schedules",
    "parse_duration",
    "parse_schedule_text",
    "parse_time",
    "schedule_version",
]

TOP_LEVEL_KEYS = (
    "id",
    "name",
    "description",
    "send_window",
    "care_team",
    "procedure_name_in_sms",
    "clinical_sign_off",
    "discharge_fallback_day",
    "daily_limit",
    "steps",
)
SIGN_OFF_KEYS = ("by", "date")
DEFAULT_SEND_WINDOW = (time(9, 0), time(20, 0))

_SLUG = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")


def schedule_version(data: bytes) -> str:
    """The content hash an enrollment is pinned to: first 12 hex digits of sha256."""
    return hashlib.sha256(data).hexdigest()[:12]


def _check_window(c: Checker, doc: LineMap) -> tuple[time, time] | None:
    if "send_window" not in doc:
        return DEFAULT_SEND_WINDOW
    value, line = doc["send_window"], doc.line_of("send_window")
    if not isinstance(value, list) or len(value) != 2:
        c.add(
            line,
            "send_window",
            f'must be a list of two times, e.g. ["09:00", "20:00"], got {kind(value)}',
        )
        return None
    start, start_problem = parse_time(value[0])
    end, end_problem = parse_time(value[1])
    for problem in (start_problem, end_problem):
        if problem:
            c.add(line, "send_window", problem)
    if start is None or end is None:
        return None
    if start >= end:
        c.add(line, "send_window", f"the start ({value[0]}) must be before the end ({value[1]})")
        return None
    return start, end


def _check_sign_off(c: Checker, doc: LineMap) -> bool:
    """Whether the file records a review (``by`` and ``date`` both set)."""
    value = doc["clinical_sign_off"]
    if not isinstance(value, LineMap):
        c.add(
            doc.line_of("clinical_sign_off"),
            "clinical_sign_off",
            f"must be a mapping with by and date, got {kind(value)}",
        )
        return False
    c.unknown_keys(value, SIGN_OFF_KEYS, " in clinical_sign_off")
    if value.get("by") is not None and not isinstance(value["by"], str):
        c.add(value.line_of("by"), "by", f"must be a name, got {kind(value['by'])}")
    if value.get("date") is not None and not isinstance(value["date"], date | str):
        c.add(
            value.line_of("date"),
            "date",
            f"must be a date (YYYY-MM-DD), got {kind(value['date'])}",
        )
    return value.get("by") is not None and value.get("date") is not None


def _check_document(
    c: Checker, doc: LineMap, stem: str, version: str, template_exists: TemplateExists | None
) -> Schedule | None:
    c.unknown_keys(doc, TOP_LEVEL_KEYS, "")
    c.require(doc, ("id", "name", "steps"), "")
    schedule_id = _check_id(c, doc, stem)
    name = c.want_str(doc, "name") if "name" in doc else None
    if "description" in doc:
        c.want_str(doc, "description")
    care_team = c.want_str(doc, "care_team") if "care_team" in doc else None
    in_sms = c.want_bool(doc, "procedure_name_in_sms") if "procedure_name_in_sms" in doc else False
    signed_off = _check_sign_off(c, doc) if "clinical_sign_off" in doc else False
    window = _check_window(c, doc)
    discharge_fallback = check_discharge_fallback(c, doc)
    daily_limit = check_daily_limit(c, doc)
    steps = check_steps(c, doc, window, template_exists)
    if c.errors:
        return None
    assert schedule_id and name and window is not None  # guaranteed when no errors
    return Schedule(
        id=schedule_id,
        name=name,
        version=version,
        send_window=window,
        steps=tuple(s for s in steps if s is not None),
        care_team=care_team,
        procedure_name_in_sms=bool(in_sms),
        discharge_fallback_day=discharge_fallback,
        daily_limit=daily_limit,
        signed_off=signed_off,
    )


def _check_id(c: Checker, doc: LineMap, stem: str) -> str | None:
    """The schedule id: a slug equal to the file's name, so a file cannot shadow another."""
    if "id" not in doc:
        return None
    schedule_id = c.want_pattern(doc, "id", _SLUG, "a slug: use lowercase letters, digits and -")
    if schedule_id and schedule_id != stem:
        c.add(doc.line_of("id"), "id", f"'{schedule_id}' must match the file name '{stem}'")
    return schedule_id


def _parse(text: str, filename: str, raw: bytes, template_exists: TemplateExists | None) -> Schedule:
    c = Checker(filename)
    data, problems = read_yaml(text)
    for p in problems:
        c.add(p.line, p.key, p.problem)
    if data is not None and not isinstance(data, LineMap):
        c.add(1, None, f"the file must be a mapping of keys (id, name, steps, ...), got {kind(data)}")
    elif data is not None:
        schedule = _check_document(c, data, Path(filename).stem, schedule_version(raw), template_exists)
        if schedule is not None and not c.errors:
            return schedule
    # In file order, so an admin can fix them top to bottom.
    raise ScheduleErrors(sorted(c.errors, key=lambda e: e.line or 0))


def parse_schedule_text(
    text: str, filename: str, *, template_exists: TemplateExists | None = None
) -> Schedule:
    """Validate YAML ``text`` as if read from ``filename`` (its stem must equal the id).

    ``template_exists(name)`` says whether a message template of that name exists; None skips
    that check. Raises ``ScheduleErrors`` with every problem found.
    """
    schedule = _parse(text, filename, text.encode("utf-8"), template_exists)
    return _with_source(schedule, filename)


def load_schedule(path: Path, *, template_exists: TemplateExists | None = None) -> Schedule:
    """Read and validate one schedule file; ``version`` hashes its exact bytes.

    Raises ``ScheduleErrors`` (also for an unreadable or non-UTF-8 file).
    """
    try:
        raw = Path(path).read_bytes()
    except OSError as exc:
        raise ScheduleErrors([ScheduleError(str(path), None, None, f"cannot read: {exc.strerror}")]) from exc
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        raise ScheduleErrors([ScheduleError(str(path), line, None, "is not UTF-8 text")]) from exc
    return _with_source(_parse(text, str(path), raw, template_exists), str(path))


def _with_source(schedule: Schedule, source: str) -> Schedule:
    return replace(schedule, source=source)


# Live beside the schedules but are not ones (checkin.core.care_teams and checkin.core.hl7 read them).
CARE_TEAMS_FILE = "care-teams.yaml"
HL7_MAPPING_FILE = "hl7.yaml"
NOT_SCHEDULES = frozenset({CARE_TEAMS_FILE, HL7_MAPPING_FILE})


def _schedule_files(source: Path | Iterable[Path]) -> list[Path]:
    if isinstance(source, (str, Path)) and Path(source).is_dir():
        directory = Path(source)
        found = [*directory.glob("*.yaml"), *directory.glob("*.yml")]
        return sorted(p for p in found if p.name not in NOT_SCHEDULES)
    if isinstance(source, (str, Path)):
        return [Path(source)]
    return [Path(p) for p in source]


def load_schedules(
    source: Path | Iterable[Path], *, template_exists: TemplateExists | None = None
) -> dict[str, Schedule]:
    """Load a directory's ``*.yaml``/``*.yml`` files (or the given files), keyed by schedule id.

    All or nothing: raises one ``ScheduleErrors`` with the problems of every bad file.
    """
    schedules: dict[str, Schedule] = {}
    errors: list[ScheduleError] = []
    for path in _schedule_files(source):
        try:
            schedule = load_schedule(path, template_exists=template_exists)
        except ScheduleErrors as exc:
            errors.extend(exc.errors)
            continue
        if schedule.id in schedules:
            other = schedules[schedule.id].source
            errors.append(ScheduleError(str(path), None, "id", f"'{schedule.id}' is also the id of {other}"))
            continue
        schedules[schedule.id] = schedule
    if errors:
        raise ScheduleErrors(errors)
    return schedules


class ScheduleRegistry:
    """The live schedules of one directory, reloadable while the service runs.

    ``reload()`` re-reads every file. A file that is now invalid keeps its previously loaded
    valid version (so an admin's typo cannot stop messages to enrolled patients) and its errors
    are returned; a file that was deleted is dropped. Every version seen is remembered so an
    enrollment pinned to an older version can still be served while this process runs.
    """

    def __init__(self, directory: Path, *, template_exists: TemplateExists | None = None) -> None:
        self.directory = Path(directory)
        self._template_exists = template_exists
        self._current: dict[str, Schedule] = {}
        self._by_version: dict[tuple[str, str], Schedule] = {}

    def reload(self) -> list[ScheduleError]:
        """Reload every file; returns the problems found (empty when all files are valid)."""
        current: dict[str, Schedule] = {}
        errors: list[ScheduleError] = []
        for path in _schedule_files(self.directory):
            try:
                schedule = load_schedule(path, template_exists=self._template_exists)
            except ScheduleErrors as exc:
                errors.extend(exc.errors)
                previous = self._current.get(path.stem)
                if previous is not None:
                    current[path.stem] = previous
                continue
            current[schedule.id] = schedule
            self._by_version[(schedule.id, schedule.version)] = schedule
        # One assignment, so a reader on another thread sees either the old or the new set.
        self._current = current
        return errors

    def get(self, schedule_id: str) -> Schedule:
        """The current version; raises KeyError for an unknown id."""
        return self._current[schedule_id]

    def get_version(self, schedule_id: str, version: str) -> Schedule | None:
        return self._by_version.get((schedule_id, version))

    @property
    def schedules(self) -> Mapping[str, Schedule]:
        return dict(self._current)

    def __contains__(self, schedule_id: object) -> bool:
        return schedule_id in self._current

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(self._current))
