"""Planned messages from a schedule and an enrollment. Pure: no I/O; ``now`` is an argument.

Rules (``plan``):

* Day ``k`` of a step is the calendar day ``anchor + k`` in the patient's zone (the anchor is
  the surgery date unless the step names another; see ``checkin.core.schedule.anchors``), at the
  step's wall time there, so 10:00 stays 10:00 local across DST. Gap and fold wall times follow
  ``window.local_instant`` (gap: forward by the gap length; fold: first occurrence).
* A recurring step falls on ``step.days()`` (``day``, ``day + every``, ... up to ``until``); an
  occurrence is its day offset, so keys survive a move of the surgery date.
* The daily limit (``checkin.core.schedule.burden``) is applied to every occurrence, past or
  future, before ``now`` is looked at, so re-planning places messages where the first plan did.
  A moved occurrence keeps its key.
* A due time outside the send window moves to ``window.next_allowed``. ``expires_at`` is
  ``due_at + expires_after`` capped at the close of that day's window (the close itself when
  ``expires_after`` is None) and never before ``due_at``.
* Occurrences due before ``now`` are not planned (due exactly at ``now`` is). With
  ``catch_up: true`` the latest missed occurrence, and only it, is planned at
  ``next_allowed(now)`` with its expiry computed from that new due time, unless the step's next
  regular occurrence is due on the same local day (the patient would get the message twice).
* Channel: ``step.channel`` or the enrollment's; ``both`` gives one message per available
  channel; an unavailable channel falls back to the other one; with neither, nothing.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from checkin.core.schedule.anchors import anchor_step
from checkin.core.schedule.burden import Slot, place
from checkin.core.schedule.model import Appointment, ChannelName, PlanInput, PlannedMessage, Schedule, Step
from checkin.core.window import Window, local_instant, next_allowed, window_end

# Why not APScheduler's CalendarIntervalTrigger for recurrence: it does keep 10:00 local across
# DST, but it *drops* a day whose wall time falls in a gap (02:30 on 2026-03-08 New York yields
# no run), which breaks both the gap rule above and occurrence = day offset.
# tests/unit/test_timeline.py pins that behaviour and cross-checks plan() against the trigger
# where the two rules agree.


def plan(schedule: Schedule, enrollment: PlanInput, *, now: datetime) -> list[PlannedMessage]:
    """Every message still to send, sorted by (due_at, step_id, channel).

    ``now`` must be aware. Each key appears once. Raises ValueError on a naive ``now``, a
    schedule with a repeated step id, or a send window whose start is not before its end;
    ``ZoneInfoNotFoundError`` on an unknown zone.
    """
    return plan_with_drops(schedule, enrollment, now=now)[0]


def plan_with_drops(
    schedule: Schedule, enrollment: PlanInput, *, now: datetime
) -> tuple[list[PlannedMessage], list[tuple[str, int]]]:
    """``plan()`` plus the ``(step_id, occurrence)`` pairs the daily limit dropped."""
    if now.tzinfo is None:
        raise ValueError("plan() needs an aware `now`")
    now = now.astimezone(UTC)
    ids = [s.id for s in schedule.steps]
    if len(ids) != len(set(ids)):
        raise ValueError(f"schedule {schedule.id!r} repeats a step id; keys would collide")
    tz = ZoneInfo(enrollment.timezone)
    wanted = _wanted(schedule, enrollment)
    order = {s.id: i for i, s in enumerate(schedule.steps)}
    slots = [
        Slot(i, local_date, step.time.replace(tzinfo=None), step.priority, order[step.id])
        for i, (step, _, local_date, _) in enumerate(wanted)
    ]
    placed, dropped = place(slots, schedule.daily_limit, enrollment.surgery_date)
    by_step: dict[str, list[_Day]] = {}
    for i, (step, day, local_date, booked) in enumerate(wanted):
        if i in placed:
            by_step.setdefault(step.id, []).append((day, local_date, placed[i], booked))
    planned = [
        message
        for step in schedule.steps
        if step.id in by_step
        for message in _messages(step, by_step[step.id], enrollment, schedule.send_window, tz, now)
    ]
    planned.sort(key=lambda m: (m.due_at, m.step_id, m.channel, m.occurrence))
    return planned, [(wanted[i][0].id, wanted[i][1]) for i in dropped]


# (occurrence, wanted local date, placed local date, appointment it counts from)
_Day = tuple[int, date, date, Appointment | None]


def _wanted(schedule: Schedule, enrollment: PlanInput) -> list[tuple[Step, int, date, Appointment | None]]:
    """Every occurrence of every applicable step, wherever it falls in time: the daily limit is
    applied to the whole timeline so that re-planning later places messages the same way."""
    attributes = enrollment.attributes | (frozenset({"has_email"}) if enrollment.has_email else frozenset())
    wanted: list[tuple[Step, int, date, Appointment | None]] = []
    for step in schedule.steps:
        if not step.applies_to(attributes) or not _channels(step, enrollment):
            continue
        anchored = anchor_step(step, schedule, enrollment)
        if anchored is None:
            continue
        for day in anchored.days:
            wanted.append((step, day, anchored.base + timedelta(days=day), anchored.appointment))
    return wanted


def _messages(
    step: Step, days: list[_Day], enrollment: PlanInput, window: Window, tz: ZoneInfo, now: datetime
) -> list[PlannedMessage]:
    """The messages of one step's placed days still to send, one per channel."""
    messages = []
    for occurrence, due, expires, moved, booked in _occurrences(step, days, window, tz, now):
        followup_at = local_instant(booked.at.date(), booked.at.time(), tz) if booked else None
        for channel in _channels(step, enrollment):
            messages.append(
                PlannedMessage(
                    enrollment_id=enrollment.id,
                    step_id=step.id,
                    occurrence=occurrence,
                    channel=channel,
                    message=step.message,
                    ask=step.ask,
                    due_at=due,
                    expires_at=expires,
                    local_due=due.astimezone(tz),
                    remind_after=step.remind_after,
                    missed_after=step.missed_after,
                    followup_at=followup_at,
                    followup_where=booked.where if booked else None,
                    moved_days=moved,
                )
            )
    return messages


