"""Load and validate ``schedules/<id>.yaml`` into a ``Schedule``. Pure except for reading files.

Contract: ``parse_schedule_text`` / ``load_schedule`` return a ``Schedule`` or raise
``ScheduleErrors`` listing *every* problem found in the file, each a ``ScheduleError`` naming
file, line and key (``file:line: key: problem``). A file with any problem yields no schedule:
a half-loaded schedule could silently drop a step. The format is documented in
``schedules/README.md``.
"""

from __future__ import annotations

import difflib
import hashlib
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import replace
from datetime import date, time, timedelta
from pathlib import Path
from typing import Any

from checkin.core.schedule.load_timing import check_daily_limit, check_discharge_fallback, check_step_timing
from checkin.core.schedule.model import (
    CHANNEL_PREFERENCES,
    KNOWN_ATTRIBUTES,
    QUESTIONS,
    SURGERY,
    Condition,
    Schedule,
    Step,
)
from checkin.core.schedule.yamlsource import LineMap, read_yaml
from checkin.errors import ScheduleError, ScheduleErrors

TemplateExists = Callable[[str], bool]

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
STEP_KEYS = (
    "id",
    "day",
    "time",
    "message",
    "ask",
    "every",
    "until",
    "when",
    "channel",
    "remind_after",
    "missed_after",
    "expires_after",
    "catch_up",
    "anchor",
    "fallback_day",
    "priority",
)
SIGN_OFF_KEYS = ("by", "date")
DEFAULT_SEND_WINDOW = (time(9, 0), time(20, 0))

_SLUG = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")
_STEP_ID = re.compile(r"[a-z0-9]+(?:[-_][a-z0-9]+)*")
_TEMPLATE_NAME = re.compile(r"[a-z0-9]+(?:[-_][a-z0-9]+)*")
_HHMM = re.compile(r"(\d\d):(\d\d)")
_DURATION = re.compile(r"(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?")
_DURATION_HELP = 'must be a duration like "4h", "30m", "2d" or "1h30m"'


def schedule_version(data: bytes) -> str:
    """The content hash an enrollment is pinned to: first 12 hex digits of sha256."""
    return hashlib.sha256(data).hexdigest()[:12]


def _kind(value: object) -> str:
    if value is None:
        return "nothing (null)"
    if isinstance(value, bool):
        return f"a yes/no value ({str(value).lower()})"
    if isinstance(value, int):
        return f"the number {value}"
    if isinstance(value, float):
        return f"the number {value}"
    if isinstance(value, str):
        return f'the text "{value}"'
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return type(value).__name__


def _suggest(word: str, choices: Iterable[str]) -> str:
    close = difflib.get_close_matches(word, sorted(choices), n=1, cutoff=0.6)
    return f"; did you mean '{close[0]}'?" if close else ""


def parse_time(value: object) -> tuple[time | None, str | None]:
    """``("HH:MM" string) -> (time, None)``, anything else ``-> (None, problem)``."""
    if not isinstance(value, str):
        hint = ""
        if type(value) is int and 0 <= value < 24 * 60:
            # YAML 1.1 reads an unquoted 10:00 as the base-60 number 600.
            hint = f"; YAML read an unquoted {value // 60}:{value % 60:02d} as the number {value}"
        return None, f'time must be a quoted "HH:MM" string, got {_kind(value)}{hint}'
    match = _HHMM.fullmatch(value)
    if not match:
        return None, f'"{value}" is not a time: write "HH:MM" on a 24-hour clock, e.g. "09:00"'
    hour, minute = int(match.group(1)), int(match.group(2))
    if hour > 23:
        return None, f'"{value}" is not a time: the hour must be 00-23'
    if minute > 59:
        return None, f'"{value}" is not a time: the minutes must be 00-59'
    return time(hour, minute), None


