"""Leave-one-author-out evaluation of triage (rules + learned layer).

    python -m tests.benchmarks.triage_folds [--rules-only] [--c C] [--flag-at P] [--flag-at-emergency P] ...

Authors: the dev set and the three shared corpora (``../shared`` beside the checkout) and the
team's held-out set.  For each author, the learned layer is trained on all the others (the
team's cases_extra.jsonl trains every fold but the team's own), and the left-out author is
scored with the corpus scorer's metrics.  Prints one JSON line per fold, then the worst fold:
decide every change by the worst line.  Skips with a message when ``../shared`` is absent.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

from checkin.core.triage import training
from tests.triage.corpus_metrics import author_corpora


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rules-only", action="store_true", help="score the rules without a learned layer")
    ap.add_argument("--c", type=float, default=training.DEFAULTS["c"])
    ap.add_argument("--min-weight", type=float, default=training.DEFAULTS["min_weight"])
    ap.add_argument("--flag-at", type=float, default=training.DEFAULTS["flag_at"])
    ap.add_argument("--flag-at-emergency", type=float, default=training.DEFAULTS["flag_at_emergency"])
    ap.add_argument("--lexicon", type=float, default=training.DEFAULTS["lexicon"])
    ap.add_argument("--review-at", type=float, default=training.DEFAULTS["review_at"])
    args = ap.parse_args(argv)
    loaded = author_corpora()
    if loaded is None:
        print("triage_folds: skipped: ../shared (the shared labelled corpora) is absent")
        return 0
    authors, train_only = loaded
    t0 = time.perf_counter()
    if args.rules_only:
        per = {name: training.evaluate(rows, None) for name, rows in authors.items()}
        result = {"folds": per, "worst": training.worst(per)}
    else:
        params = {
            "c": args.c,
            "min_weight": args.min_weight,
            "flag_at": args.flag_at,
            "review_at": args.review_at,
            "flag_at_emergency": args.flag_at_emergency,
            "lexicon": args.lexicon,
        }
        result = training.folds(authors, train_only, **params)
    for name, fig in result["folds"].items():
        print(json.dumps({"fold": name, **fig}))
    print(json.dumps({"fold": "WORST", **result["worst"], "seconds": round(time.perf_counter() - t0, 1)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
