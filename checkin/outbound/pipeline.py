"""Keeping a dispatch step's sends in flight across batches
(docs/adr/0021-a-dispatch-step-keeps-sends-in-flight.md).

``pump`` hands claimed rows to ``threads`` sending threads, one row per free thread, and asks
for the next batch (``more``) while the current one is still being sent: when no more rows are
waiting than there are threads, so the claim, re-check and render of the next batch overlap
the provider calls of this one instead of following its slowest send. The rows not handed to a
thread yet stay in the caller's thread, so a stop gives them all back in one write.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Executor, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import Any, TypeVar

T = TypeVar("T")

# How often the caller's thread looks at ``stopping`` while every thread is busy.
_LOOK = 0.1


@dataclass(frozen=True)
class Refill:
    """How long one dispatch step keeps claiming while it sends: at most ``rows`` rows in all
    (a claim is never cut short) and no claim after ``seconds`` (real time). Then it sends what
    it holds and returns, so the worker's tick comes round (escalations, the stop flag)."""

    rows: int = 1_000
    seconds: float = 5.0


def pump(
    first: list[T],
    send: Callable[[T], None],
    *,
    threads: int,
    more: Callable[[], list[T] | None],
    give_back: Callable[[list[T]], None],
    stopping: Callable[[], bool],
) -> None:
    """``send`` every row of ``first`` and of each batch ``more()`` returns (None: no more
    batches), with up to ``threads`` at a time (1: in this thread). ``send`` must not raise
    for a row's own failure (it settles that row); whatever it raises anyway is re-raised after
    the other rows are settled. Once ``stopping()`` holds, nothing new starts: the rows not
    started go to ``give_back`` and the sends in flight finish before this returns."""
    waiting = deque(first)
    running: set[Future[None]] = set()
    refilling = True
    failed: BaseException | None = None
    low_water = threads if threads > 1 else 0
    pool: Executor = ThreadPoolExecutor(threads, thread_name_prefix="send") if threads > 1 else _InThread()
    with pool:  # leaving it waits for the sends in flight
        try:
            while not stopping():
                while waiting and len(running) < threads:
                    running.add(pool.submit(send, waiting.popleft()))
                if refilling and len(waiting) <= low_water:
                    batch = more()
                    refilling = batch is not None
                    if batch is not None:
                        waiting.extend(batch)
                        continue
                if not running:
                    break
                done, running = wait(running, timeout=_LOOK, return_when=FIRST_COMPLETED)
                failed = failed or _failure(done)
        finally:
            if waiting:
                give_back(list(waiting))
    failed = failed or _failure(running)
    if failed is not None:
        raise failed


def _failure(done: set[Future[None]]) -> BaseException | None:
    return next((exc for exc in (f.exception() for f in done) if exc is not None), None)


class _InThread(Executor):
    """One row at a time, in the caller's thread: no pool for a single sending thread."""

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        future: Future[Any] = Future()
        try:
            future.set_result(fn(*args, **kwargs))
        except Exception as exc:  # noqa: BLE001 - handed to the caller through the future
            future.set_exception(exc)
        return future


__all__ = ["Refill", "pump"]
