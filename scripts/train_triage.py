#!/usr/bin/env python3
"""Train the learned triage layer and write the artefact the package ships.

    .venv/bin/python scripts/train_triage.py [--out checkin/core/triage/model/learned.json]

Needs the ``dev`` extra (scikit-learn) and the labelled corpora: the shared author corpora
($CHECKIN_SHARED, by default the ``shared`` directory beside the checkout) and the team's
tests/triage/cases_*.jsonl.  It
first runs the leave-one-author-out folds with the chosen parameters (the figures go into the
artefact, so every shipped model says how it generalizes), then trains on every row.  The
artefact records the sha256 of the training rows; the same inputs give the same file.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from checkin.core.triage import training  # noqa: E402
from tests.triage.corpus_metrics import author_corpora  # noqa: E402

VERSION = 1


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=ROOT / "checkin/core/triage/model/learned.json")
    args = ap.parse_args(argv)
    loaded = author_corpora()
    if loaded is None:
        print(
            "train_triage: the shared labelled corpora ($CHECKIN_SHARED) are absent",
            file=sys.stderr,
        )
        return 2
    authors, train_only = loaded
    params = dict(training.DEFAULTS)
    print("folds ...", file=sys.stderr)
    folds = training.folds(authors, train_only, **params)
    rows = [r for rs in authors.values() for r in rs] + [r for rs in train_only.values() for r in rs]
    doc = training.fit(rows, **params)
    doc["meta"]["version"] = VERSION
    doc["meta"]["authors"] = {name: len(rs) for name, rs in authors.items()}
    doc["meta"]["folds"] = folds
    args.out.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(doc, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    args.out.write_text(text + "\n", encoding="utf-8")
    print(json.dumps({"out": str(args.out), "bytes": len(text), "worst": folds["worst"]}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
