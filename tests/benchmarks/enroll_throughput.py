"""Enroll N patients on the default lumbar schedule and print planned rows/s and peak memory.

    python -m tests.benchmarks.enroll_throughput [--n 10000 100000] [--backend sqlite postgres]

Each (backend, N) runs in its own process so peak RSS belongs to that run alone. One JSON line
per run: backend, patients, rows planned, seconds, rows_per_s, patients_per_s, peak_rss_mb.
Patients get surgery dates spread over 60 days and one of four time zones, so the plan cache
sees what a hospital's import would (many patients per day and zone), not one input repeated.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from tests.benchmarks.support import database

ROOT = Path(__file__).resolve().parents[2]
ZONES = ("America/New_York", "America/Chicago", "America/Denver", "America/Los_Angeles")


def run_one(backend: str, n: int) -> dict[str, object]:
    from checkin.app.bootstrap import build_schedules
    from checkin.config import Settings

    settings = Settings.from_env(
        {"CHECKIN_SCHEDULES_DIR": str(ROOT / "schedules"), "CHECKIN_TEMPLATES_DIR": str(ROOT / "templates")}
    )
    schedules = build_schedules(settings)
    with database(backend) as url:
        return _run(url, backend, n, schedules)


def _run(url: str, backend: str, n: int, schedules: dict) -> dict[str, object]:  # type: ignore[type-arg]
    from checkin.enrollment.enroll import EnrollRequest, enroll_many
    from checkin.store.db import make_engine, session_factory

    engine = make_engine(url)
    now = datetime(2026, 1, 5, 12, tzinfo=UTC)
    first = date(2026, 1, 12)
    reqs = [
        EnrollRequest(
            mrn=f"B{i:07d}",
            first_name="Pat",
            phone=f"+1617555{i % 10000:04d}",
            email=None,
            procedure="lumbar-fusion",
            surgery_date=first + timedelta(days=i % 60),
            timezone=ZONES[i % len(ZONES)],
            language="es" if i % 5 == 0 else "en",
            channel="sms",
            attributes=frozenset({"smoker"} if i % 4 == 0 else ()),
        )
        for i in range(n)
    ]
    start = time.perf_counter()
    planned = 0
    with session_factory(engine)() as session:
        for i in range(0, n, 10_000):  # one transaction per 10k patients, like a large import
            with session.begin():
                planned += enroll_many(session, reqs[i : i + 10_000], schedules=schedules, now=now).planned
    seconds = time.perf_counter() - start
    engine.dispose()
    return {
        "bench": "enroll",
        "backend": backend,
        "patients": n,
        "rows_planned": planned,
        "seconds": round(seconds, 3),
        "rows_per_s": round(planned / seconds),
        "patients_per_s": round(n / seconds),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument(
        "--backend", nargs="+", default=["sqlite", "postgres"], choices=["sqlite", "postgres"]
    )
    parser.add_argument("--one", nargs=2, metavar=("BACKEND", "N"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(run_one(args.one[0], int(args.one[1]))), flush=True)
        return
    for backend in args.backend:
        for n in args.n:
            subprocess.run(
                [sys.executable, "-m", "tests.benchmarks.enroll_throughput", "--one", backend, str(n)],
                check=True,
                cwd=ROOT,
            )


if __name__ == "__main__":
    main()
