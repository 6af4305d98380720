"""Time from a red-flag SMS webhook to the nurse's alert email accepted by the SMTP server.

    python -m tests.benchmarks.alert_latency [--alerts 100] [--rate 2] [--backend sqlite postgres]

Real pieces, real clock, default worker tuning (1 s dispatch tick): the FastAPI app under
uvicorn, `checkin.app.worker.run` in a thread (as `checkin serve` runs it), the SMTP channel to
an aiosmtpd server on loopback. Each of N patients sends one signed emergency reply; the clock
starts when the webhook request is sent and stops when the server accepts the email whose
subject names that patient's reference. Prints one JSON line per backend.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import threading
import time
from datetime import UTC, date, datetime
from pathlib import Path

from checkin.channels.memory import MemoryChannel
from checkin.demo.mailcatcher import MailCatcher, free_port
from checkin.demo.patients import Persona
from checkin.demo.site import WebApp, demo_settings
from tests.benchmarks.support import database


def run(backend: str, n: int, rate: float) -> dict[str, object]:
    from sqlalchemy import select

    from checkin.app.bootstrap import build_services
    from checkin.app.worker import run as run_worker
    from checkin.enrollment.enroll import enroll_many, parse_request
    from checkin.store.models import Patient

    tmp = Path(tempfile.mkdtemp(prefix="checkin-alert-bench-"))
    with MailCatcher() as mail, database(backend) as url:
        port = free_port()
        settings = demo_settings(tmp, mail.port, port, sms_rate=1000).replace(database_url=url)
        # The system clock; on-call SMS land in memory (no Twilio here), the email is the measure.
        services = build_services(settings, sms=MemoryChannel())
        personas = [Persona(f"B{i:05d}", "Pat", f"+1617555{i:04d}", "lumbar-fusion") for i in range(n)]
        reqs = [
            parse_request(
                {
                    "mrn": p.mrn,
                    "first_name": p.first_name,
                    "phone": p.phone,
                    "procedure": p.procedure,
                    "surgery_date": date.today().isoformat(),
                    "timezone": "America/New_York",
                },
                schedules=services.schedules,
                default_region="US",
                default_timezone="America/New_York",
            )
            for p in personas
        ]
        with services.sessions.begin() as s:
            enroll_many(s, reqs, schedules=services.schedules, now=datetime.now(UTC))
        with services.sessions() as s:
            refs = dict(s.execute(select(Patient.phone, Patient.reference)).all())
        stop = threading.Event()
        worker = threading.Thread(
            target=run_worker,
            args=(services,),
            kwargs={"stop": stop, "install_signal_handlers": False},
            daemon=True,
        )
        worker.start()
        sent_at: dict[str, float] = {}
        with WebApp(services, port) as web:
            time.sleep(1.5)  # let the worker register and finish its start-up pass
            for i, p in enumerate(personas):
                sent_at[refs[p.phone]] = time.monotonic()
                status, _ = web.post_sms(settings, p, "chest pain and I can't breathe", f"SM{i:032x}")
                assert status == 200, status
                time.sleep(1.0 / rate)
            deadline = time.monotonic() + 30
            latencies: dict[str, float] = {}
            while time.monotonic() < deadline and len(latencies) < n:
                for m in mail.received:
                    for ref, t0 in sent_at.items():
                        if ref not in latencies and ref in m.subject and not m.subject.startswith("Daily"):
                            latencies[ref] = m.at - t0
                time.sleep(0.05)
        stop.set()
        worker.join(timeout=30)
        services.engine.dispose()
    values = sorted(latencies.values())

    def pct(q: float) -> float:
        return round(values[min(len(values) - 1, int(q * len(values)))], 3)

    return {
        "bench": "alert_latency",
        "backend": backend,
        "alerts": n,
        "received": len(values),
        "rate_per_s": rate,
        "p50_s": pct(0.5),
        "p99_s": pct(0.99),
        "max_s": round(values[-1], 3),
        "mean_s": round(statistics.mean(values), 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--alerts", type=int, default=100)
    parser.add_argument("--rate", type=float, default=2.0, help="red-flag replies per second")
    parser.add_argument(
        "--backend", nargs="+", default=["sqlite", "postgres"], choices=["sqlite", "postgres"]
    )
    args = parser.parse_args()
    for backend in args.backend:
        print(json.dumps(run(backend, args.alerts, args.rate)), flush=True)


if __name__ == "__main__":
    main()
