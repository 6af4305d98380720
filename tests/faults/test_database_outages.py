"""Database outages under real worker processes (``python -m tests.outbound.run_worker``: the
real ``worker.run`` and Twilio adapter against the recording fake, with provider latency):

- PostgreSQL restarted under 3 workers with ``pg_ctl -m fast`` and ``-m immediate``, and
  stopped for 15 s, on a private cluster (never the shared server);
- SQLite made read-only in the middle of a run.

After the database returns, every due row must be sent exactly once within 30 s: no claimed row
may wait for a lease or for dead-worker recovery (``orphan_after`` is set to 10 minutes here, so
a stranded row fails the test), and no row may be ``sent`` without its provider id.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from sqlalchemy import func, select

from checkin.deps import Services
from checkin.store.models import OutboxMessage
from tests.faults import pgcluster
from tests.outbound.support import (
    FAST_TUNING,
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

IN_CI = os.environ.get("CI", "").lower() == "true"
RECOVERY_BUDGET = 30.0  # seconds from the database's return to the last due row sent
TUNING = {
    **FAST_TUNING,
    "concurrency": 4,
    "policy": {**FAST_TUNING["policy"], "lease": 10.0, "orphan_after": 600.0},  # type: ignore[dict-item]
}


def counts(services: Services) -> Counter[str]:
    with services.sessions() as s:
        rows = s.execute(select(OutboxMessage.status, func.count()).group_by(OutboxMessage.status)).all()
    return Counter({status: int(n) for status, n in rows})


def sent_count(services: Services) -> int:
    try:
        return counts(services)["sent"]
    except Exception:
        return -1  # the database is down: not yet


@pytest.fixture
def fake() -> Iterator[HoldingTwilio]:
    with HoldingTwilio() as f:
        f.latency = (0.05, 0.1)  # a provider that takes real time, so the outage hits sends in flight
        yield f


@pytest.fixture
def cluster() -> Iterator[pgcluster.PrivateCluster]:
    why = pgcluster.available()
    if why is not None:
        if IN_CI:
            pytest.fail(f"fault tests need a private PostgreSQL cluster in CI: {why}")
        pytest.skip(why)
    # Not under pytest's tmp_path: that is private to this user, and the cluster may run as
    # the postgres user.
    c = pgcluster.PrivateCluster(Path(tempfile.mkdtemp(prefix="checkin-pg-"))).init()
    try:
        from checkin.store.db import upgrade

        upgrade(c.url)
        yield c
    finally:
        c.destroy()


@pytest.fixture
def procs() -> Iterator[list[WorkerProcess]]:
    started: list[WorkerProcess] = []
    yield started
    for w in started:
        if w.proc.poll() is None:
            w.proc.kill()
            w.proc.wait(10)


def check_exactly_once(local: Services, fake: HoldingTwilio, ids: list[int], logs: str) -> None:
    per = fake.per_outbox()
    duplicates = {i: n for i, n in per.items() if n > 1}
    assert not duplicates, f"sent more than once: {duplicates}"
    assert sorted(per) == sorted(ids), f"{len(ids) - len(per)} rows never reached the provider"
    with local.sessions() as s:
        bare = s.scalar(
            select(func.count())
            .select_from(OutboxMessage)
            .where(OutboxMessage.status == "sent", OutboxMessage.provider_id.is_(None))
        )
    assert bare == 0, f"{bare} rows sent without a provider id\n{logs[-3000:]}"


def run_outage(
    local: Services,
    url: str,
    fake: HoldingTwilio,
    procs: list[WorkerProcess],
    tmp_path: Path,
    *,
    workers: int,
    total: int,
    outage: object,
) -> float:
    """Start workers, plant ``total`` rows, run ``outage()`` (returns the monotonic instant the
    database is back) once sending is under way; returns seconds from that instant to the last
    row sent."""
    env = {**settings_env(url, CHECKIN_SMS_RATE="1000"), **twilio_env(fake.url, 5.0)}
    ids = add_due_now(local, total)
    for n in range(workers):
        procs.append(start_worker(env, tmp_path / f"w{n}.log", tuning=TUNING, worker_id=f"w{n}"))
    wait_for(lambda: len(fake.per_outbox()) >= total // 10, timeout=60, what="sending under way")
    back = outage()  # type: ignore[operator]
    logs = lambda: "\n".join(w.output()[-1500:] for w in procs)  # noqa: E731
    deadline = back + RECOVERY_BUDGET + 30
    while time.monotonic() < deadline and sent_count(local) < total:
        time.sleep(0.1)
    done = time.monotonic() - back
    final = counts(local)
    assert final["sent"] == total, f"{final} after {done:.1f}s\n{logs()}"
    assert done <= RECOVERY_BUDGET, f"last row sent {done:.1f}s after the database returned\n{logs()}"
    for w in procs:
        w.proc.send_signal(signal.SIGTERM)
        w.proc.wait(20)
    check_exactly_once(local, fake, ids, logs())
    return done


@pytest.mark.parametrize("mode", ["fast", "immediate"])
def test_every_row_goes_once_within_30s_of_a_postgresql_restart(
    cluster: pgcluster.PrivateCluster,
    fake: HoldingTwilio,
    procs: list[WorkerProcess],
    tmp_path: Path,
    mode: str,
) -> None:
    local = make_services(cluster.url)
    run_outage(
        local,
        cluster.url,
        fake,
        procs,
        tmp_path,
        workers=3,
        total=600,
        outage=lambda: cluster.restart(mode),  # type: ignore[arg-type]
    )


def test_every_row_goes_once_within_30s_of_a_15s_postgresql_stop(
    cluster: pgcluster.PrivateCluster, fake: HoldingTwilio, procs: list[WorkerProcess], tmp_path: Path
) -> None:
    local = make_services(cluster.url)

    def outage() -> float:
        cluster.stop("fast")
        time.sleep(15)
        cluster.start()
        return time.monotonic()

    run_outage(local, cluster.url, fake, procs, tmp_path, workers=3, total=600, outage=outage)


def test_every_row_goes_once_within_30s_of_sqlite_turning_read_only(
    fake: HoldingTwilio, procs: list[WorkerProcess], tmp_path: Path
) -> None:
    from checkin.store.db import upgrade

    folder = tmp_path / "db"
    folder.mkdir()
    path = folder / "checkin.db"
    url = f"sqlite:///{path}"
    upgrade(url)
    local = make_services(url)

    def outage() -> float:
        with read_only(folder):
            time.sleep(5)
        return time.monotonic()

    run_outage(local, url, fake, procs, tmp_path, workers=1, total=300, outage=outage)
    assert '"event": "db.retry"' in procs[0].output()  # the worker did meet the refusal


@contextmanager
def read_only(folder: Path) -> Iterator[None]:
    """Make ``folder`` and the database files in it (the database and its WAL) refuse writes,
    also through descriptors already open. Root ignores file modes, so as root the
    files are made immutable (``chattr +i``) instead of ``chmod``-ed."""
    # Not the shared-memory index: SQLite writes it through a memory map, which no file mode
    # stops either (and, made immutable, it left the worker stuck without an error, unlike
    # anything chmod can do). It holds locks and the WAL index, not data.
    paths = [*(p for p in folder.iterdir() if not p.name.endswith("-shm")), folder]
    if os.geteuid() == 0:
        if shutil.which("chattr") is None:
            pytest.skip("running as root without chattr: nothing can make SQLite read-only")
        subprocess.run(["chattr", "+i", *map(str, paths)], check=True)
        try:
            yield
        finally:
            subprocess.run(["chattr", "-i", *map(str, paths)], check=True)
        return
    modes = {p: p.stat().st_mode for p in paths}
    for p in paths:
        p.chmod(0o555 if p.is_dir() else 0o444)
    try:
        yield
    finally:
        for p, mode in modes.items():
            p.chmod(mode)
