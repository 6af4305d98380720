"""Cost of checkin.core.triage.assess (rules + learned layer) on one core.

    python -m tests.benchmarks.triage_throughput [--passes N]

Prints one JSON line per corpus (the team's cases_extra/cases_heldout, and the dev set and
shared corpora when ``../shared`` or $CHECKIN_SHARED is there): replies per second over N
timed passes after one untimed warm-up pass, in one thread (= one core).  ``replies_per_s``
is by wall clock; ``replies_per_cpu_s`` by this process's CPU time, the figure to trust on a
machine other jobs are loading.  Then one line for replies at the stored-body limit (1,600
characters, built by joining corpus replies): p50/p99/max milliseconds per reply (CPU time).
Goals: >= 5,000 replies/s over the corpora; p99 <= 5 ms at 1,600 characters.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from checkin.core.triage import assess
from checkin.core.triage.layered import MAX_CHARS
from tests.triage.corpus_metrics import AUTHOR_FILES, EXTRA_CORPUS, HELDOUT_CORPUS, load_corpus, map_context

GOAL = 5_000
P99_GOAL_MS = 5.0


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


def long_replies(texts: list[str], count: int) -> list[str]:
    """``count`` replies of exactly MAX_CHARS characters, each a different run of corpus text."""
    out = []
    for start in range(count):
        parts, size, i = [], 0, start
        while size < MAX_CHARS:
            t = texts[i % len(texts)]
            parts.append(t)
            size += len(t) + 1
            i += 1
        out.append(" ".join(parts)[:MAX_CHARS])
    return out


def latency(replies: list[str]) -> dict[str, float]:
    for r in replies[:20]:
        assess(r, None)
    times = []
    for r in replies:
        c0 = time.process_time()
        assess(r, None)
        times.append((time.process_time() - c0) * 1000)
    times.sort()
    return {
        "p50_ms": round(times[len(times) // 2], 3),
        "p99_ms": round(times[int(len(times) * 0.99) - 1], 3),
        "max_ms": round(times[-1], 3),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--passes", type=int, default=10)
    ap.add_argument("--long", type=int, default=500, help="replies of 1,600 characters to time")
    args = ap.parse_args(argv)
    corpora = {"team-extra": EXTRA_CORPUS, "team-heldout": HELDOUT_CORPUS, **AUTHOR_FILES}
    texts: list[str] = []
    total_n, total_cpu = 0, 0.0
    for name, path in corpora.items():
        if not Path(path).is_file():
            print(json.dumps({"corpus": name, "path": str(path), "skipped": "absent"}))
            continue
        rows = load_corpus(Path(path))
        items = [(r["text"], map_context(r["context"])) for r in rows]
        texts.extend(r["text"] for r in rows)
        rps, cpu_rps = replies_per_second(items, args.passes)
        total_n += len(items) * args.passes
        total_cpu += len(items) * args.passes / cpu_rps
        print(
            json.dumps(
                {
                    "corpus": name,
                    "n": len(items),
                    "passes": args.passes,
                    "replies_per_s": round(rps, 1),
                    "replies_per_cpu_s": round(cpu_rps, 1),
                }
            ),
            flush=True,
        )
    overall = total_n / total_cpu if total_cpu else 0.0
    print(
        json.dumps(
            {
                "corpus": "ALL",
                "replies_per_cpu_s": round(overall, 1),
                "goal": GOAL,
                "meets_goal": overall >= GOAL,
            }
        )
    )
    lat = latency(long_replies(texts, args.long))
    print(
        json.dumps(
            {
                "replies": args.long,
                "chars": MAX_CHARS,
                **lat,
                "goal_p99_ms": P99_GOAL_MS,
                "meets_goal": lat["p99_ms"] <= P99_GOAL_MS,
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
