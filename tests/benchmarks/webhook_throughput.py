"""Webhook throughput: how many signed Twilio SMS webhooks/s real ``checkin web`` processes accept.

    python -m tests.benchmarks.webhook_throughput [--workers 1 2] [--concurrency 32]
        [--seconds 10] [--patients 500] [--backend postgres]

Closed loop, unlike ``webhook_latency`` (open loop at a set rate): ``--concurrency`` client
tasks each send their next request as soon as the last is answered, so the figure is what the
server carries flat out. For each ``--workers`` value a throwaway database (PostgreSQL unless
told otherwise) is seeded with ``--patients`` enrolled patients, each with an open check-in
question; ``checkin web --workers N`` (the real command, in its own process) serves it; the
requests are pre-signed with twilio's RequestValidator and carry the same mix as
``webhook_latency`` (calm answers, red flags, emergencies, HELP, unknown senders).

One JSON line per run: accepted/s (HTTP 200), errors (anything else), latency p50/p99 in ms,
server CPU per request in ms (the parent and every web process, from /proc, warm-up
included), and the machine's load average before and after. The client shares the machine:
on two cores it takes a good part of one, so the figures are a floor, not the server's limit.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import time
from datetime import UTC, datetime
from typing import Any

from tests.benchmarks.support import database
from tests.benchmarks.webhook_latency import (
    PATH,
    cpu_seconds,
    percentile,
    requests_for,
    seed,
    web_processes,
)

WARMUP = 100


def load(base: str, concurrency: int, seconds: float, patients: int) -> dict[str, Any]:
    import httpx2

    work = requests_for(max(2000, int(seconds * 800)), patients)
    warmup = requests_for(WARMUP, patients)

    async def run() -> tuple[list[tuple[float, int]], float]:
        limits = httpx2.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
        async with httpx2.AsyncClient(base_url=base, timeout=10, limits=limits) as client:

            async def one(item: tuple[dict[str, str], dict[str, str]]) -> tuple[float, int]:
                started = time.perf_counter()
                try:
                    status = (await client.post(PATH, data=item[0], headers=item[1])).status_code
                except Exception:
                    status = 0
                return time.perf_counter() - started, status

            await asyncio.gather(*(one(item) for item in warmup))
            results: list[tuple[float, int]] = []
            queue = iter(work)
            deadline = time.perf_counter() + seconds

            async def client_task() -> None:
                for item in queue:
                    if time.perf_counter() >= deadline:
                        return
                    results.append(await one(item))

            start = time.perf_counter()
            await asyncio.gather(*(client_task() for _ in range(concurrency)))
            return results, time.perf_counter() - start

    results, elapsed = asyncio.run(run())
    latencies = [r[0] * 1000 for r in results]
    accepted = sum(1 for r in results if r[1] == 200)
    return {
        "requests": len(results),
        "accepted": accepted,
        "errors": len(results) - accepted,
        "accepted_per_s": round(accepted / elapsed, 1),
        "p50_ms": round(percentile(latencies, 50), 2),
        "p99_ms": round(percentile(latencies, 99), 2),
        "max_ms": round(max(latencies), 2),
    }


def run_once(backend: str, workers: int, concurrency: int, seconds: float, patients: int) -> dict[str, Any]:
    before = os.getloadavg()
    with database(backend, migrate=False) as url:
        seed(url, datetime.now(UTC), patients)
        with web_processes(url, workers) as (base, pids):
            cpu_before = cpu_seconds(pids)
            result = load(base, concurrency, seconds, patients)
            cpu = cpu_seconds(pids) - cpu_before
            result["server_cpu_ms_per_request"] = round(cpu * 1000 / (result["requests"] + WARMUP), 2)
            result["web_processes"] = max(1, len(pids) - 1)
    return {
        "bench": "webhook_throughput",
        "backend": backend,
        "workers": workers,
        "concurrency": concurrency,
        "seconds": seconds,
        "patients": patients,
        **result,
        "loadavg_before": [round(x, 2) for x in before],
        "loadavg_after": [round(x, 2) for x in os.getloadavg()],
        "cpus": os.cpu_count(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--patients", type=int, default=500)
    parser.add_argument("--backend", default="postgres", choices=["sqlite", "postgres"])
    args = parser.parse_args()
    for workers in args.workers:
        result = run_once(args.backend, workers, args.concurrency, args.seconds, args.patients)
        print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
