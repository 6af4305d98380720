"""Several web processes on one address: ``checkin web --workers N``.

Python runs one request's CPU work at a time per process, so one web process uses one core.
Here a small parent forks ``N`` children; each binds its own listening socket to the same
``host:port`` with ``SO_REUSEPORT`` and the kernel spreads new connections across them by
connection hash (a single shared socket would wake every child for each connection and let
whichever is fastest take most of them). Each child builds its own services after the fork: a
pooled database connection must never be shared across processes. The settings were read once,
before the fork.

The parent only supervises. SIGTERM or SIGINT to it is passed on to every child as one SIGTERM
(a graceful stop). If a child exits on its own, the parent stops the others and exits 1, so
systemd or compose restart the whole set rather than run on with fewer processes unnoticed.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
import sys
from collections.abc import Callable
from types import FrameType

log = logging.getLogger(__name__)

BACKLOG = 2048


def supported() -> bool:
    """Whether this platform can run several processes on one port (Linux, the BSDs, macOS)."""
    return hasattr(socket, "SO_REUSEPORT") and hasattr(os, "fork")


def listen(host: str, port: int, *, backlog: int | None = BACKLOG) -> socket.socket:
    """A TCP socket bound to ``host:port`` that other processes of this user may share,
    listening unless ``backlog`` is None. Raises OSError (``EADDRINUSE`` when a process that
    does not share holds the port)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind((host, port))
        if backlog is not None:
            sock.listen(backlog)
    except BaseException:
        sock.close()
        raise
    return sock


def check_port(host: str, port: int) -> None:
    """Raise OSError now, in the parent and in one line, if ``host:port`` cannot be shared.
    The probe only binds: a socket that does not listen is given no connections."""
    listen(host, port, backlog=None).close()


def run_workers(count: int, host: str, port: int, child: Callable[[socket.socket], int]) -> int:
    """Run ``child(sock)`` in ``count`` forked processes, each with its own socket from
    ``listen``; return 0 once all stopped after a signal to this process, 1 if any child exited
    on its own or failed. ``child`` returns its exit status; it must not return before it is
    asked to stop unless it failed."""
    children: set[int] = set()
    stopping = False

    def stop(_sig: int = 0, _frame: FrameType | None = None) -> None:
        nonlocal stopping
        if stopping:
            return
        stopping = True
        for pid in children:
            with contextlib.suppress(ProcessLookupError):  # already gone
                os.kill(pid, signal.SIGTERM)

    # Installed before the first fork, so a signal that arrives while forking reaches the
    # children already started; each child puts the defaults back straight away.
    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        for _ in range(count):
            if stopping:
                break
            sys.stdout.flush()
            sys.stderr.flush()
            pid = os.fork()
            if pid == 0:
                os._exit(_child(child, host, port))
            children.add(pid)
        log.info(
            "web processes started", extra={"event": "web.workers", "count": len(children), "port": port}
        )
        status = 0
        while children:
            try:
                pid, wait_status = os.wait()
            except ChildProcessError:
                break
            children.discard(pid)
            code = os.waitstatus_to_exitcode(wait_status)
            if not stopping:
                log.error(
                    "a web process exited; stopping the others",
                    extra={"event": "web.worker_exit", "pid": pid, "exit_code": code},
                )
                status = 1
                stop()
            elif code != 0:
                status = 1
        return status
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _child(child: Callable[[socket.socket], int], host: str, port: int) -> int:
    """The forked side: never returns into the parent's code (the caller ``os._exit``s)."""
    code = 1
    try:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        code = child(listen(host, port))
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else 1
    except BaseException:
        log.exception("web process failed", extra={"event": "web.worker_failed"})
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
    return code
