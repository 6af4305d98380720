"""Validation of a schedule file's ``steps`` list into ``Step``s. Part of
``checkin.core.schedule.load`` (same error contract: every problem is reported as
``file:line: key: problem``, and a step with any problem yields None). Pure.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import time
from typing import Any

from checkin.core.schedule.checker import Checker, kind, parse_time, suggest
from checkin.core.schedule.load_timing import check_step_timing
from checkin.core.schedule.model import (
    CHANNEL_PREFERENCES,
    KNOWN_ATTRIBUTES,
    QUESTIONS,
    SURGERY,
    Condition,
    Step,
)
from checkin.core.schedule.yamlsource import LineMap

TemplateExists = Callable[[str], bool]
Window = tuple[time, time]

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
_REQUIRED = ("id", "day", "time", "message")
_WHOLE_DAYS = (("day", "days from surgery"), ("every", "days"), ("until", "a day"))
_DURATIONS = ("remind_after", "missed_after", "expires_after")
_STEP_ID = re.compile(r"[a-z0-9]+(?:[-_][a-z0-9]+)*")
_TEMPLATE_NAME = re.compile(r"[a-z0-9]+(?:[-_][a-z0-9]+)*")


def check_steps(
    c: Checker, doc: LineMap, window: Window | None, template_exists: TemplateExists | None
) -> list[Step | None]:
    """Each entry of ``doc["steps"]`` checked (None for a bad one); step ids must be unique."""
    raw_steps = doc.get("steps")
    if "steps" in doc and (not isinstance(raw_steps, list) or not raw_steps):
        c.add(doc.line_of("steps"), "steps", f"must be a non-empty list of steps, got {kind(raw_steps)}")
        return []
    if not isinstance(raw_steps, list):
        return []
    steps: list[Step | None] = []
    first_line: dict[str, int] = {}
    for index, raw in enumerate(raw_steps, start=1):
        if not isinstance(raw, LineMap):
            c.add(doc.line_of("steps"), "steps", f"step {index} must be a mapping of keys, got {kind(raw)}")
            continue
        steps.append(check_step(c, raw, window, template_exists))
        step_id = raw.get("id")
        if not isinstance(step_id, str):
            continue
        if step_id in first_line:
            c.add(
                raw.line_of("id"),
                "id",
                f"duplicate step id '{step_id}' (first at line {first_line[step_id]})",
            )
        else:
            first_line[step_id] = raw.line_of("id")
    return steps


def check_step(
    c: Checker, step: LineMap, window: Window | None, template_exists: TemplateExists | None
) -> Step | None:
    """One step: every key on its own, then the combinations; None if any problem was added."""
    before = len(c.errors)
    c.unknown_keys(step, STEP_KEYS, " in a step")
    c.require(step, _REQUIRED, " in a step")
    v = _values(c, step, window, template_exists)
    _check_combinations(c, step, v)
    if len(c.errors) > before:
        return None
    return Step(
        id=v["id"],
        day=v["day"],
        time=v["time"],
        message=v["message"],
        ask=v.get("ask"),
        every=v.get("every"),
        until=v.get("until"),
        when=v.get("when") or (),
        channel=v.get("channel"),
        remind_after=v.get("remind_after"),
        missed_after=v.get("missed_after"),
        expires_after=v.get("expires_after"),
        catch_up=bool(v.get("catch_up", False)),
        anchor=v.get("anchor", SURGERY),
        fallback_day=v.get("fallback_day"),
        priority=v.get("priority", "normal"),
        line=step.line,
    )


def _values(
    c: Checker, step: LineMap, window: Window | None, template_exists: TemplateExists | None
) -> dict[str, Any]:
    """The value of each key the step sets (None where it has a problem), in key order."""
    v: dict[str, Any] = {}
    if "id" in step:
        v["id"] = c.want_pattern(step, "id", _STEP_ID, "a step id: use lowercase letters, digits, - and _")
    for key, what in _WHOLE_DAYS:
        if key in step:
            v[key] = c.want_int(step, key, what)
    if "time" in step:
        v["time"] = _check_time(c, step, window)
    if "message" in step:
        v["message"] = _check_message(c, step, template_exists)
    if "ask" in step:
        v["ask"] = _check_ask(c, step)
    if "when" in step:
        v["when"] = _check_when(c, step)
    if "channel" in step:
        v["channel"] = c.want_choice(step, "channel", CHANNEL_PREFERENCES, "must be sms, email or both")
    for key in _DURATIONS:
        if key in step:
            v[key] = c.want_duration(step, key)
    if "catch_up" in step:
        v["catch_up"] = c.want_bool(step, "catch_up")
    check_step_timing(c, step, v)
    return v


def _check_time(c: Checker, step: LineMap, window: Window | None) -> time | None:
    at, problem = parse_time(step["time"])
    if problem:
        c.add(step.line_of("time"), "time", problem)
    elif at is not None and window and not window[0] <= at < window[1]:
        c.add(
            step.line_of("time"),
            "time",
            f"{at:%H:%M} is outside the send window "
            f"{window[0]:%H:%M}-{window[1]:%H:%M}, so it would never be sent then",
        )
    return at


def _check_message(c: Checker, step: LineMap, template_exists: TemplateExists | None) -> str | None:
    name = c.want_pattern(
        step, "message", _TEMPLATE_NAME, "a template name: use lowercase letters, digits, - and _"
    )
    if name and template_exists is not None and not template_exists(name):
        c.add(step.line_of("message"), "message", f"unknown template '{name}'")
    return name


def _check_ask(c: Checker, step: LineMap) -> str | None:
    ask = step["ask"]
    if isinstance(ask, str) and ask in QUESTIONS:
        return ask
    shown = f"'{ask}'" if isinstance(ask, str) else kind(ask)
    hint = suggest(ask, QUESTIONS) if isinstance(ask, str) else ""
    hint = hint or f"; questions: {', '.join(sorted(QUESTIONS))}"
    c.add(step.line_of("ask"), "ask", f"unknown question {shown}{hint}")
    return None


def _check_when(c: Checker, step: LineMap) -> tuple[Condition, ...] | None:
    value, line = step["when"], step.line_of("when")
    items = value if isinstance(value, list) else [value]
    conditions = []
    for item in items:
        if not isinstance(item, str) or not item.strip():
            c.add(
                line,
                "when",
                f'must be an attribute such as "smoker" or "not smoker", got {kind(item)}',
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
            hint = suggest(attribute, KNOWN_ATTRIBUTES) or (
                f"; known attributes: {', '.join(sorted(KNOWN_ATTRIBUTES))}"
            )
            c.add(line, "when", f"unknown attribute '{attribute}'{hint}")
            return None
        conditions.append(Condition(attribute, negate))
    return tuple(conditions)


def _check_combinations(c: Checker, step: LineMap, v: dict[str, Any]) -> None:
    """Keys that parse one by one but together would silently do something other than meant."""
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
