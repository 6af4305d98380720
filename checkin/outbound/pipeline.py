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
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from queue import Empty, SimpleQueue
from typing import TypeVar

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
    # Each send reports its end here: one queue operation per row, where waiting on the
    # futures would register with every one of them for each row that ends.
    ended: SimpleQueue[BaseException | None] = SimpleQueue()
    running = 0
    refilling = True
    failed: BaseException | None = None
    low_water = threads if threads > 1 else 0

    def run(item: T) -> None:
        outcome: BaseException | None = None
        try:
            send(item)
        except Exception as exc:  # noqa: BLE001 - re-raised in the caller's thread at the end
            outcome = exc
        finally:  # counted as ended whatever happened, or the caller would wait for it forever
            ended.put(outcome)

    pool = ThreadPoolExecutor(threads, thread_name_prefix="send") if threads > 1 else None
    try:
        while not stopping():
            while waiting and running < threads:
                item = waiting.popleft()
                if pool is None:
                    run(item)
                else:
                    pool.submit(run, item)
                running += 1
            if refilling and len(waiting) <= low_water:
                batch = more()
                refilling = batch is not None
                if batch is not None:
                    waiting.extend(batch)
                    continue
            if not running:
                break
            try:
                outcome = ended.get(timeout=_LOOK)
            except Empty:
                continue
            running -= 1
            failed = failed or outcome
    finally:
        if waiting:
            give_back(list(waiting))
        if pool is not None:
            pool.shutdown(wait=True)  # the sends in flight finish and are recorded
    while running:
        running -= 1
        failed = failed or ended.get()
    if failed is not None:
        raise failed


__all__ = ["Refill", "pump"]
