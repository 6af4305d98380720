"""A private PostgreSQL cluster for fault tests: ``initdb`` in a temporary directory, a free
loopback port, and ``pg_ctl`` to stop, restart and kill it under running workers.

The shared server on 5432 belongs to every test run on the machine; restarting it would break
them, so fault tests never touch it. The cluster runs as an unprivileged user (PostgreSQL
refuses to run as root): the current user, or ``postgres`` through ``runuser`` when the tests
run as root.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from pathlib import Path
from typing import Literal

from sqlalchemy import create_engine, text


def _bin(name: str) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    for root in sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True):
        if (root / name).exists():
            return str(root / name)
    return None


def available() -> str | None:
    """None if a private cluster can be made here; else why not (for a skip reason)."""
    for name in ("initdb", "pg_ctl"):
        if _bin(name) is None:
            return f"{name} not found (install the PostgreSQL server binaries)"
    if os.geteuid() == 0 and (shutil.which("runuser") is None or _uid("postgres") is None):
        return "running as root without a 'postgres' user to run the private cluster as"
    return None


def _uid(user: str) -> int | None:
    import pwd

    try:
        return pwd.getpwnam(user).pw_uid
    except KeyError:
        return None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class PrivateCluster:
    """One throwaway cluster. ``url`` is a SQLAlchemy URL to its ``checkin`` database."""

    def __init__(self, base: Path) -> None:
        self.base = base
        self.data = base / "data"
        self.port = free_port()
        self.log = base / "postgres.log"
        self._as_root = os.geteuid() == 0

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/checkin"

    def _run(self, *args: str, check: bool = True, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        cmd = list(args)
        if self._as_root:
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        return subprocess.run(cmd, check=check, capture_output=True, text=True, timeout=timeout)

    def init(self) -> PrivateCluster:
        self.base.mkdir(parents=True, exist_ok=True)
        if self._as_root:
            shutil.chown(self.base, "postgres")
        initdb = _bin("initdb")
        assert initdb is not None
        self._run(initdb, "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync")
        with (self.data / "postgresql.conf").open("a") as conf:
            conf.write(
                f"\nport = {self.port}\nlisten_addresses = '127.0.0.1'\n"
                "unix_socket_directories = ''\nfsync = off\nmax_connections = 100\n"
            )
        self.start()
        admin = create_engine(self.url.rsplit("/", 1)[0] + "/postgres", isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text("CREATE DATABASE checkin"))
        admin.dispose()
        return self

    def _ctl(self, *args: str) -> None:
        pg_ctl = _bin("pg_ctl")
        assert pg_ctl is not None
        self._run(pg_ctl, "-D", str(self.data), "-l", str(self.log), "-w", "-t", "60", *args)

    def start(self) -> None:
        self._ctl("start")

    def stop(self, mode: Literal["fast", "immediate", "smart"] = "fast") -> None:
        self._ctl("stop", "-m", mode)

    def restart(self, mode: Literal["fast", "immediate"] = "fast") -> float:
        """Stop with ``mode`` and start again; returns the monotonic instant it accepts
        connections again."""
        self.stop(mode)
        self.start()
        return time.monotonic()

    def destroy(self) -> None:
        pg_ctl = _bin("pg_ctl")
        if pg_ctl is not None and (self.data / "postmaster.pid").exists():
            self._run(pg_ctl, "-D", str(self.data), "stop", "-m", "immediate", check=False)
        shutil.rmtree(self.base, ignore_errors=True)
