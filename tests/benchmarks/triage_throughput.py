"""Throughput of checkin.core.triage.assess on one core.

    python -m tests.benchmarks.triage_throughput [--passes N]

Prints one JSON line per corpus (the dev corpus at ../shared/triage-dev.jsonl or
$CHECKIN_TRIAGE_CORPUS, and tests/triage/cases_extra.jsonl): replies per second over N timed
passes after one untimed warm-up pass, in one thread (= one core).  ``replies_per_s`` is by
wall clock (time.perf_counter); ``replies_per_cpu_s`` by this process's CPU time
(time.process_time), which is the figure to trust on a machine other jobs are loading.
Goal: >= 20,000 replies/s.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from checkin.core.triage import assess
from tests.triage.corpus_metrics import EXTRA_CORPUS, dev_corpus_path, load_corpus, map_context

GOAL = 20_000


def replies_per_second(items: list[tuple[str, str | None]], passes: int) -> tuple[float, float]:
    """(replies per wall-clock second, replies per CPU second)."""
    for text, ctx in items:  # warm-up: fuzzy cache, memo tables
        assess(text, ctx)
    t0, c0 = time.perf_counter(), time.process_time()
    for _ in range(passes):
        for text, ctx in items:
            assess(text, ctx)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    n = passes * len(items)
    return n / wall, n / cpu if cpu > 0 else float("inf")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--passes", type=int, default=50)
    args = ap.parse_args(argv)
    for name, path in (("dev", dev_corpus_path()), ("extra", EXTRA_CORPUS)):
        if not Path(path).is_file():
            print(json.dumps({"corpus": name, "path": str(path), "error": "missing"}))
            continue
        rows = load_corpus(Path(path))
        items = [(r["text"], map_context(r["context"])) for r in rows]
        rps, cpu_rps = replies_per_second(items, args.passes)
        print(
            json.dumps(
                {
                    "corpus": name,
                    "n": len(items),
                    "passes": args.passes,
                    "replies_per_s": round(rps, 1),
                    "replies_per_cpu_s": round(cpu_rps, 1),
                    "goal": GOAL,
                    "meets_goal": cpu_rps >= GOAL,
                }
            ),
            flush=True,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
