"""The demo's progress: a bar on a terminal, a line per simulated week when piped."""

from __future__ import annotations

import time
from datetime import datetime, timedelta
from typing import Any, Self, TextIO
from zoneinfo import ZoneInfo

import click

from checkin.clock import ManualClock
from checkin.demo.site import TZ

PROGRESS_EVERY = timedelta(days=7)  # a line of progress per simulated week when piped


class Progress:
    """Where the simulation is: a bar on a terminal; when piped (a log, CI), one line per
    simulated week, so a reader is never left without output for long."""

    def __init__(self, stream: TextIO | None, clock: ManualClock, start: datetime, end: datetime) -> None:
        self.stream, self.clock, self.start, self.end = stream, clock, start, end
        self.tty = bool(stream is not None and stream.isatty())
        self.next_line = start + PROGRESS_EVERY
        self.began = time.monotonic()
        self.bar: Any = None

    def __enter__(self) -> Self:
        if self.tty:
            self.bar = click.progressbar(
                length=int((self.end - self.start).total_seconds()),
                label="simulating recovery",
                file=self.stream,
                show_eta=False,
                item_show_func=lambda _: self.clock.now().astimezone(ZoneInfo(TZ)).strftime("%b %d"),
            ).__enter__()
        elif self.stream is not None:
            self.stream.write(f"simulating recovery: {self._where(self.start)}\n")
            self.stream.flush()
        return self

    def _where(self, at: datetime) -> str:
        return f"{at.astimezone(ZoneInfo(TZ)):%b %d}, {time.monotonic() - self.began:.1f} s"

    def advance(self, now: datetime, nxt: datetime, sent: int) -> None:
        if self.bar is not None:
            self.bar.update(int((nxt - now).total_seconds()))
        elif self.stream is not None and (nxt >= self.next_line or nxt >= self.end):
            done = (nxt - self.start) / (self.end - self.start)
            self.stream.write(f"  {done:4.0%} {self._where(nxt)}: {sent} messages sent\n")
            self.stream.flush()
            while self.next_line <= nxt:
                self.next_line += PROGRESS_EVERY

    def __exit__(self, *exc: Any) -> None:
        if self.bar is not None:
            self.bar.__exit__(*exc)
