"""`checkin web --workers N`: several processes on one port, stopped together.

Which process answered a connection is read from /proc (the web processes' open sockets), so
the product needs no debug header for it; Linux only.
"""

from __future__ import annotations

import http.client
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import free_port
from tests.web.processes import start_web, wait_ready

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="reads the web processes' sockets from /proc"
)


def children(pid: int) -> list[int]:
    return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]


ESTABLISHED, LISTEN = "01", "0A"


def inodes(port: int, state: str) -> set[str]:
    """Socket inodes of TCP sockets in ``state`` whose local port is ``port``."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            if int(fields[1].rsplit(":", 1)[1], 16) == port and fields[3] == state:
                inodes.add(fields[9])
    return inodes


def socket_inodes(pid: int) -> set[str]:
    out = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            out.add(target[len("socket:[") : -1])
    return out


@pytest.fixture
def running(pg_url: str, tmp_path: Path) -> Iterator[tuple[subprocess.Popen[str], int]]:
    port = free_port()
    proc = start_web(pg_url, port, 2, tmp_path)
    try:
        wait_ready(port)
        deadline = time.monotonic() + 30
        while len(children(proc.pid)) < 2 and time.monotonic() < deadline:
            time.sleep(0.1)
        yield proc, port
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=30)


@pytest.mark.postgres
def test_two_processes_share_the_port_and_both_answer(running: tuple[subprocess.Popen[str], int]) -> None:
    proc, port = running
    pids = children(proc.pid)
    assert len(pids) == 2
    deadline = time.monotonic() + 30  # both listening (the second may still be starting)
    while any(not inodes(port, LISTEN) & socket_inodes(pid) for pid in pids):
        assert time.monotonic() < deadline, "a web process never listened"
        time.sleep(0.1)
    connections = []
    for _ in range(24):  # the kernel picks a process per connection by hash: 2**-23 to miss one
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        conn.request("GET", "/healthz")
        response = conn.getresponse()
        response.read()
        assert response.status == 200
        connections.append(conn)  # kept open: its server side stays visible in /proc
    open_here = inodes(port, ESTABLISHED)
    per_process = {pid: len(open_here & socket_inodes(pid)) for pid in pids}
    for conn in connections:
        conn.close()
    assert all(n > 0 for n in per_process.values()), per_process
    assert sum(per_process.values()) == 24
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=30) == 0
    for pid in pids:
        assert not Path(f"/proc/{pid}").exists()  # stopped and reaped by the parent


@pytest.mark.postgres
def test_a_process_that_dies_stops_the_set_with_status_1(running: tuple[subprocess.Popen[str], int]) -> None:
    proc, _port = running
    first, second = children(proc.pid)
    os.kill(first, signal.SIGKILL)
    assert proc.wait(timeout=30) == 1
    assert not Path(f"/proc/{second}").exists()
    assert "a web process exited; stopping the others" in proc.communicate(timeout=10)[0]


def test_several_processes_are_refused_on_sqlite(tmp_path: Path) -> None:
    from checkin.store.db import upgrade

    url = f"sqlite:///{tmp_path / 'web.db'}"
    upgrade(url)
    proc = start_web(url, free_port(), 2, tmp_path)
    out = proc.communicate(timeout=60)[0]
    assert proc.returncode == 1
    assert "--workers above 1 needs PostgreSQL" in out


@pytest.mark.postgres
def test_a_port_already_taken_is_one_line(pg_url: str, tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        proc = start_web(pg_url, port, 2, tmp_path)
        out = proc.communicate(timeout=60)[0]
    assert proc.returncode == 1
    assert f"cannot listen on 127.0.0.1:{port}" in out
    assert "Traceback" not in out