def replan(
    schedule: Schedule, enrollment: PlanInput, *, now: datetime, sent_keys: set[str]
) -> list[PlannedMessage]:
    """``plan()`` minus the keys already sent: what to upsert after the surgery date moves.

    Sent rows are history and are never planned again; every other key keeps its identity
    and gets its new due time.
    """
    return [m for m in plan(schedule, enrollment, now=now) if m.key not in sent_keys]


def preview_rows(planned: Iterable[PlannedMessage]) -> list[dict[str, str | None]]:
    """One flat row per message for previews (CLI table, JSON): local and UTC times as ISO."""
    return [
        {
            "step": m.step_id,
            "due_local": m.local_due.isoformat(),
            "due_utc": _iso_z(m.due_at),
            "channel": m.channel,
            "message": m.message,
            "ask": m.ask,
            "expires_utc": _iso_z(m.expires_at),
        }
        for m in planned
    ]


def _iso_z(instant: datetime) -> str:
    return instant.astimezone(UTC).replace(tzinfo=None).isoformat() + "Z"


def _channels(step: Step, enrollment: PlanInput) -> list[ChannelName]:
    available: list[ChannelName] = []
    if enrollment.has_phone:
        available.append("sms")
    if enrollment.has_email:
        available.append("email")
    wanted = step.channel or enrollment.channel
    if wanted == "both" or wanted in available:
        return [c for c in available if wanted in ("both", c)]
    # The preferred channel cannot reach this patient: a reminder by the other one beats none.
    return available[:1]


def _timing(due: datetime, step: Step, window: Window, tz: ZoneInfo) -> tuple[datetime, datetime]:
    """(due_at, expires_at) for a wanted send instant, per the module rules."""
    due = next_allowed(due, window, tz)
    closes = window_end(due, window, tz)
    expires = closes if step.expires_after is None else min(due + step.expires_after, closes)
    return due, max(expires, due)


def _occurrences(
    step: Step,
    days: list[_Day],
    window: Window,
    tz: ZoneInfo,
    now: datetime,
) -> list[tuple[int, datetime, datetime, int, Appointment | None]]:
    """``(occurrence, due, expires, days moved, appointment)`` still to send, from
    ``(occurrence, wanted date, placed date, appointment)`` in day order."""
    wall_time = step.time.replace(tzinfo=None)
    timed: list[tuple[int, datetime, datetime, int, Appointment | None]] = []
    for day, wanted_date, local_date, booked in days:
        due, expires = _timing(local_instant(local_date, wall_time, tz), step, window, tz)
        timed.append((day, due, expires, (local_date - wanted_date).days, booked))
    future = [t for t in timed if t[1] >= now]
    missed = [t for t in timed if t[1] < now]
    if step.catch_up and missed:
        last = missed[-1]
        due, expires = _timing(now, step, window, tz)
        superseded = bool(future) and (future[0][1].astimezone(tz).date() == due.astimezone(tz).date())
        if not superseded:
            future.insert(0, (last[0], due, expires, 0, last[4]))
    return future
