"""``checkin schedules capacity``: can the configured SMS rate carry the timeline?

Pending rows are grouped by due minute (UTC) and channel in the database. For SMS, one sender
sends at ``CHECKIN_SMS_RATE`` messages per second, so a minute holding ``n`` messages needs
``n / rate`` seconds, and a backlog from one busy minute spills into the next. The report
replays that queue minute by minute and checks that the last message of every minute still
goes out before the earliest expiry among that minute's messages. Expiry is already capped
at the close of the patient's send window (``checkin.core.timeline``), so "before expiry" also
means "inside the window". Email has no sender-side limit here (the relay queues), so it is
only counted.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from checkin.config import Settings
from checkin.outbound.dispatch import sender_key
from checkin.states import ChannelName, OutboxStatus
from checkin.store.models import OutboxMessage

TOP = 10  # busiest minutes listed


@dataclass(frozen=True)
class Minute:
    at: datetime  # UTC, start of the minute
    count: int
    first_expiry: datetime


@dataclass(frozen=True)
class Replay:
    minute: Minute
    last_out: datetime  # when its last message would go at the given rate

    @property
    def lag(self) -> timedelta:
        return self.last_out - self.minute.at

    @property
    def ok(self) -> bool:
        return self.last_out < self.minute.first_expiry


def minutes(session: Session, *, channel: str, start: datetime, end: datetime) -> list[Minute]:
    """Pending rows of ``channel`` due in ``[start, end)`` (overdue ones count at ``start``),
    grouped by due minute, in time order."""
    due = func.coalesce(OutboxMessage.next_attempt_at, OutboxMessage.due_at)
    if session.get_bind().dialect.name == "postgresql":
        bucket = func.date_trunc("minute", func.timezone("UTC", due))
    else:
        bucket = func.strftime("%Y-%m-%d %H:%M", due)
    rows = session.execute(
        select(bucket.label("m"), func.count(), func.min(OutboxMessage.expires_at))
        .where(
            OutboxMessage.status == OutboxStatus.PENDING,
            OutboxMessage.channel == channel,
            due < end,
            OutboxMessage.expires_at > start,
        )
        .group_by(bucket)
        .order_by(bucket)
    ).all()
    found: dict[datetime, Minute] = {}
    for raw, count, expiry in rows:
        at = max(_minute(raw), start.replace(second=0, microsecond=0))
        prev = found.get(at)
        if prev is not None:  # overdue minutes fold into the first
            count, expiry = prev.count + count, min(prev.first_expiry, expiry)
        found[at] = Minute(at, int(count), _aware(expiry))
    return [found[k] for k in sorted(found)]


def replay(load: list[Minute], rate: float) -> list[Replay]:
    """Send ``load`` through one sender at ``rate`` msg/s, oldest minute first."""
    interval = timedelta(seconds=1.0 / rate)
    free: datetime | None = None
    out: list[Replay] = []
    for m in load:
        start = m.at if free is None else max(free, m.at)
        free = start + interval * m.count
        out.append(Replay(m, free - interval))
    return out


def needed_rate(load: list[Minute]) -> float:
    """The smallest rate on a 0.01 msg/s grid (up to 1000) at which every minute finishes
    before its expiry; 1000 if none does."""
    low, high = 0, 100_000  # hundredths of a message per second; `high` is feasible or the cap
    while high - low > 1:
        mid = (low + high) // 2
        if all(r.ok for r in replay(load, mid / 100)):
            high = mid
        else:
            low = mid
    return high / 100


def capacity_report(session: Session, settings: Settings, *, now: datetime, days: int) -> list[str]:
    """Lines for the admin: pending load per channel, the busiest SMS minutes with how long
    each takes at ``settings.sms_rate``, and a verdict line starting ``Verdict: OK`` or
    ``Verdict: TOO SLOW``."""
    end = now + timedelta(days=days)
    rate = settings.sms_rate
    sms = minutes(session, channel=ChannelName.SMS, start=now, end=end)
    email = minutes(session, channel=ChannelName.EMAIL, start=now, end=end)
    total_sms = sum(m.count for m in sms)
    lines = [
        (
            f"Pending messages due {_fmt(now)} .. {_fmt(end)} UTC: {total_sms:,} SMS, "
            f"{sum(m.count for m in email):,} email"
        ),
        f"SMS sender {sender_key(settings, 'sms')} at {rate:g} msg/s ({rate * 60:g} per minute)",
    ]
    if not sms:
        lines.append("Verdict: OK: no SMS pending in this period.")
        return lines
    replays = replay(sms, rate)
    busiest = sorted(sorted(replays, key=lambda r: -r.minute.count)[:TOP], key=lambda r: r.minute.at)
    lines.append(
        f"Busiest minutes (UTC)      {'SMS':>7}  {'needs':>9}  {'last out':>9}  {'first expiry':>12}"
    )
    for r in busiest:
        needs = timedelta(seconds=r.minute.count / rate)
        lines.append(
            f"  {_fmt(r.minute.at)}      {r.minute.count:>7,}  {_span(needs):>9}  "
            f"{'+' + _span(r.lag):>9}  {_fmt_time(r.minute.first_expiry):>12}"
            f"{'' if r.ok else '  EXPIRES FIRST'}"
        )
    if email:
        top = max(email, key=lambda m: m.count)
        lines.append(
            f"Email: busiest minute {_fmt(top.at)} with {top.count:,} "
            "(no sender-side limit; the relay queues)"
        )
    late = [r for r in replays if not r.ok]
    worst = max(replays, key=lambda r: r.lag)
    if not late:
        lines.append(
            f"Verdict: OK: {rate:g} msg/s sends every minute's SMS before it expires "
            f"(worst: {worst.minute.count:,} due {_fmt(worst.minute.at)} UTC, last out "
            f"{_span(worst.lag)} later)."
        )
    else:
        count = sum(r.minute.count for r in late)
        lines.append(
            f"Verdict: TOO SLOW: at {rate:g} msg/s, {len(late)} minute(s) holding {count:,} SMS "
            f"would not finish before their messages expire (first {_fmt(late[0].minute.at)} "
            f"UTC). Set CHECKIN_SMS_RATE to at least {needed_rate(sms):g} (a toll-free number "
            "or short code sends faster than a long code), or spread the schedules' times."
        )
    return lines


def _minute(raw: object) -> datetime:
    if isinstance(raw, datetime):
        return _aware(raw).replace(second=0, microsecond=0)
    return datetime.strptime(str(raw), "%Y-%m-%d %H:%M").replace(tzinfo=UTC)


def _aware(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _fmt(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%d %H:%M")


def _fmt_time(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%m-%d %H:%M")


def _span(delta: timedelta) -> str:
    seconds = max(int(delta.total_seconds()), 0)
    hours, rest = divmod(seconds, 3600)
    return f"{hours}h{rest // 60:02d}m" if hours else f"{rest // 60}m{rest % 60:02d}s"


__all__ = ["Minute", "Replay", "capacity_report", "minutes", "needed_rate", "replay"]
