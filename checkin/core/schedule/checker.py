"""What every check of a schedule-family YAML file shares: the ``Checker`` that collects
problems as ``file:line: key: problem``, and the parsers of times and durations. Pure.

Used by ``checkin.core.schedule.load`` (documents), ``load_steps`` (steps), ``load_timing``
(timing keys) and ``checkin.core.care_teams`` (durations).
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable
from datetime import time, timedelta

from checkin.core.schedule.yamlsource import LineMap
from checkin.errors import ScheduleError

_HHMM = re.compile(r"(\d\d):(\d\d)")
_DURATION = re.compile(r"(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?")
_DURATION_HELP = 'must be a duration like "4h", "30m", "2d" or "1h30m"'


def kind(value: object) -> str:
    """How a YAML value reads to an admin, for "got ..." in a problem."""
    if value is None:
        return "nothing (null)"
    if isinstance(value, bool):
        return f"a yes/no value ({str(value).lower()})"
    if isinstance(value, int | float):
        return f"the number {value}"
    if isinstance(value, str):
        return f'the text "{value}"'
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return type(value).__name__


def suggest(word: str, choices: Iterable[str]) -> str:
    """``"; did you mean 'x'?"`` for the closest of ``choices``, or ``""``."""
    close = difflib.get_close_matches(word, sorted(choices), n=1, cutoff=0.6)
    return f"; did you mean '{close[0]}'?" if close else ""


def parse_time(value: object) -> tuple[time | None, str | None]:
    """``("HH:MM" string) -> (time, None)``, anything else ``-> (None, problem)``."""
    if not isinstance(value, str):
        hint = ""
        if type(value) is int and 0 <= value < 24 * 60:
            # YAML 1.1 reads an unquoted 10:00 as the base-60 number 600.
            hint = f"; YAML read an unquoted {value // 60}:{value % 60:02d} as the number {value}"
        return None, f'time must be a quoted "HH:MM" string, got {kind(value)}{hint}'
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
        return None, f"{_DURATION_HELP}, got {kind(value)}"
    match = _DURATION.fullmatch(value)
    if not value or not match:
        return None, f'{_DURATION_HELP}, got "{value}"'
    days, hours, minutes = (int(g) if g else 0 for g in match.groups())
    result = timedelta(days=days, hours=hours, minutes=minutes)
    if not result:
        return None, f'must be longer than zero, got "{value}"'
    return result, None


class Checker:
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
                hint = suggest(name, valid) or f"; valid keys{where}: {', '.join(valid)}"
                self.add(node.line_of(key), name, f"unknown key{where}{hint}")

    def want_int(self, node: LineMap, key: str, what: str) -> int | None:
        value = node[key]
        if type(value) is not int:  # bool is an int subclass; `day: yes` is a mistake
            self.add(node.line_of(key), key, f"must be a whole number ({what}), got {kind(value)}")
            return None
        return value

    def want_str(self, node: LineMap, key: str) -> str | None:
        value = node[key]
        if not isinstance(value, str) or not value.strip():
            self.add(node.line_of(key), key, f"must be non-empty text, got {kind(value)}")
            return None
        return value

    def want_bool(self, node: LineMap, key: str) -> bool | None:
        value = node[key]
        if not isinstance(value, bool):
            self.add(node.line_of(key), key, f"must be true or false, got {kind(value)}")
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

    def want_choice(self, node: LineMap, key: str, choices: Iterable[str], problem: str) -> str | None:
        """``node[key]`` if it is one of ``choices``; else ``problem`` + ``got <kind>``."""
        value = node[key]
        if not isinstance(value, str) or value not in choices:
            self.add(node.line_of(key), key, f"{problem}, got {kind(value)}")
            return None
        return value

    def require(self, node: LineMap, keys: Iterable[str], where: str) -> None:
        for key in keys:
            if key not in node:
                self.add(node.line, key, f"missing required key{where}")
