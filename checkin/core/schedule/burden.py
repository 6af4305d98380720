"""The daily limit: how many messages one patient may get on one local day. Pure.

A schedule lists bands (``daily_limit``); the first band covering a day (days since surgery)
sets that day's maximum. When more messages fall on a day than its maximum:

* ``high`` messages always stay (check-ins, the welcome, visit reminders: their day matters);
* the others are kept by priority (``normal`` before ``low``), then by how long they have
  already waited (moved ones first), then by time of day, then by file order;
* the rest move to the next day, keeping their wall time, and compete there again. A message
  that would move more than ``MAX_SHIFT_DAYS`` from its own day is dropped, and reported, so
  ``checkin schedules lint`` can show it.

Only ``high`` messages can leave a day over its limit; lint reports such days.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, time, timedelta

from checkin.core.schedule.model import MAX_SHIFT_DAYS, PRIORITIES, LimitBand

# Texts per day when a schedule file sets no daily_limit: 2 a day in the first two weeks after
# surgery (when most check-ins fall and patients are tired), 3 on any other day.
DEFAULT_DAILY_LIMIT: tuple[LimitBand, ...] = (LimitBand(max=2, start=0, end=14), LimitBand(max=3))

_RANK = {p: i for i, p in enumerate(PRIORITIES)}


def limit_for(day: int, bands: Sequence[LimitBand]) -> int | None:
    """The maximum for ``day`` (days since surgery): the first covering band's, or None."""
    for band in bands:
        if band.covers(day):
            return band.max
    return None


@dataclass(frozen=True)
class Slot:
    """One occurrence competing for a day: ``local_date`` is the day it wants."""

    index: int  # the caller's handle
    local_date: date
    wall_time: time
    priority: str
    order: int  # file order of its step, the last tie-breaker


def place(
    slots: Sequence[Slot], bands: Sequence[LimitBand], surgery_date: date
) -> tuple[dict[int, date], list[int]]:
    """``({index: local date}, [dropped indexes])`` for ``slots`` under ``bands``.

    Deterministic: the result depends only on the slots, not on their order in the input.
    """
    if not bands:
        return {s.index: s.local_date for s in slots}, []
    by_day: dict[date, list[Slot]] = defaultdict(list)
    for s in slots:
        by_day[s.local_date].append(s)
    placed: dict[int, date] = {}
    dropped: list[int] = []
    pending = sorted(by_day)
    while pending:
        day = pending.pop(0)
        here = by_day.pop(day)
        cap = limit_for((day - surgery_date).days, bands)
        if cap is None or len(here) <= cap:
            placed.update((s.index, day) for s in here)
            continue
        here.sort(key=lambda s: (_RANK[s.priority], s.local_date, s.wall_time, s.order, s.index))
        high = [s for s in here if s.priority == "high"]
        rest = [s for s in here if s.priority != "high"]
        room = max(cap - len(high), 0)
        for s in [*high, *rest[:room]]:
            placed[s.index] = day
        nxt = day + timedelta(days=1)
        for s in rest[room:]:
            if (nxt - s.local_date).days > MAX_SHIFT_DAYS:
                dropped.append(s.index)
                continue
            if nxt not in by_day:
                by_day[nxt] = []
                pending.append(nxt)
                pending.sort()
            # Keeps its own wanted date, so the shift limit counts from where it started.
            by_day[nxt].append(s)
    return placed, sorted(dropped)
