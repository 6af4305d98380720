"""What a /metrics scrape costs the database, and what the per-interval cache saves.

    python -m tests.benchmarks.metrics_scrape [--rows 200000] [--scrapers 16] [--backend sqlite postgres]

Seeds ``--rows`` outbox rows (80 % sent in the last day, the rest pending), then prints one JSON
line per backend: the time of one figures computation (``checkin.store.status.collect``, p50 of
5), and ``--scrapers`` concurrent scrapes through ``FiguresCache`` (the web app's) with how many
computations they caused and their wall time. Without the cache every scrape computes.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

from sqlalchemy import insert

from tests.benchmarks.support import database


def seed(url: str, rows: int, now: datetime) -> None:
    from checkin.store.db import make_engine
    from checkin.store.models import OutboxMessage

    engine = make_engine(url)
    batch = []
    with engine.begin() as conn:
        for i in range(rows):
            sent = i % 5 != 0
            due = now - timedelta(seconds=i % 86_400)
            batch.append(
                {
                    "key": f"b:{i}",
                    "step_id": "s",
                    "occurrence": i,
                    "channel": "sms",
                    "message": "fever_check",
                    "urgent": False,
                    "due_at": due,
                    "expires_at": due + timedelta(hours=8),
                    "status": "sent" if sent else "pending",
                    "attempts": 1 if sent else 0,
                    "sent_at": due + timedelta(seconds=2) if sent else None,
                    "last_attempt_at": due + timedelta(seconds=1) if sent else None,
                    "created_at": now,
                    "updated_at": now,
                }
            )
            if len(batch) == 10_000:
                conn.execute(insert(OutboxMessage), batch)
                batch = []
        if batch:
            conn.execute(insert(OutboxMessage), batch)
    engine.dispose()


def measure(url: str, scrapers: int, now: datetime) -> dict[str, float | int]:
    from checkin.app.web.metrics_cache import FiguresCache
    from checkin.store.db import make_engine, session_factory
    from checkin.store.status import Figures, collect

    engine = make_engine(url)
    sessions = session_factory(engine)
    computed = 0

    def compute() -> Figures:
        nonlocal computed
        computed += 1
        with sessions() as s:
            return collect(s, now)

    singles = []
    for _ in range(5):
        t = time.perf_counter()
        compute()
        singles.append(time.perf_counter() - t)
    computed = 0
    cache = FiguresCache()
    t = time.perf_counter()
    with ThreadPoolExecutor(max_workers=scrapers) as pool:
        list(pool.map(lambda _: cache.get(compute), range(scrapers)))
    wall = time.perf_counter() - t
    engine.dispose()
    return {
        "collect_p50_ms": round(statistics.median(singles) * 1000, 1),
        "scrapers": scrapers,
        "computations": computed,
        "scrapes_wall_ms": round(wall * 1000, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--scrapers", type=int, default=16)
    parser.add_argument(
        "--backend", nargs="+", default=["sqlite", "postgres"], choices=["sqlite", "postgres"]
    )
    args = parser.parse_args()
    now = datetime.now(UTC)
    for backend in args.backend:
        with database(backend) as url:
            seed(url, args.rows, now)
            print(json.dumps({"backend": backend, "rows": args.rows, **measure(url, args.scrapers, now)}))


if __name__ == "__main__":
    main()
