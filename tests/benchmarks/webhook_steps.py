"""Where a webhook's CPU goes: the steps of processing one reply, timed in-process.

    python -m tests.benchmarks.webhook_steps [--replies 2000] [--backend postgres]

``webhook_latency`` measures the whole request as Twilio sees it; this one calls
``checkin.inbound.process.handle_sms`` directly (no HTTP, no thread hand-off) on the same
database, seed and message mix, with the web processes' engine settings (no pre-ping), and
times the steps with the thread's CPU clock and the wall clock: store and find the sender,
triage, render the reply, save the outcome, find the patient's unresolved alert, the whole
``process`` (inside the transaction) and ``handle_sms`` (with BEGIN, COMMIT and the session).
The steps are wrapped in place (module attributes), so the code measured is the product's.

One JSON line: per step, calls per reply and microseconds of CPU and wall time per reply
(averaged over every reply, so a step that runs for a third of them counts a third), and the
statements per reply the engine executed (BEGIN and COMMIT aside). 300 replies warm up first.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from tests.benchmarks.support import database
from tests.benchmarks.webhook_latency import env_for, requests_for, seed

WARM_UP = 300


class Steps:
    """Accumulated thread CPU and wall seconds, and calls, per step name."""

    def __init__(self) -> None:
        self.totals: dict[str, list[float]] = {}

    def timed(self, name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        def step(*args: Any, **kwargs: Any) -> Any:
            cpu, wall = time.thread_time(), time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                total = self.totals.setdefault(name, [0.0, 0.0, 0.0])
                total[0] += time.thread_time() - cpu
                total[1] += time.perf_counter() - wall
                total[2] += 1

        return step

    def per_reply(self, replies: int) -> dict[str, dict[str, float]]:
        return {
            name: {
                "calls": round(calls / replies, 2),
                "cpu_us": round(cpu * 1e6 / replies),
                "wall_us": round(wall * 1e6 / replies),
            }
            for name, (cpu, wall, calls) in self.totals.items()
        }


@contextmanager
def wrapped(steps: Steps) -> Iterator[None]:
    """The product's steps replaced by timed wrappers while the block runs."""
    import checkin.core.triage as triage
    from checkin.alerts.lifecycle import raising
    from checkin.inbound import handling, lookup
    from checkin.inbound import process as inbound

    targets: list[tuple[Any, str, str]] = [
        (lookup, "receive", "store and find the sender"),
        (triage, "assess", "triage"),
        (handling.Handling, "_render", "render the reply"),
        (handling, "save_outcome", "save the outcome"),
        (raising, "unresolved", "find the unresolved alert"),
        (inbound, "process", "process (in the transaction)"),
    ]
    saved = [(owner, attr, getattr(owner, attr)) for owner, attr, _ in targets]
    try:
        for owner, attr, name in targets:
            setattr(owner, attr, steps.timed(name, getattr(owner, attr)))
        yield
    finally:
        for owner, attr, original in saved:
            setattr(owner, attr, original)


def run(backend: str, replies: int) -> dict[str, Any]:
    from sqlalchemy import event

    from checkin.app.bootstrap import build_services
    from checkin.config import Settings
    from checkin.inbound.process import InboundSms, handle_sms

    now = datetime.now(UTC)
    with database(backend, migrate=False) as url:
        seed(url, now)
        settings = Settings.from_env({**os.environ, **env_for(url), "CHECKIN_ENV": "development"})
        services = build_services(settings, pool_pre_ping=False)  # as ``checkin web`` builds them
        messages = [
            InboundSms(message_sid=p["MessageSid"], from_phone=p["From"], to_phone=p["To"], body=p["Body"])
            for p, _ in requests_for(replies + WARM_UP)
        ]
        for msg in messages[:WARM_UP]:
            handle_sms(services, msg, services.clock.now())
        statements = [0]

        def count(*_: Any) -> None:
            statements[0] += 1

        event.listen(services.engine, "before_cursor_execute", count)
        steps = Steps()
        whole = steps.timed("handle_sms (with BEGIN, COMMIT)", handle_sms)
        with wrapped(steps):
            for msg in messages[WARM_UP:]:
                whole(services, msg, services.clock.now())
        services.engine.dispose()
    return {
        "bench": "webhook_steps",
        "backend": backend,
        "replies": replies,
        "statements_per_reply": round(statements[0] / replies, 2),
        "steps": steps.per_reply(replies),
        "loadavg": [round(x, 2) for x in os.getloadavg()],
        "cpus": os.cpu_count(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--replies", type=int, default=2000)
    parser.add_argument("--backend", choices=("sqlite", "postgres"), default="postgres")
    args = parser.parse_args()
    print(json.dumps(run(args.backend, args.replies)))


if __name__ == "__main__":
    main()
