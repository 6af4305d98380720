"""Dispatch throughput: claim + re-check + render + in-memory channel + commit, per worker.

    python -m tests.benchmarks.dispatch_throughput [--messages 5000] [--backend sqlite postgres]
        [--workers 1 2 4] [--idle-patients 0 100000] [--steady-seconds 10]

For each backend, worker count and number of idle enrolled patients (patients whose messages
are not due, so they only make the tables bigger), a fresh database gets ``--messages`` due SMS
rows (one per patient, rendered from the real templates); that many worker processes then run
``dispatch.run_once`` in a loop with the rate limit off until nothing is claimable. One JSON
line per run: messages, seconds from the common start to the last commit, messages_per_s,
speedup over one worker on that backend, and the largest worker peak RSS.

A second kind of run ("steady") measures lateness: rows fall due at a steady pace over
``--steady-seconds`` while one worker ticks every 2 s like ``checkin worker``; it prints p50
and p99 of ``sent_at - due_at``.

SQLite with more than one worker is measured for comparison only: ``checkin worker`` refuses
a second worker on one SQLite file.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from tests.benchmarks.support import database
from tests.support import zone_in_window

ROOT = Path(__file__).resolve().parents[2]


def services_for(url: str) -> object:
    from checkin.channels.memory import MemoryChannel
    from checkin.clock import SystemClock
    from tests.outbound.support import make_services

    clock = SystemClock()
    return make_services(
        url,
        clock=clock,
        sms=MemoryChannel(clock),  # type: ignore[arg-type]
        email=MemoryChannel(clock),
    )


def plant(url: str, messages: int, idle: int, due: Callable[[int], datetime]) -> None:
    from tests.outbound.support import add_many

    services = services_for(url)
    now = datetime.now(UTC)
    zone = zone_in_window()
    for start in range(0, idle, 20_000):  # idle patients: due in a week
        add_many(
            services,
            min(20_000, idle - start),  # type: ignore[arg-type]
            due=lambda i: now + timedelta(days=7),
            now=now,
            timezone=zone,
        )
    for start in range(0, messages, 20_000):
        add_many(
            services,
            min(20_000, messages - start),  # type: ignore[arg-type]
            due=lambda i, s=start: due(s + i),
            expires=lambda i: now + timedelta(hours=6),
            now=now,
            timezone=zone,
        )
    services.engine.dispose()  # type: ignore[attr-defined]


def child(url: str, worker_id: str, start_at: float, tick: float | None, until: float) -> None:
    """One worker process: wait for the common start, then dispatch until nothing is left
    (or, with ``tick``, keep ticking like ``checkin worker`` until ``until``)."""
    from checkin.outbound.dispatch import run_once
    from checkin.outbound.ratelimit import Pacer

    services = services_for(url)
    unlimited = Pacer.unlimited()
    time.sleep(max(0.0, start_at - time.time()))
    handled = 0
    while True:
        n = run_once(
            services,
            services.clock.now(),
            worker_id=worker_id,  # type: ignore[attr-defined]
            limit=100,
            pacer=unlimited,
        )
        handled += n
        if n:
            continue
        if tick is None or time.time() >= until:
            break
        time.sleep(tick)
    print(json.dumps({"handled": handled, "finished": time.time(), "peak_rss_mb": peak_rss_mb()}))


def peak_rss_mb() -> float:
    """This process's peak RSS. ``ru_maxrss`` would include the parent's peak (it survives
    fork and exec), and the parent grew while planting 100,000 patients; ``VmHWM`` belongs
    to the memory map exec created."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        pass
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def run_workers(
    url: str, workers: int, *, tick: float | None = None, until: float = 0.0
) -> tuple[float, list[dict[str, float]]]:
    start_at = time.time() + 3.0  # every child has imported and connected by then
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tests.benchmarks.dispatch_throughput",
                "--child",
                url,
                f"bench-{n}",
                str(start_at),
                str(tick or 0),
                str(until),
            ],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            text=True,
        )
        for n in range(workers)
    ]
    results = []
    for p in procs:
        out, _ = p.communicate(timeout=900)
        if p.returncode != 0:
            raise SystemExit(f"worker failed with {p.returncode}")
        results.append(json.loads(out.strip().splitlines()[-1]))
    return start_at, results


