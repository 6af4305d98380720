"""Which time-zone names a patient may have: a place (``America/Chicago``), never an offset.

``ZoneInfo`` accepts ``EST`` (a fixed UTC-5 offset, an hour off all summer), ``UTC``,
``Etc/GMT+5`` and old aliases (``US/Eastern``, ``Japan``); a patient given one of them gets
10:00 messages at 11:00 half the year, or at the wrong hour entirely. Only canonical
``Area/Location`` names are taken, and a common mistake gets the name it probably meant.
"""

from __future__ import annotations

from functools import cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

AREAS = ("Africa", "America", "Antarctica", "Asia", "Atlantic", "Australia", "Europe", "Indian", "Pacific")

_SUGGEST = {
    **dict.fromkeys(("est", "edt", "et", "est5edt", "us/eastern", "eastern"), "America/New_York"),
    **dict.fromkeys(("cst", "cdt", "ct", "cst6cdt", "us/central", "central"), "America/Chicago"),
    **dict.fromkeys(
        ("mst", "mdt", "mt", "mst7mdt", "us/mountain", "mountain", "navajo"),
        "America/Denver (or America/Phoenix, which keeps standard time all year)",
    ),
    **dict.fromkeys(("pst", "pdt", "pt", "pst8pdt", "us/pacific", "pacific"), "America/Los_Angeles"),
    **dict.fromkeys(("akst", "akdt", "us/alaska"), "America/Anchorage"),
    **dict.fromkeys(("hst", "us/hawaii"), "Pacific/Honolulu"),
    "us/arizona": "America/Phoenix",
    "us/michigan": "America/Detroit",
    "ast": "America/Puerto_Rico",
    **dict.fromkeys(("gb", "bst"), "Europe/London"),
    "cet": "Europe/Paris (or the patient's own city)",
}


@cache
def _canonical_by_lower() -> dict[str, str]:
    return {z.lower(): z for z in available_timezones() if z.split("/", 1)[0] in AREAS}


def zone_problem(name: str) -> str | None:
    """None when ``name`` is a canonical IANA place zone; else what is wrong, with a suggestion."""
    key = name.strip().lower()
    if key in _SUGGEST and ("/" in key or len(key) > 5):
        return f"{name!r} is an old alias, not a place zone; use {_SUGGEST[key]}"
    if key in _SUGGEST:
        return f"{name!r} is an abbreviation, not a place (it stands for a fixed UTC offset, an hour off half the year); use {_SUGGEST[key]}"
    if key in ("utc", "gmt", "z", "zulu", "uct", "universal") or key.startswith(
        ("etc/", "gmt+", "gmt-", "utc+", "utc-")
    ):
        return f"{name!r} is a fixed offset, not a place; use the patient's zone, like America/Chicago or Europe/London"
    canonical = _canonical_by_lower().get(key)
    if canonical is not None and canonical != name.strip():
        return f"{name!r} is not an IANA time zone; did you mean {canonical}?"
    if canonical is None:
        try:
            ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError):
            return f"{name!r} is not an IANA time zone like America/Chicago"
        return f"{name!r} is an old alias; use the Area/City name, like America/Chicago"
    return None
