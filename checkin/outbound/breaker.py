"""Circuit breakers per channel: when the provider itself is failing, stop sending through it,
probe now and then, and resume when a probe goes through (docs/adr/0016-circuit-breakers-per-channel.md).

Without them a Twilio outage or a relay answering ``550`` to everyone spends an attempt on
every queued row within seconds, dead-letters the queue and opens a contact-problem alert per
patient. With them:

- a run of ``faults`` provider faults with no success between them (connection refused or
  timed out, 5xx, a login refused: every transient failure except a rate limit, which the
  sender hold handles) opens the channel's circuit;
- a run of identical permanent refusals for different recipients (same code, no success
  between them) reads as a relay or account problem, not as bad addresses: from the second
  one on, each is treated as transient (retried later, no dead letter, no contact alert), and
  ``burst`` of them open the circuit too;
- while the circuit is open no row of that channel is claimed, and a claimed one is deferred
  untouched (its attempt uncounted) until the next probe; after ``first_open`` one probe is let
  through; a failed probe doubles the wait (up to ``longest_open``), a success closes it;
- the state is shared with the other workers through a ``circuit:<channel>`` row in
  ``rate_limits`` (its ``next_free_at`` is when the circuit may be probed again; ``CLOSED``
  when closed), so one operations alert goes out per opening (``channel.circuit_open`` on
  ``checkin.ops``), every worker holds back and probes with one send, and ``checkin status``
  can show it;
- a circuit open longer than ``STILL_OPEN`` is told to operations once more
  (``channel.circuit_still_open``), by whichever worker notices first: ``circuit-since:<channel>``
  holds when it opened until one worker's compare-and-set takes it. Openings and long openings
  are audited, so the daily digest can tell staff.

A ``Breaker`` is one channel's state in one worker, in memory and thread-safe; ``Breakers``
keeps one per channel and talks to the shared rows.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from checkin.errors import ChannelError, Refusal
from checkin.store import audit
from checkin.store.db import insert_ignore, rowcount
from checkin.store.models import RateLimit
from checkin.store.status import (
    CIRCUIT_CLOSED,
    CIRCUIT_OPENED,
    CIRCUIT_PREFIX,
    CIRCUIT_SINCE_PREFIX,
    CIRCUIT_STILL_OPEN,
    LONG_OUTAGE,
)

ops = logging.getLogger("checkin.ops")

PREFIX = CIRCUIT_PREFIX  # checkin status reads the same rows
CLOSED = datetime(2000, 1, 1, tzinfo=UTC)  # a closed circuit's next_free_at
STALE = timedelta(hours=1)
# Open this long, the outage is more than a blip: operations hear again (once per opening).
STILL_OPEN = LONG_OUTAGE  # the daily digest's "long outage" too
# Refusals that may be a relay's or an account's answer to everyone; an opt-out never is.
BURSTABLE = frozenset({Refusal.REJECTED, Refusal.UNREACHABLE, Refusal.BAD_ADDRESS, Refusal.NOT_MOBILE})


@dataclass(frozen=True)
class BreakerPolicy:
    faults: int = 5  # provider faults in a row that open the circuit
    burst: int = 5  # identical permanent refusals to different recipients in a row that open it
    window: timedelta = timedelta(seconds=60)  # a run older than this starts again
    first_open: timedelta = timedelta(seconds=5)
    longest_open: timedelta = timedelta(seconds=60)
    still_open: timedelta = STILL_OPEN  # open this long: one more operations alert


@dataclass(frozen=True)
class Judged:
    """What a failure means: ``error`` as it should be recorded (a suspect permanent refusal
    becomes transient) and whether it just opened the circuit (``opened_until``)."""

    error: ChannelError
    opened_until: datetime | None = None
    reopened: bool = False  # a probe failed: the circuit was already open
    closed: bool = False  # a probe was answered about its message: the provider is back


@dataclass
class Breaker:
    """One channel's circuit in one worker."""

    channel: str
    policy: BreakerPolicy = field(default_factory=BreakerPolicy)
    open_until: datetime | None = None
    probing_since: datetime | None = None  # a probe is out; others wait for its answer
    wait: timedelta | None = None  # the current open period (doubles on a failed probe)
    faults: int = 0  # transient provider faults in a row
    run_started: datetime | None = None
    refusal_code: str | None = None  # the code of the current run of permanent refusals
    refused: set[str] = field(default_factory=set)  # distinct recipients in that run
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def is_open(self, now: datetime) -> bool:
        """Whether no row of this channel should even be claimed now."""
        with self._lock:
            return self.open_until is not None and (now < self.open_until or self._probe_out(now))

    def allow(self, now: datetime) -> bool:
        """Whether one send may go now: always when closed; when open, only one probe once
        the open period is over."""
        with self._lock:
            if self.open_until is None:
                return True
            if now < self.open_until or self._probe_out(now):
                return False
            self.probing_since = now
            return True

    def adopt(self, until: datetime) -> None:
        """Another worker opened this channel's circuit until ``until``: hold back as well."""
        with self._lock:
            if self.open_until is None or self.open_until < until:
                self.open_until = until
                self.wait = self.wait or self.policy.first_open

    def retry_at(self, now: datetime) -> datetime:
        """When a send refused by ``allow`` should be tried again."""
        with self._lock:
            if self.open_until is not None and now < self.open_until:
                return self.open_until
            return now + self.policy.first_open

    def success(self) -> bool:
        """A send went through; returns True if that closed an open circuit."""
        with self._lock:
            was_open = self.open_until is not None
            self.open_until, self.probing_since, self.wait = None, None, None
            self._reset_runs()
            return was_open

    def failure(self, error: ChannelError, recipient: str, now: datetime) -> Judged:
        """A send failed: is the provider at fault? Returns the error to record and whether
        this failure opened the circuit, or (a probe's answer that is no fault: a refusal of
        that one message, a rate limit) closed it."""
        with self._lock:
            judged = self._judge(error, recipient, now)
            if self.probing_since is not None and judged.opened_until is None:
                # The provider answered about the message itself, so it is up. Left open, the
                # probe would count as out for ``longest_open`` and hold the channel that long;
                # the refusal run is kept, so a relay still refusing everyone reopens it.
                self.open_until, self.probing_since, self.wait = None, None, None
                return replace(judged, closed=True)
            return judged

    def _judge(self, error: ChannelError, recipient: str, now: datetime) -> Judged:
        stale = self.run_started is not None and now - self.run_started > self.policy.window
        if stale and self.open_until is None:  # an open circuit's run lasts until a success
            self._reset_runs()
        if not error.permanent:
            if error.refusal is Refusal.RATE_LIMITED:
                return Judged(error)  # the sender hold deals with it; the provider answers
            self.faults += 1
            return self._after_fault(error, self.faults >= self.policy.faults, now)
        self.faults = 0  # the provider answered about this message
        if error.refusal not in BURSTABLE:
            return Judged(error)
        if error.code != self.refusal_code:
            self.refusal_code, self.refused, self.run_started = error.code, {recipient}, now
            return Judged(error)  # one refusal says nothing about the relay yet
        self.refused.add(recipient)
        if len(self.refused) < 2:
            return Judged(error)
        suspect = ChannelError(
            f"{error.reason} (the same refusal for {len(self.refused)} recipients in a row: "
            "treated as a relay or account problem)",
            permanent=False,
            code=error.code,
            refusal=Refusal.TRANSIENT,
        )
        return self._after_fault(suspect, len(self.refused) >= self.policy.burst, now)

    def _after_fault(self, error: ChannelError, tripped: bool, now: datetime) -> Judged:
        if self.run_started is None:
            self.run_started = now
        failed_probe = self.probing_since is not None
        if failed_probe or (self.open_until is None and tripped):
            wait = (
                self.policy.first_open if self.wait is None else min(self.wait * 2, self.policy.longest_open)
            )
            self.wait, self.probing_since = wait, None
            self.open_until = now + wait
            return Judged(error, opened_until=self.open_until, reopened=failed_probe)
        return Judged(error)

    def _probe_out(self, now: datetime) -> bool:
        # A probe whose answer never came (its row was moved before sending) stops counting.
        since = self.probing_since
        return since is not None and now - since < self.policy.longest_open

    def _reset_runs(self) -> None:
        self.faults, self.run_started = 0, None
        self.refusal_code, self.refused = None, set()