def parse_duration(value: object) -> tuple[timedelta | None, str | None]:
    """``"4h"``, ``"30m"``, ``"2d"``, ``"1h30m"`` -> ``(timedelta, None)``; else ``(None, why)``."""
    if not isinstance(value, str):
        return None, f"{_DURATION_HELP}, got {_kind(value)}"
    match = _DURATION.fullmatch(value)
    if not value or not match:
        return None, f'{_DURATION_HELP}, got "{value}"'
    days, hours, minutes = (int(g) if g else 0 for g in match.groups())
    result = timedelta(days=days, hours=hours, minutes=minutes)
    if not result:
        return None, f'must be longer than zero, got "{value}"'
    return result, None


class _Checker:
    """Collects every problem of one file; the ``want_*`` helpers return None on a problem."""

    def __init__(self, file: str) -> None:
        self.file = file
        self.errors: list[ScheduleError] = []

    def add(self, line: int | None, key: str | None, problem: str) -> None:
        self.errors.append(ScheduleError(self.file, line, key, problem))

    def unknown_keys(self, node: LineMap, valid: tuple[str, ...], where: str) -> None:
        for key in node:
            if key not in valid:
                name = str(key)
                hint = _suggest(name, valid) or f"; valid keys{where}: {', '.join(valid)}"
                self.add(node.line_of(key), name, f"unknown key{where}{hint}")

    def want_int(self, node: LineMap, key: str, what: str) -> int | None:
        value = node[key]
        if type(value) is not int:  # bool is an int subclass; `day: yes` is a mistake
            self.add(node.line_of(key), key, f"must be a whole number ({what}), got {_kind(value)}")
            return None
        return value

    def want_str(self, node: LineMap, key: str) -> str | None:
        value = node[key]
        if not isinstance(value, str) or not value.strip():
            self.add(node.line_of(key), key, f"must be non-empty text, got {_kind(value)}")
            return None
        return value

    def want_bool(self, node: LineMap, key: str) -> bool | None:
        value = node[key]
        if not isinstance(value, bool):
            self.add(node.line_of(key), key, f"must be true or false, got {_kind(value)}")
            return None
        return value

    def want_pattern(self, node: LineMap, key: str, pattern: re.Pattern[str], what: str) -> str | None:
        value = self.want_str(node, key)
        if value is not None and not pattern.fullmatch(value):
            self.add(node.line_of(key), key, f'"{value}" is not {what}')
            return None
        return value

    def want_duration(self, node: LineMap, key: str) -> timedelta | None:
        result, problem = parse_duration(node[key])
        if problem:
            self.add(node.line_of(key), key, problem)
        return result

    def require(self, node: LineMap, keys: Iterable[str], where: str) -> None:
        for key in keys:
            if key not in node:
                self.add(node.line, key, f"missing required key{where}")


