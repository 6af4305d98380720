"""Send-window arithmetic in the patient's zone. Pure: no I/O, no clock.

Every function takes and returns UTC-aware datetimes; wall-clock times are patient-local.

Two DST rules, one for step times and one for window edges:

* A step's wall time names an instant through ``local_instant``: a wall time skipped by a
  spring-forward gap moves forward by the gap length (02:30 on 2026-03-08 in New York is
  03:30 EDT); a wall time that occurs twice in a fall-back fold takes the first occurrence
  (``fold=0``). This is what zoneinfo does with ``fold=0``, stated as policy.
* A send window ``(start, end)`` is, on each local day, one contiguous span ``[open, close)``.
  ``open`` is when the wall clock reaches ``start`` for good: the end of the gap when ``start``
  is skipped, the *second* occurrence when ``start`` repeats in a fold. ``close`` is when the
  wall clock first reaches ``end``: the end of the gap when skipped, the *first* occurrence when
  it repeats. Both choices err toward silence, so no instant in the span reads outside
  ``start <= wall < end`` on the patient's clock (the repeated hour after a fold never reopens
  a window that has closed). A day whose span is empty (a window swallowed by a gap) has none.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

Window = tuple[time, time]

# A wall clock never jumps by more than a day (Samoa skipped one in 2011), so the search for an
# open window ends well within this many days for any start < end.
_MAX_DAYS = 4


def local_instant(d: date, t: time, tz: ZoneInfo) -> datetime:
    """The UTC instant at which the wall clock in ``tz`` reads ``t`` on ``d``.

    Gap (wall time skipped): moves forward by the gap length. Fold (wall time occurs twice):
    the first occurrence. ``t`` must be naive.
    """
    wall = datetime.combine(d, t)
    # PEP 495: with fold=0 zoneinfo reads a fold time with the earlier (pre-transition) offset,
    # which is the first occurrence, and a gap time with the pre-transition offset too, which
    # lands exactly `gap` later on the post-transition clock. Both are the documented rule.
    return wall.replace(tzinfo=tz, fold=0).astimezone(UTC)


def _wall(instant: datetime, tz: ZoneInfo) -> datetime:
    return instant.astimezone(tz).replace(tzinfo=None, fold=0)


def _first_reaching(wall: datetime, tz: ZoneInfo) -> datetime:
    """Earliest instant whose local wall clock reads ``wall`` or later."""
    first = wall.replace(tzinfo=tz, fold=0).astimezone(UTC)
    if _wall(first, tz) == wall:
        return first  # exists (in a fold, fold=0 is the first occurrence)
    # In a gap: fold=1 reads the wall time with the post-transition offset, an instant before
    # the transition; fold=0 one after it. Bisect whole seconds between them: tzdata transitions
    # fall on whole seconds, and before the transition the wall clock reads earlier than `wall`.
    lo = int(wall.replace(tzinfo=tz, fold=1).astimezone(UTC).timestamp()) - 1
    hi = int(first.timestamp()) + 1
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if _wall(datetime.fromtimestamp(mid, UTC), tz) >= wall:
            hi = mid
        else:
            lo = mid
    return datetime.fromtimestamp(hi, UTC)


def _last_reaching(wall: datetime, tz: ZoneInfo) -> datetime:
    """Like ``_first_reaching``, but a wall time that repeats in a fold takes the second one."""
    second = wall.replace(tzinfo=tz, fold=1).astimezone(UTC)
    if _wall(second, tz) == wall:
        return second  # outside a fold, fold=1 is the same instant as fold=0
    return _first_reaching(wall, tz)


def _span(d: date, window: Window, tz: ZoneInfo) -> tuple[datetime, datetime]:
    """The window on local day ``d`` as ``[open, close)``; empty when ``open >= close``."""
    start, end = window
    if not start < end:
        raise ValueError(f"send window start {start} must be before its end {end}")
    return (
        _last_reaching(datetime.combine(d, start), tz),
        _first_reaching(datetime.combine(d, end), tz),
    )


def _span_containing(instant: datetime, window: Window, tz: ZoneInfo) -> tuple[datetime, datetime] | None:
    day = instant.astimezone(tz).date()
    # A span can spill past local midnight when its end falls in a gap that crosses it, so the
    # previous day's span is checked too.
    for d in (day - timedelta(days=1), day):
        opens, closes = _span(d, window, tz)
        if opens <= instant < closes:
            return opens, closes
    return None


def _utc(instant: datetime) -> datetime:
    if instant.tzinfo is None:
        raise ValueError("expected an aware datetime")
    return instant.astimezone(UTC)


def in_window(instant_utc: datetime, window: Window, tz: ZoneInfo) -> bool:
    """True when the instant lies in its local day's window (start inclusive, end exclusive)."""
    return _span_containing(_utc(instant_utc), window, tz) is not None


def next_allowed(instant_utc: datetime, window: Window, tz: ZoneInfo) -> datetime:
    """The earliest instant at or after ``instant_utc`` that is inside the window.

    Inside → itself; before today's opening → today's opening; after today's close → the next
    day's opening (days with an empty window are skipped). Raises ValueError if start >= end.
    """
    instant = _utc(instant_utc)
    day = instant.astimezone(tz).date()
    for offset in range(-1, _MAX_DAYS):
        opens, closes = _span(day + timedelta(days=offset), window, tz)
        if opens < closes and instant < closes:
            return max(instant, opens)
    raise ValueError(f"no send window {window} within {_MAX_DAYS} days of {instant}")


def window_end(instant_utc: datetime, window: Window, tz: ZoneInfo) -> datetime:
    """The close of the window on the instant's local day (exclusive: nothing goes at or after).

    For an instant inside the window this is the close of the span holding it, always later
    than the instant. For an instant outside, it is that local day's close, which may be
    earlier than the instant.
    """
    instant = _utc(instant_utc)
    span = _span_containing(instant, window, tz)
    if span is not None:
        return span[1]
    return _span(instant.astimezone(tz).date(), window, tz)[1]