def throughput(backend: str, workers: int, messages: int, idle: int) -> dict[str, object]:
    from sqlalchemy import func, select

    from checkin.store.models import OutboxMessage

    with database(backend) as url:
        plant(url, messages, idle, due=lambda i: datetime.now(UTC) - timedelta(minutes=1))
        start_at, results = run_workers(url, workers)
        services = services_for(url)
        with services.sessions() as s:  # type: ignore[attr-defined]
            sent = s.scalar(select(func.count()).where(OutboxMessage.status == "sent"))
        services.engine.dispose()  # type: ignore[attr-defined]
    seconds = max(r["finished"] for r in results) - start_at
    return {
        "bench": "dispatch",
        "backend": backend,
        "workers": workers,
        "messages": messages,
        "idle_patients": idle,
        "sent": sent,
        "seconds": round(seconds, 3),
        "messages_per_s": round(messages / seconds),
        "per_worker": [int(r["handled"]) for r in results],
        "peak_rss_mb": max(r["peak_rss_mb"] for r in results),
    }


def steady(backend: str, seconds: float, per_s: int) -> dict[str, object]:
    from sqlalchemy import select

    from checkin.store.models import OutboxMessage

    with database(backend) as url:
        first_due = datetime.now(UTC) + timedelta(seconds=5)
        total = int(seconds * per_s)
        plant(url, total, 0, due=lambda i: first_due + timedelta(seconds=i / per_s))
        until = first_due.timestamp() + seconds + 3
        run_workers(url, 1, tick=2.0, until=until)
        services = services_for(url)
        with services.sessions() as s:  # type: ignore[attr-defined]
            late = [
                (sent - due).total_seconds()
                for sent, due in s.execute(
                    select(OutboxMessage.sent_at, OutboxMessage.due_at).where(OutboxMessage.status == "sent")
                )
            ]
        services.engine.dispose()  # type: ignore[attr-defined]
    late.sort()
    q = statistics.quantiles(late, n=100)
    return {
        "bench": "lateness",
        "backend": backend,
        "workers": 1,
        "tick_s": 2.0,
        "messages": total,
        "sent": len(late),
        "due_per_s": per_s,
        "lateness_p50_s": round(q[49], 3),
        "lateness_p99_s": round(q[98], 3),
    }


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        _, _, url, worker_id, start_at, tick, until = sys.argv
        child(url, worker_id, float(start_at), float(tick) or None, float(until))
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--messages", type=int, default=5000)
    parser.add_argument("--backend", nargs="+", default=["sqlite", "postgres"])
    parser.add_argument("--workers", nargs="+", type=int, default=[1, 2, 4])
    parser.add_argument("--idle-patients", nargs="+", type=int, default=[0, 100_000])
    parser.add_argument("--steady-seconds", type=float, default=10.0)
    args = parser.parse_args()
    for backend in args.backend:
        base: float | None = None
        for workers in args.workers:
            if backend == "sqlite" and workers > 2:
                continue  # one file, one writer at a time: more processes only queue
            line = throughput(backend, workers, args.messages, 0)
            base = base or float(line["messages_per_s"])  # type: ignore[arg-type]
            line["speedup"] = round(float(line["messages_per_s"]) / base, 2)  # type: ignore[arg-type]
            print(json.dumps(line), flush=True)
        for idle in args.idle_patients:
            if idle:
                print(json.dumps(throughput(backend, 1, args.messages, idle)), flush=True)
        if args.steady_seconds:
            print(json.dumps(steady(backend, args.steady_seconds, 100)), flush=True)


if __name__ == "__main__":
    main()