def _check_window(c: _Checker, doc: LineMap) -> tuple[time, time] | None:
    if "send_window" not in doc:
        return DEFAULT_SEND_WINDOW
    value, line = doc["send_window"], doc.line_of("send_window")
    if not isinstance(value, list) or len(value) != 2:
        c.add(
            line,
            "send_window",
            f'must be a list of two times, e.g. ["09:00", "20:00"], got {_kind(value)}',
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


def _check_when(c: _Checker, step: LineMap) -> tuple[Condition, ...] | None:
    value, line = step["when"], step.line_of("when")
    items = value if isinstance(value, list) else [value]
    conditions = []
    for item in items:
        if not isinstance(item, str) or not item.strip():
            c.add(
                line,
                "when",
                f'must be an attribute such as "smoker" or "not smoker", got {_kind(item)}',
            )
            return None
        words = item.split()
        negate = words[0] == "not"
        if negate:
            words = words[1:]
        if len(words) != 1:
            c.add(line, "when", f'"{item}" is not a condition: write "attribute" or "not attribute"')
            return None
        attribute = words[0]
        if attribute not in KNOWN_ATTRIBUTES:
            hint = _suggest(attribute, KNOWN_ATTRIBUTES) or (
                f"; known attributes: {', '.join(sorted(KNOWN_ATTRIBUTES))}"
            )
            c.add(line, "when", f"unknown attribute '{attribute}'{hint}")
            return None
        conditions.append(Condition(attribute, negate))
    return tuple(conditions)


def _check_step(
    c: _Checker,
    step: LineMap,
    window: tuple[time, time] | None,
    template_exists: TemplateExists | None,
) -> Step | None:
    before = len(c.errors)
    c.unknown_keys(step, STEP_KEYS, " in a step")
    c.require(step, ("id", "day", "time", "message"), " in a step")
    v: dict[str, Any] = {}
    if "id" in step:
        v["id"] = c.want_pattern(step, "id", _STEP_ID, "a step id: use lowercase letters, digits, - and _")
    for key, what in (("day", "days from surgery"), ("every", "days"), ("until", "a day")):
        if key in step:
            v[key] = c.want_int(step, key, what)
    if "time" in step:
        v["time"], problem = parse_time(step["time"])
        if problem:
            c.add(step.line_of("time"), "time", problem)
        elif window and not window[0] <= v["time"] < window[1]:
            c.add(
                step.line_of("time"),
                "time",
                f"{v['time']:%H:%M} is outside the send window "
                f"{window[0]:%H:%M}-{window[1]:%H:%M}, so it would never be sent then",
            )
    if "message" in step:
        v["message"] = c.want_pattern(
            step,
            "message",
            _TEMPLATE_NAME,
            "a template name: use lowercase letters, digits, - and _",
        )
        if v["message"] and template_exists is not None and not template_exists(v["message"]):
            c.add(step.line_of("message"), "message", f"unknown template '{v['message']}'")
    if "ask" in step:
        ask = step["ask"]
        if not isinstance(ask, str) or ask not in QUESTIONS:
            shown = f"'{ask}'" if isinstance(ask, str) else _kind(ask)
            hint = _suggest(ask, QUESTIONS) if isinstance(ask, str) else ""
            hint = hint or f"; questions: {', '.join(sorted(QUESTIONS))}"
            c.add(step.line_of("ask"), "ask", f"unknown question {shown}{hint}")
        else:
            v["ask"] = ask
    if "when" in step:
        v["when"] = _check_when(c, step)
    if "channel" in step:
        channel = step["channel"]
        if channel not in CHANNEL_PREFERENCES or not isinstance(channel, str):
            c.add(
                step.line_of("channel"),
                "channel",
                f"must be sms, email or both, got {_kind(channel)}",
            )
        else:
            v["channel"] = channel
    for key in ("remind_after", "missed_after", "expires_after"):
        if key in step:
            v[key] = c.want_duration(step, key)
    if "catch_up" in step:
        v["catch_up"] = c.want_bool(step, "catch_up")
    check_step_timing(c, step, v)

    # Combinations that parse but would silently do something other than what was meant.
    day, every, until = v.get("day"), v.get("every"), v.get("until")
    if every is not None and every < 1:
        c.add(step.line_of("every"), "every", f"must be 1 or more days, got {every}")
    if "until" in step and "every" not in step:
        c.add(step.line_of("until"), "until", "needs every (how often to repeat until then)")
    if "every" in step and "until" not in step:
        c.add(step.line_of("every"), "every", "needs until (the last day to repeat on)")
    if day is not None and until is not None and until < day:
        c.add(step.line_of("until"), "until", f"day {until} is before the first day {day}")
    for key in ("remind_after", "missed_after"):
        if key in step and "ask" not in step:
            c.add(step.line_of(key), key, "only makes sense on a step that asks a question (ask)")
    remind, missed = v.get("remind_after"), v.get("missed_after")
    if remind and missed and remind >= missed:
        c.add(step.line_of("remind_after"), "remind_after", "must be shorter than missed_after")

    if len(c.errors) > before:
        return None
    return Step(
        id=v["id"],
        day=v["day"],
        time=v["time"],
        message=v["message"],
        ask=v.get("ask"),
        every=every,
        until=until,
        when=v.get("when") or (),
        channel=v.get("channel"),
        remind_after=remind,
        missed_after=missed,
        expires_after=v.get("expires_after"),
        catch_up=bool(v.get("catch_up", False)),
        anchor=v.get("anchor", SURGERY),
        fallback_day=v.get("fallback_day"),
        priority=v.get("priority", "normal"),
        line=step.line,
    )


def _check_sign_off(c: _Checker, doc: LineMap) -> bool:
    """Whether the file records a review (``by`` and ``date`` both set)."""
    value = doc["clinical_sign_off"]
    if not isinstance(value, LineMap):
        c.add(
            doc.line_of("clinical_sign_off"),
            "clinical_sign_off",
            f"must be a mapping with by and date, got {_kind(value)}",
        )
        return False
    c.unknown_keys(value, SIGN_OFF_KEYS, " in clinical_sign_off")
    if value.get("by") is not None and not isinstance(value["by"], str):
        c.add(value.line_of("by"), "by", f"must be a name, got {_kind(value['by'])}")
    if value.get("date") is not None and not isinstance(value["date"], date | str):
        c.add(
            value.line_of("date"),
            "date",
            f"must be a date (YYYY-MM-DD), got {_kind(value['date'])}",
        )
    return value.get("by") is not None and value.get("date") is not None


def _check_document(
    c: _Checker, doc: LineMap, stem: str, version: str, template_exists: TemplateExists | None
) -> Schedule | None:
    c.unknown_keys(doc, TOP_LEVEL_KEYS, "")
    c.require(doc, ("id", "name", "steps"), "")
    schedule_id = name = care_team = None
    if "id" in doc:
        schedule_id = c.want_pattern(doc, "id", _SLUG, "a slug: use lowercase letters, digits and -")
        if schedule_id and schedule_id != stem:
            c.add(doc.line_of("id"), "id", f"'{schedule_id}' must match the file name '{stem}'")
    if "name" in doc:
        name = c.want_str(doc, "name")
    if "description" in doc:
        c.want_str(doc, "description")
    if "care_team" in doc:
        care_team = c.want_str(doc, "care_team")
    in_sms = c.want_bool(doc, "procedure_name_in_sms") if "procedure_name_in_sms" in doc else False
    signed_off = _check_sign_off(c, doc) if "clinical_sign_off" in doc else False
    window = _check_window(c, doc)
    discharge_fallback = check_discharge_fallback(c, doc)
    daily_limit = check_daily_limit(c, doc)

    steps: list[Step | None] = []
    raw_steps = doc.get("steps")
    if "steps" in doc and (not isinstance(raw_steps, list) or not raw_steps):
        c.add(
            doc.line_of("steps"),
            "steps",
            f"must be a non-empty list of steps, got {_kind(raw_steps)}",
        )
    elif isinstance(raw_steps, list):
        first_line: dict[str, int] = {}
        for index, raw in enumerate(raw_steps, start=1):
            if not isinstance(raw, LineMap):
                c.add(
                    doc.line_of("steps"),
                    "steps",
                    f"step {index} must be a mapping of keys, got {_kind(raw)}",
                )
                continue
            steps.append(_check_step(c, raw, window, template_exists))
            step_id = raw.get("id")
            if isinstance(step_id, str):
                if step_id in first_line:
                    c.add(
                        raw.line_of("id"),
                        "id",
                        f"duplicate step id '{step_id}' (first at line {first_line[step_id]})",
                    )
                else:
                    first_line[step_id] = raw.line_of("id")

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


def _parse(text: str, filename: str, raw: bytes, template_exists: TemplateExists | None) -> Schedule:
    c = _Checker(filename)
    data, problems = read_yaml(text)
    for p in problems:
        c.add(p.line, p.key, p.problem)
    if data is not None and not isinstance(data, LineMap):
        c.add(1, None, f"the file must be a mapping of keys (id, name, steps, ...), got {_kind(data)}")
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