class Breakers:
    """One ``Breaker`` per channel for one worker, and the shared ``circuit:<channel>`` rows."""

    def __init__(self, policy: BreakerPolicy | None = None) -> None:
        self.policy = policy or BreakerPolicy()
        self._by_channel: dict[str, Breaker] = {}
        self._lock = threading.Lock()

    def __getitem__(self, channel: str) -> Breaker:
        with self._lock:
            breaker = self._by_channel.get(channel)
            if breaker is None:
                breaker = self._by_channel[channel] = Breaker(channel, self.policy)
            return breaker

    def blocked(self, session: Session, now: datetime) -> set[str]:
        """Channels no row should be claimed for now: open here, or opened by another worker
        (whose opening this worker adopts, so that it too probes with one send, not a batch)."""
        opened = open_circuits(session, now)
        for channel, until in opened.items():
            self[channel].adopt(until)
        if opened:  # no query at all while every circuit is closed
            for channel, since in still_open(session, now, self.policy.still_open):
                tell_still_open(channel, since, now)
        with self._lock:
            return {c for c, b in self._by_channel.items() if b.is_open(now)}


def tell_opened(channel: str, judged: Judged) -> None:
    ops.error(
        "channel circuit open: the provider is failing; holding its messages",
        extra={
            "event": "channel.circuit_open",
            "channel": channel,
            "code": judged.error.code,
            "reason": judged.error.reason,
            "probe_at": judged.opened_until.isoformat() if judged.opened_until else None,
        },
    )


