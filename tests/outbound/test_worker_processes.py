"""Real worker processes (``python -m tests.outbound.run_worker``: the real ``worker.run`` and
the real Twilio adapter) against the recording Twilio fake: docs/reliability.md R1, R2, R2b, R11.

Workers run on the system clock here, so each test plants rows due a minute ago in a zone
whose local time is inside the send window right now.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
from sqlalchemy import func, select

from checkin.deps import Services
from checkin.store.models import OutboxMessage, Worker
from tests.channels.fake_twilio_server import Answer
from tests.outbound.support import (
    ROOT,
    HoldingTwilio,
    WorkerProcess,
    add_due_now,
    make_services,
    settings_env,
    start_worker,
    twilio_env,
    wait_for,
)

pytestmark = pytest.mark.slow


def worker_env(db_url: str, fake: HoldingTwilio, timeout: float = 5.0) -> dict[str, str]:
    return {**settings_env(db_url, CHECKIN_SMS_RATE="1000"), **twilio_env(fake.url, timeout)}


def status_counts(services: Services) -> Counter[str]:
    with services.sessions() as s:
        return Counter(
            dict(s.execute(select(OutboxMessage.status, func.count()).group_by(OutboxMessage.status)).all())
        )


def all_sent(services: Services, n: int) -> bool:
    return status_counts(services)["sent"] == n


def log_records(output: str) -> list[dict[str, object]]:
    """The worker's JSON log lines (other output, such as the console channel's, skipped)."""
    records = []
    for line in output.splitlines():
        if line.startswith("{"):
            try:
                records.append(json.loads(line))
            except ValueError:
                continue
    return records


def stop_cleanly(w: WorkerProcess) -> None:
    w.proc.send_signal(signal.SIGTERM)
    assert w.proc.wait(20) == 0, w.output()[-3000:]


@pytest.fixture
def local(db_url: str) -> Services:
    return make_services(db_url)


# ---- R1: kill -9 mid-dispatch --------------------------------------------------------------


@pytest.mark.parametrize("variant", ["before accepting", "after recording", "after answering"])
def test_it_sends_each_message_once_when_a_worker_is_killed_mid_dispatch_and_restarted(
    local: Services,
    db_url: str,
    fake: HoldingTwilio,
    procs: list[WorkerProcess],
    tmp_path: Path,
    variant: str,
) -> None:
    ids = add_due_now(local, 3)
    env = worker_env(db_url, fake)
    marker = tmp_path / "answered"
    if variant == "before accepting":
        fake.hold_before_accepting()
    elif variant == "after recording":
        fake.script(Answer.slow(60, created=True))  # recorded, then no answer until killed
    first = start_worker(
        env, tmp_path / "first.log", hook=f"after_send:{marker}" if variant == "after answering" else None
    )
    procs.append(first)

    if variant == "before accepting":
        assert fake.wait_held(30), first.output()
    elif variant == "after recording":
        wait_for(lambda: len(fake.per_outbox()) >= 1, what="the fake to record a message")
    else:
        wait_for(marker.exists, what="a receipt the worker has not committed")
    first.proc.kill()
    first.proc.wait(10)
    fake.release()  # a held request now fails without creating anything
    assert status_counts(local)["sending"] >= 1  # the kill left a claim behind

    second = start_worker(env, tmp_path / "second.log")
    procs.append(second)
    wait_for(lambda: all_sent(local, 3), what="every message sent", timeout=40)
    stop_cleanly(second)

    assert fake.per_outbox() == dict.fromkeys(ids, 1)
    assert status_counts(local) == {"sent": 3}
    with local.sessions() as s:
        sids = set(s.scalars(select(OutboxMessage.provider_id)))
    assert sids == {m["sid"] for m in fake.messages}


# ---- R2: several workers on one PostgreSQL -------------------------------------------------


@pytest.mark.postgres
@pytest.mark.parametrize("workers", [2, 4])
def test_it_sends_each_message_exactly_once_with_several_workers_on_postgresql(
    pg_migrated: str, fake: HoldingTwilio, procs: list[WorkerProcess], tmp_path: Path, workers: int
) -> None:
    from tests.conftest import _truncate_all

    local = make_services(pg_migrated)
    _truncate_all(local.engine)
    fake.latency = (0.0, 0.03)
    env = worker_env(pg_migrated, fake)
    for n in range(workers):
        procs.append(start_worker(env, tmp_path / f"w{n}.log", worker_id=f"w{n}"))

    def registered() -> bool:
        with local.sessions() as s:
            return (s.scalar(select(func.count()).select_from(Worker)) or 0) == workers

    wait_for(registered, what=f"{workers} workers to start")
    total = 400
    ids = add_due_now(local, total)
    wait_for(lambda: all_sent(local, total), what="every message sent", timeout=60)
    for w in procs:
        stop_cleanly(w)

    counts = fake.per_outbox()
    assert sorted(counts) == sorted(ids) and set(counts.values()) == {1}
    assert len(fake.creates()) == total  # not one extra request
    assert status_counts(local) == {"sent": total}
    busy = [w for w in procs if any(r.get("event") == "outbox.sent" for r in log_records(w.output()))]
    assert len(busy) >= 2  # the work was shared
    local.engine.dispose()


# ---- R2b: a second worker on one SQLite file -----------------------------------------------


def test_it_refuses_to_start_a_second_worker_on_the_same_sqlite_file(
    tmp_path: Path, fake: HoldingTwilio, procs: list[WorkerProcess]
) -> None:
    from checkin.store.db import upgrade

    db_url = f"sqlite:///{tmp_path / 'one.db'}"
    upgrade(db_url)
    local = make_services(db_url)
    env = worker_env(db_url, fake)
    first = start_worker(env, tmp_path / "first.log", worker_id="first")
    procs.append(first)

    def running() -> bool:
        with local.sessions() as s:
            return s.get(Worker, "first") is not None

    wait_for(running, what="the first worker to register")
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("CHECKIN_", "TWILIO_"))}
    second = subprocess.run(
        [sys.executable, "-m", "checkin", "worker"],
        check=False,
        cwd=ROOT,
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert second.returncode == 1
    assert "another worker (first, pid" in second.stderr
    assert "SQLite supports one worker" in second.stderr

    stop_cleanly(first)
    with local.sessions() as s:
        row = s.get(Worker, "first")
        assert row is not None and row.stopped_at is not None
    again = start_worker(env, tmp_path / "again.log")  # a stopped worker does not block
    procs.append(again)
    wait_for(lambda: "start-up:" in again.output(), what="the next worker to start")
    stop_cleanly(again)


# ---- R11: graceful shutdown ----------------------------------------------------------------


def test_it_finishes_sends_in_flight_claims_nothing_new_and_exits_on_sigterm(
    local: Services, db_url: str, fake: HoldingTwilio, procs: list[WorkerProcess], tmp_path: Path
) -> None:
    fake.latency = (1.0, 1.0)
    tuning = {
        "dispatch_every": 0.2,
        "reconcile_every": 0.3,
        "heartbeat_every": 0.3,
        "expire_every": 5,
        "batch": 20,
        "concurrency": 4,
    }
    ids = add_due_now(local, 8)
    worker = start_worker(worker_env(db_url, fake), tmp_path / "w.log", tuning=tuning, worker_id="graceful")
    procs.append(worker)
    for _ in range(4):
        assert fake.arrived.acquire(timeout=30), worker.output()
    worker.proc.send_signal(signal.SIGTERM)
    assert worker.proc.wait(20) == 0, worker.output()[-3000:]

    assert len(fake.creates()) == 4  # nothing claimed after SIGTERM was sent
    with local.sessions() as s:
        rows = {r.id: r for r in s.scalars(select(OutboxMessage))}
        stopped = s.get(Worker, "graceful")
    sent = [i for i in ids if rows[i].status == "sent"]
    assert sorted(sent) == sorted(fake.per_outbox()) and len(sent) == 4
    for i in set(ids) - set(sent):
        assert (rows[i].status, rows[i].claimed_by, rows[i].lease_until, rows[i].attempts) == (
            "pending",
            None,
            None,
            0,
        )
    assert stopped is not None and stopped.stopped_at is not None
