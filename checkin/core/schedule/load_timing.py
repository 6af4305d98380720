"""Validation of the timing keys a schedule file may set: anchors, priorities, the daily limit
and the discharge fallback. Part of ``checkin.core.schedule.load`` (same error contract:
every problem is reported as ``file:line: key: problem``). Pure.
"""

from __future__ import annotations

import re
from typing import Any

from checkin.core.schedule.burden import DEFAULT_DAILY_LIMIT
from checkin.core.schedule.checker import Checker, kind
from checkin.core.schedule.model import DISCHARGE, PRIORITIES, SURGERY, LimitBand
from checkin.core.schedule.yamlsource import LineMap

APPOINTMENT_KIND = re.compile(r"[a-z][a-z0-9]*(?:_[a-z0-9]+)*")
BAND_KEYS = ("from", "until", "max")
# A fallback of more than a month would mean checks start long after most patients are home.
MAX_DISCHARGE_FALLBACK = 30


def check_step_timing(c: Checker, step: LineMap, v: dict[str, Any]) -> None:
    """``anchor``, ``fallback_day`` and ``priority`` of one step into ``v``."""
    if "anchor" in step:
        anchor = step["anchor"]
        if not isinstance(anchor, str) or not APPOINTMENT_KIND.fullmatch(anchor):
            c.add(
                step.line_of("anchor"),
                "anchor",
                f"must be surgery, discharge or an appointment kind such as first_visit "
                f"(lowercase letters, digits and _), got {kind(anchor)}",
            )
        else:
            v["anchor"] = anchor
    if "fallback_day" in step:
        v["fallback_day"] = c.want_int(step, "fallback_day", "days from surgery")
        anchor = v.get("anchor", SURGERY)
        if anchor in (SURGERY, DISCHARGE):
            c.add(
                step.line_of("fallback_day"),
                "fallback_day",
                "only makes sense with an appointment anchor (the day to use until it is booked)",
            )
        if "every" in step:
            c.add(step.line_of("fallback_day"), "fallback_day", "cannot be used on a repeating step")
    if "priority" in step:
        v["priority"] = c.want_choice(step, "priority", PRIORITIES, f"must be one of {', '.join(PRIORITIES)}")


def check_discharge_fallback(c: Checker, doc: LineMap) -> int:
    if "discharge_fallback_day" not in doc:
        return 0
    value = c.want_int(doc, "discharge_fallback_day", "days from surgery to assume discharge")
    if value is None:
        return 0
    if not 0 <= value <= MAX_DISCHARGE_FALLBACK:
        c.add(
            doc.line_of("discharge_fallback_day"),
            "discharge_fallback_day",
            f"must be 0-{MAX_DISCHARGE_FALLBACK} days after surgery, got {value}",
        )
    return value


def check_daily_limit(c: Checker, doc: LineMap) -> tuple[LimitBand, ...]:
    """The bands of ``daily_limit``; the default when the file sets none.

    Each band is ``{from: DAY, until: DAY, max: N}`` (``from``/``until`` optional, inclusive);
    the first band covering a day wins, and the last band must cover every day (no ``from``,
    no ``until``) so no day is left without a limit.
    """
    if "daily_limit" not in doc:
        return DEFAULT_DAILY_LIMIT
    raw, line = doc["daily_limit"], doc.line_of("daily_limit")
    if not isinstance(raw, list) or not raw:
        c.add(line, "daily_limit", f"must be a list of bands like {{until: 14, max: 2}}, got {kind(raw)}")
        return ()
    bands: list[LimitBand] = []
    for index, band in enumerate(raw, start=1):
        if not isinstance(band, LineMap):
            c.add(line, "daily_limit", f"band {index} must be a mapping (from, until, max), got {kind(band)}")
            continue
        before = len(c.errors)
        c.unknown_keys(band, BAND_KEYS, " in a daily_limit band")
        if "max" not in band:
            c.add(band.line, "max", "missing required key in a daily_limit band")
        most = c.want_int(band, "max", "messages a day") if "max" in band else None
        if most is not None and not 1 <= most <= 10:
            c.add(band.line_of("max"), "max", f"must be 1-10 messages a day, got {most}")
        start = c.want_int(band, "from", "a day") if "from" in band else None
        end = c.want_int(band, "until", "a day") if "until" in band else None
        if start is not None and end is not None and end < start:
            c.add(band.line_of("until"), "until", f"day {end} is before the first day {start}")
        if len(c.errors) == before and most is not None:
            bands.append(LimitBand(most, start, end, band.line))
    if bands and (bands[-1].start is not None or bands[-1].end is not None):
        c.add(
            bands[-1].line,
            "daily_limit",
            "the last band must have no from/until, so every day has a limit (e.g. {max: 3})",
        )
    return tuple(bands)
