"""Timings of claiming, retrying and reconciling, and the retry backoff."""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import timedelta


@dataclass(frozen=True)
class Policy:
    """Timings of claiming, retrying and reconciling. Tests shorten them; production keeps
    the defaults."""

    lease: timedelta = timedelta(seconds=60)  # a claimed row is ours this long, renewed per send
    max_attempts: int = 8  # provider calls per row before it is dead-lettered
    backoff_base: timedelta = timedelta(seconds=30)
    backoff_cap: timedelta = timedelta(hours=1)
    # A first permanent refusal that a relay refusing everyone would also give is asked again
    # this long after (about the circuit breaker's window, docs/adr/0016): by then a relay-wide
    # refusal has refused other rows and opened the channel's circuit, or it is over.
    confirm_refusal: timedelta = timedelta(seconds=60)
    # A worker whose heartbeat is older than this is presumed dead (procrastinate uses 30 s).
    stale_after: timedelta = timedelta(seconds=30)
    # A lease this far past its end is taken back even from a worker that still beats: its
    # dispatch thread is stuck. (Its own later writes then fail their compare-and-set.)
    orphan_after: timedelta = timedelta(minutes=10)
    # Twilio lists a message only once it has a DateSent; until this long after the attempt,
    # "not in the list" does not yet mean "not sent".
    settle: timedelta = timedelta(seconds=60)
    lookback: timedelta = timedelta(minutes=2)  # list the provider from last attempt minus this
    give_up: timedelta = timedelta(hours=24)  # unresolved in_doubt this long after the attempt: dead


DEFAULT_POLICY = Policy()


def backoff(attempts: int, policy: Policy, rng: random.Random, retry_after: float | None = None) -> timedelta:
    """Delay before the next attempt after ``attempts`` failed ones.

    Exponential with jitter from the first retry: uniform between ``backoff_base`` and
    ``base * 2**attempts`` (capped at ``backoff_cap``), and never less than the provider's
    ``retry_after``. The jitter spreads a 9:00 wave that failed together (a provider outage)
    so it does not retry together (the first retry used to be exactly ``base`` for every
    row); the floor at ``base`` keeps a burst of failures from retrying within seconds.
    """
    base = policy.backoff_base.total_seconds()
    floor = base
    ceiling = min(policy.backoff_cap.total_seconds(), base * 2 ** max(attempts, 1))
    delay = rng.uniform(floor, max(floor, ceiling))
    return timedelta(seconds=max(delay, retry_after or 0.0))


__all__ = ["DEFAULT_POLICY", "Policy", "backoff"]
