"""Dispatch throughput against a provider that takes real time to answer.

    python -m tests.benchmarks.dispatch_latency [--messages 3000] [--workers 1 2]
        [--latency 0.150] [--rate 1000] [--backend postgres]

Real worker processes (``python -m tests.outbound.run_worker``: ``worker.run`` with the real
Twilio adapter) send ``--messages`` due SMS through the recording Twilio fake on loopback
(keeping connections open, as Twilio does), which waits ``--latency`` seconds before
answering each create. The send pool is sized by the worker itself (``dispatch.InFlight``:
rate x observed latency, at most ``inflight.pool_room``: 32 threads with the default
connection pool), and each dispatch step claims the next batch while it sends (ADR 0021), so
one worker tops out near 32 / latency. One JSON line per worker
count: messages, seconds from the first provider request to the last ``sent`` row,
messages_per_s, and the speedup over one worker. ``--rate`` is ``CHECKIN_SMS_RATE`` (shared
by all workers through the rate-limit table), so the figure is capped by it.

On a shared machine the rate says more about the neighbours than about the code, so each line
also gives the CPU the workers spent per message (``worker_cpu_ms_per_msg``, from
``/proc/<pid>/stat``; ``worker_send_cpu_ms_per_msg`` leaves out what they spent starting up,
before the first provider request) and what this process spent serving the fake
(``fake_cpu_ms_per_msg``): ``1000 / worker_send_cpu_ms_per_msg`` is about what one worker could
send on a core of its own.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import time
from pathlib import Path
from tempfile import TemporaryDirectory

from tests.benchmarks.support import database


def run(backend: str, workers: int, messages: int, latency: float, rate: float) -> dict[str, float]:
    from sqlalchemy import func, select

    from checkin.store.models import OutboxMessage
    from tests.outbound.support import (
        FAST_TUNING,
        HoldingTwilio,
        add_due_now,
        make_services,
        settings_env,
        start_worker,
        twilio_env,
    )

    tuning = {**FAST_TUNING, "batch": 100, "policy": {**FAST_TUNING["policy"], "lease": 60.0}}  # type: ignore[dict-item]
    tuning.pop("concurrency")  # sized by the worker from the rate and the latency
    with database(backend) as url, HoldingTwilio(keep_alive=True) as fake, TemporaryDirectory() as tmp:
        fake.latency = (latency, latency)
        local = make_services(url)
        add_due_now(local, messages)
        env = {**settings_env(url, CHECKIN_SMS_RATE=str(rate)), **twilio_env(fake.url, 10.0)}
        procs = [
            start_worker(env, Path(tmp) / f"w{n}.log", tuning=tuning, worker_id=f"bench{n}")
            for n in range(workers)
        ]
        try:
            own_cpu = time.process_time()
            while not fake.creates():
                time.sleep(0.01)
            start = time.monotonic()
            started_cpu = sum(cpu_seconds(w.proc.pid) for w in procs)
            while True:
                with local.sessions() as s:
                    sent = s.scalar(
                        select(func.count()).select_from(OutboxMessage).where(OutboxMessage.status == "sent")
                    )
                if sent == messages:
                    break
                time.sleep(0.05)
            seconds = time.monotonic() - start
            worker_cpu = sum(cpu_seconds(w.proc.pid) for w in procs)
            fake_cpu = time.process_time() - own_cpu
        finally:
            for w in procs:
                w.proc.send_signal(signal.SIGTERM)
            for w in procs:
                w.proc.wait(30)
        local.engine.dispose()
    return {
        "messages": messages,
        "seconds": round(seconds, 2),
        "messages_per_s": round(messages / seconds, 1),
        "worker_cpu_ms_per_msg": round(1000 * worker_cpu / messages, 2),
        "worker_send_cpu_ms_per_msg": round(1000 * (worker_cpu - started_cpu) / messages, 2),
        "fake_cpu_ms_per_msg": round(1000 * fake_cpu / messages, 2),
    }


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a live process (Linux), from its start."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=3000)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--latency", type=float, default=0.150)
    parser.add_argument("--rate", type=float, default=1000.0)
    parser.add_argument("--backend", default="postgres", choices=["postgres", "sqlite"])
    args = parser.parse_args()
    single: float | None = None
    for workers in args.workers:
        result = run(args.backend, workers, args.messages, args.latency, args.rate)
        if workers == 1:
            single = result["messages_per_s"]
        speedup = round(result["messages_per_s"] / single, 2) if single else None
        line = {"backend": args.backend, "workers": workers, "latency_s": args.latency, "rate": args.rate}
        print(json.dumps({**line, **result, "speedup": speedup}), flush=True)


if __name__ == "__main__":
    main()
