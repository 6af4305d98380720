"""Webhook latency at a steady request rate: signature check + triage + commit, as Twilio sees it.

    python -m tests.benchmarks.webhook_latency [--rate 200] [--seconds 10] [--backend sqlite postgres]
        [--workers 2]

For each backend the real ``checkin web --workers N`` (default 1; above 1 PostgreSQL only)
serves 127.0.0.1 in its own process, so the load generator does not share its interpreter. The
database (a SQLite file, or a throwaway PostgreSQL database) holds 500 enrolled patients, each
with an open check-in question. The generator pre-signs every request with twilio's
RequestValidator and encodes them to HTTP/1.1 bytes, then sends them open-loop at ``--rate``
requests/s from plain asyncio streams over a bounded number of keep-alive connections (the
client shares the cores with the server, so it does as little as it can). The mix: 60 % calm
answers, 25 % urgent (an alert opens or joins), 5 % emergencies, 5 % HELP, 5 % unknown senders.

One JSON line per backend: requests, errors, achieved rate, latency p50/p90/p99/max in ms
(request sent → response read), and p99 measured from each request's *scheduled* send time
(which also counts any time a request waited for a free connection), server CPU per request
(parent and web processes), the client's own CPU per request, and the load average before and
after (the machine may be shared).
Goal (issue 15): p99 < 50 ms at 400 requests/s with 2 processes on two cores.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from tests.benchmarks.support import database
from tests.support import ACCOUNT_SID, AUTH_TOKEN, PUBLIC_URL

ROOT = Path(__file__).resolve().parents[2]

PATH = "/webhooks/twilio/sms"
PATIENTS = 500
CALM = [
    "98.6",
    "4",
    "doing fine today, walking more",
    "no fever no drainage",
    "3 out of 10",
    "mejor hoy, gracias",
]
URGENT = [
    "my incision is leaking yellow stuff",
    "101.9",
    "9",
    "I fell in the shower",
    "new numbness in my left foot",
]
EMERGENCY = ["I can't breathe and my chest hurts", "I can't pee since this morning"]


def env_for(url: str) -> dict[str, str]:
    return {
        "CHECKIN_DATABASE_URL": url,
        "CHECKIN_SCHEDULES_DIR": str(ROOT / "schedules"),
        "CHECKIN_TEMPLATES_DIR": str(ROOT / "templates"),
        "TWILIO_ACCOUNT_SID": ACCOUNT_SID,
        "TWILIO_AUTH_TOKEN": AUTH_TOKEN,
        "TWILIO_FROM_NUMBER": "+15005550006",
        "CHECKIN_PUBLIC_URL": PUBLIC_URL,
        "CHECKIN_SECRET_KEY": "bench-secret-key-0123456789",
        "CHECKIN_LOG_LEVEL": "WARNING",
    }


def phone(i: int) -> str:
    return f"+1617555{i:04d}"


def seed(url: str, now: datetime, patients: int = PATIENTS) -> None:
    from checkin.store.db import make_engine, session_factory, upgrade
    from checkin.store.models import Enrollment, OutboxMessage, Patient

    upgrade(url)
    engine = make_engine(url)
    with session_factory(engine).begin() as s:
        for i in range(patients):
            p = Patient(
                reference=f"P-B{i:06d}",
                mrn=f"BENCH{i}",
                first_name="Pat",
                phone=phone(i),
                language="es" if i % 5 == 0 else "en",
                timezone="America/New_York",
                sms_opted_out=False,
                phone_status="ok",
                email_consent=False,
                created_at=now,
            )
            s.add(p)
            s.flush()
            e = Enrollment(
                patient_id=p.id,
                procedure="lumbar-fusion",
                schedule_version="1",
                surgery_date=date(2026, 1, 5),
                attributes=[],
                channel="sms",
                status="active",
                created_at=now,
            )
            s.add(e)
            s.flush()
            ask = ("fever_check", "pain_scale", "wound_check", "numbness_check")[i % 4]
            s.add(
                OutboxMessage(
                    key=f"bench:{i}",
                    enrollment_id=e.id,
                    patient_id=p.id,
                    step_id="check",
                    occurrence=0,
                    channel="sms",
                    message=ask.replace("_scale", "_check"),
                    ask=ask,
                    urgent=False,
                    due_at=now,
                    expires_at=now + timedelta(hours=8),
                    status="sent",
                    attempts=1,
                    sent_at=now - timedelta(minutes=30),
                    created_at=now,
                    updated_at=now,
                )
            )
    engine.dispose()


def requests_for(n: int, patients: int = PATIENTS) -> list[tuple[dict[str, str], dict[str, str]]]:
    from twilio.request_validator import RequestValidator

    validator = RequestValidator(AUTH_TOKEN)
    out = []
    for i in range(n):
        r = i % 20
        if r < 12:
            body, sender = CALM[i % len(CALM)], phone(i % patients)
        elif r < 17:
            body, sender = URGENT[i % len(URGENT)], phone(i % patients)
        elif r == 17:
            body, sender = EMERGENCY[i % len(EMERGENCY)], phone(i % patients)
        elif r == 18:
            body, sender = "HELP", phone(i % patients)
        else:
            body, sender = "hello?", f"+1212555{i % 10000:04d}"
        sid = f"SM{uuid.uuid4().hex}"
        params = {
            "MessageSid": sid,
            "SmsSid": sid,
            "AccountSid": ACCOUNT_SID,
            "From": sender,
            "To": "+15005550006",
            "Body": body,
            "NumMedia": "0",
            "NumSegments": "1",
        }
        out.append((params, {"X-Twilio-Signature": validator.compute_signature(PUBLIC_URL + PATH, params)}))
    return out


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered)) - 1))]


def encode(host: str, item: tuple[dict[str, str], dict[str, str]]) -> bytes:
    """One signed webhook as the bytes of an HTTP/1.1 keep-alive request."""
    from urllib.parse import urlencode

    params, headers = item
    body = urlencode(params).encode()
    head = (
        f"POST {PATH} HTTP/1.1\r\nHost: {host}\r\n"
        "Content-Type: application/x-www-form-urlencoded\r\n"
        f"Content-Length: {len(body)}\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers.items()) + "\r\n"
    )
    return head.encode() + body


class Connections:
    """At most ``limit`` keep-alive connections to ``host:port``, opened as needed, reused."""

    def __init__(self, host: str, port: int, limit: int) -> None:
        import asyncio

        self.host, self.port, self.limit, self.opened = host, port, limit, 0
        self.idle: asyncio.Queue[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = asyncio.Queue()

    async def exchange(self, request: bytes) -> int:
        """Send ``request``, read the whole response; its status."""
        import asyncio

        if self.idle.empty() and self.opened < self.limit:
            self.opened += 1
            conn = await asyncio.open_connection(self.host, self.port)
        else:
            conn = await self.idle.get()
        reader, writer = conn
        writer.write(request)
        head = await reader.readuntil(b"\r\n\r\n")
        length, close = 0, False
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.lower() == b"content-length":
                length = int(value)
            elif name.lower() == b"connection" and value.strip().lower() == b"close":
                close = True
        await reader.readexactly(length)
        if close:
            writer.close()
            self.opened -= 1
        else:
            self.idle.put_nowait(conn)
        return int(head.split(b" ", 2)[1])


def load(base: str, rate: float, seconds: float, connections: int) -> dict[str, Any]:
    """Open-loop load from this process (the server is another): one asyncio task per request,
    started on schedule, over at most ``connections`` keep-alive connections. Each request is
    signed and encoded to bytes before the clock starts, and the client writes those bytes and
    reads the response on plain asyncio streams: it shares the two cores with the server, and
    an HTTP client library's own work (about 1.4 ms of CPU per request for httpx) was a third
    of what the server spent. A thread pool of blocking clients was tried first and measured
    its own GIL contention: /healthz alone showed a 30 ms p99 with 32 client threads."""
    import asyncio
    from urllib.parse import urlsplit

    n = int(rate * seconds)
    where = urlsplit(base)
    host, port = where.hostname or "127.0.0.1", where.port or 80
    warmup = [encode(where.netloc, item) for item in requests_for(50)]
    work = [encode(where.netloc, item) for item in requests_for(n)]

    async def run() -> tuple[list[tuple[float, float, int]], float, float]:
        pool = Connections(host, port, connections)

        async def send(request: bytes, scheduled: float) -> tuple[float, float, int]:
            started = time.perf_counter()
            try:
                status = await pool.exchange(request)
            except (OSError, asyncio.IncompleteReadError, ValueError):
                status = 0
            done = time.perf_counter()
            return done - started, done - scheduled, status

        await asyncio.gather(*(send(item, time.perf_counter()) for item in warmup))
        cpu = time.process_time()
        start = time.perf_counter()
        tasks = []
        for i, item in enumerate(work):
            scheduled = start + i / rate
            delay = scheduled - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(send(item, scheduled)))
        results = await asyncio.gather(*tasks)
        return list(results), time.perf_counter() - start, time.process_time() - cpu

    results, elapsed, client_cpu = asyncio.run(run())
    latencies = [r[0] * 1000 for r in results]
    from_schedule = [r[1] * 1000 for r in results]
    errors = sum(1 for r in results if r[2] != 200)
    return {
        "requests": n,
        "errors": errors,
        "achieved_rps": round(n / elapsed, 1),
        "p50_ms": round(percentile(latencies, 50), 2),
        "p90_ms": round(percentile(latencies, 90), 2),
        "p99_ms": round(percentile(latencies, 99), 2),
        "max_ms": round(max(latencies), 2),
        "p99_from_schedule_ms": round(percentile(from_schedule, 99), 2),
        "client_cpu_ms_per_request": round(client_cpu * 1000 / n, 2),
    }


def run_backend(backend: str, rate: float, seconds: float, connections: int, workers: int) -> dict[str, Any]:
    from sqlalchemy import text

    from checkin.store.db import make_engine

    now = datetime.now(UTC)
    before = os.getloadavg()
    with database(backend, migrate=False) as url:
        seed(url, now)
        with web_processes(url, workers) as (base, pids):
            cpu_before = cpu_seconds(pids)
            result = load(base, rate, seconds, connections)
            # Server CPU per request (warm-up included): the headroom the cores have left.
            cpu = cpu_seconds(pids) - cpu_before
            result["server_cpu_ms_per_request"] = round(cpu * 1000 / (result["requests"] + 50), 2)
        engine = make_engine(url)
        with engine.connect() as c:
            stored = c.execute(text("SELECT count(*) FROM inbound_messages")).scalar()
            alerts = c.execute(text("SELECT count(*) FROM alerts")).scalar()
        engine.dispose()
    return {
        "bench": "webhook_latency",
        "backend": backend,
        "workers": workers,
        "rate": rate,
        "seconds": seconds,
        "client_connections": connections,
        **result,
        "rows_stored": stored,
        "alerts": alerts,
        "goal_p99_ms": 50,
        "loadavg_before": [round(x, 2) for x in before],
        "loadavg_after": [round(x, 2) for x in os.getloadavg()],
        "cpus": os.cpu_count(),
    }


@contextmanager
def web_processes(url: str, workers: int) -> Iterator[tuple[str, list[int]]]:
    """``checkin web --workers N`` (the real command, its own process) on ``url``, ready:
    its base URL and the pids of the parent and every web process under it."""
    from tests.support import free_port

    port = free_port()
    env = {**os.environ, **env_for(url), "CHECKIN_ENV": "development"}
    command = [sys.executable, "-m", "checkin", "web", "--port", str(port), "--workers", str(workers)]
    server = subprocess.Popen(command, cwd=ROOT, env=env, stderr=subprocess.DEVNULL)
    try:
        base = f"http://127.0.0.1:{port}"
        _wait_ready(base)
        yield base, [server.pid, *_children(server.pid, workers if workers > 1 else 0)]
    finally:
        server.terminate()
        server.wait(timeout=30)


def cpu_seconds(pids: list[int]) -> float:
    return sum(max(0.0, _cpu_seconds(pid)) for pid in pids)


def _children(pid: int, count: int) -> list[int]:
    """The ``count`` web processes under ``checkin web --workers N`` (Linux /proc)."""
    deadline = time.monotonic() + 30
    found: list[int] = []
    while count and time.monotonic() < deadline:
        try:
            found = [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
        except OSError:
            return []
        if len(found) >= count:
            break
        time.sleep(0.1)
    return found


def _cpu_seconds(pid: int) -> float:
    """User + system CPU of a process (Linux /proc), or -1 where that is not available."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return -1.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _wait_ready(base: str) -> None:
    import httpx2

    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if httpx2.get(base + "/readyz", timeout=1).status_code == 200:
                return
        except httpx2.HTTPError:
            pass
        time.sleep(0.1)
    raise RuntimeError("the server did not become ready")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=200)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--connections", type=int, default=64, help="bound on the client's connections")
    parser.add_argument(
        "--backend", nargs="+", default=["sqlite", "postgres"], choices=["sqlite", "postgres"]
    )
    parser.add_argument("--workers", type=int, default=1, help="checkin web --workers (PostgreSQL above 1)")
    args = parser.parse_args()
    for backend in args.backend:
        result = run_backend(backend, args.rate, args.seconds, args.connections, args.workers)
        print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
