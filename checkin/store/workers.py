"""Running ``checkin worker`` processes as the ``workers`` table records them."""

from __future__ import annotations

import os
import socket
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from checkin.store.models import Worker


def this_host() -> str:
    return socket.gethostname()[:128]


def pid_alive(pid: int) -> bool:
    """Whether a process with this pid exists on this machine."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, owned by someone else
    return True


def live_workers(session: Session, now: datetime, stale_after: timedelta) -> dict[str, Worker]:
    """Workers presumed alive: not stopped, heartbeat fresher than ``stale_after``, and, for
    workers on this machine, a process with their pid still exists (a worker killed with
    SIGKILL and restarted at once need not wait for its old heartbeat to go stale)."""
    host = this_host()
    alive: dict[str, Worker] = {}
    for w in session.scalars(
        select(Worker).where(Worker.stopped_at.is_(None), Worker.heartbeat_at > now - stale_after)
    ):
        if w.host == host and w.pid != os.getpid() and not pid_alive(w.pid):
            continue
        alive[w.id] = w
    return alive


__all__ = ["live_workers", "pid_alive", "this_host"]