def tell_still_open(channel: str, since: datetime, now: datetime) -> None:
    # Logged inside the caller's transaction: if it rolls back, a later step tells again
    # (twice rather than never).
    ops.error(
        "channel circuit still open: the provider has been failing for minutes",
        extra={
            "event": "channel.circuit_still_open",
            "channel": channel,
            "open_since": since.isoformat(),
            "open_s": round((now - since).total_seconds()),
        },
    )


def tell_closed(channel: str) -> None:
    ops.warning(
        "channel circuit closed: a probe went through; sending again",
        extra={"event": "channel.circuit_closed", "channel": channel},
    )


def open_circuits(session: Session, now: datetime) -> dict[str, datetime]:
    """Channels whose circuit some worker opened, with when it may next be probed."""
    rows = session.execute(
        select(RateLimit.key, RateLimit.next_free_at).where(
            RateLimit.key.startswith(PREFIX), RateLimit.next_free_at > now
        )
    ).all()
    return {key.removeprefix(PREFIX): until for key, until in rows}


def open_circuit(session: Session, channel: str, until: datetime, now: datetime) -> bool:
    """Mark ``channel``'s circuit open until ``until`` for every worker; True if it was closed
    (this worker is the one to tell operations). A circuit no probe closed within ``STALE``
    (its workers went away) counts as closed."""
    key = PREFIX + channel
    if insert_ignore(session, RateLimit, {"key": key, "next_free_at": until}, ["key"]):
        _opened(session, channel, now)
        return True
    was_closed = rowcount(
        session.execute(
            update(RateLimit)
            .where(RateLimit.key == key, RateLimit.next_free_at <= now - STALE)
            .values(next_free_at=until)
        )
    )
    if not was_closed:
        session.execute(
            update(RateLimit)
            .where(RateLimit.key == key, RateLimit.next_free_at < until)
            .values(next_free_at=until)
        )
    else:
        _opened(session, channel, now)
    return bool(was_closed)


def _opened(session: Session, channel: str, now: datetime) -> None:
    """The circuit was closed and this worker opened it: it is open since ``now``."""
    key = CIRCUIT_SINCE_PREFIX + channel
    if not insert_ignore(session, RateLimit, {"key": key, "next_free_at": now}, ["key"]):
        session.execute(update(RateLimit).where(RateLimit.key == key).values(next_free_at=now))
    audit.record(
        session, at=now, actor="system", action=CIRCUIT_OPENED, subject=PREFIX + channel, channel=channel
    )


def still_open(session: Session, now: datetime, after: timedelta = STILL_OPEN) -> list[tuple[str, datetime]]:
    """Circuits open for ``after`` or more that no worker has told operations about yet, each
    with when it opened; this worker now has (a compare-and-set on ``circuit-since:``, audited
    ``channel.circuit_still_open``), and the caller tells."""
    due = session.execute(
        select(RateLimit.key, RateLimit.next_free_at).where(
            RateLimit.key.startswith(CIRCUIT_SINCE_PREFIX),
            RateLimit.next_free_at > CLOSED,
            RateLimit.next_free_at <= now - after,
        )
    ).all()
    told = []
    for key, since in due:
        taken = update(RateLimit).where(RateLimit.key == key, RateLimit.next_free_at == since)
        if not rowcount(session.execute(taken.values(next_free_at=CLOSED))):
            continue  # another worker told
        channel = key.removeprefix(CIRCUIT_SINCE_PREFIX)
        audit.record(
            session,
            at=now,
            actor="system",
            action=CIRCUIT_STILL_OPEN,
            subject=PREFIX + channel,
            channel=channel,
            open_since=since.isoformat(),
        )
        told.append((channel, since))
    return told


def close_circuit(session: Session, channel: str, now: datetime) -> bool:
    """Mark ``channel``'s circuit closed for every worker; True if it was open (this worker
    is the one to tell operations). The closing is audited at ``now``, as the opening is, so
    the audit log holds each outage's start and end."""
    closing = update(RateLimit).where(RateLimit.key == PREFIX + channel, RateLimit.next_free_at > CLOSED)
    was_open = bool(rowcount(session.execute(closing.values(next_free_at=CLOSED))))
    if was_open:  # closed within STILL_OPEN: no "still open" alert for this opening
        since = update(RateLimit).where(RateLimit.key == CIRCUIT_SINCE_PREFIX + channel)
        session.execute(since.values(next_free_at=CLOSED))
        audit.record(
            session, at=now, actor="system", action=CIRCUIT_CLOSED, subject=PREFIX + channel, channel=channel
        )
    return was_open


__all__ = [
    "BURSTABLE",
    "STILL_OPEN",
    "Breaker",
    "BreakerPolicy",
    "Breakers",
    "Judged",
    "close_circuit",
    "open_circuit",
    "open_circuits",
    "still_open",
    "tell_closed",
    "tell_opened",
    "tell_still_open",
]
