"""Corpus metrics computed exactly as the project's triage scorer computes them.

Kept in one place so test_corpus.py and the throughput benchmark read corpora the same way.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from tests.shared_data import shared_dir

RANK = {"none": 0, "watch": 1, "urgent": 2, "emergency": 3}
HERE = Path(__file__).resolve()
# The shared folder beside the checkout ($CHECKIN_SHARED elsewhere): see tests/shared_data.py.
SHARED = shared_dir()
DEV_CORPUS = SHARED / "triage-dev.jsonl"
EXTRA_CORPUS = HERE.parent / "cases_extra.jsonl"
# written without reading the lexicons, to measure generalization (see its ids h###)
HELDOUT_CORPUS = HERE.parent / "cases_heldout.jsonl"


def dev_corpus_path() -> Path:
    """The dev corpus: $CHECKIN_TRIAGE_CORPUS if set, else ../shared/triage-dev.jsonl."""
    env = os.environ.get("CHECKIN_TRIAGE_CORPUS")
    return Path(env) if env else DEV_CORPUS


def map_context(context: str | None) -> str | None:
    """triage_eval.py passes ``*_reminder`` contexts as ``reminder``."""
    if isinstance(context, str) and context.endswith("_reminder"):
        return "reminder"
    return context


def load_corpus(path: Path) -> list[dict]:
    rows = []
    with path.open(encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            row = json.loads(line)
            missing = {"id", "text", "flags", "severity"} - row.keys()
            assert not missing, f"{path}:{lineno}: missing {sorted(missing)}"
            assert row["severity"] in RANK, f"{path}:{lineno}: bad severity"
            row.setdefault("context", None)
            row.setdefault("acceptable", [])
            rows.append(row)
    assert rows, f"{path}: no rows"
    return rows


@dataclass
class Metrics:
    n: int = 0
    emergency: int = 0
    emergency_hit: int = 0
    required: int = 0
    required_found: int = 0
    benign: int = 0
    false_alarms: int = 0
    misses: list[str] = field(default_factory=list)

    @property
    def emergency_recall(self) -> float:
        return self.emergency_hit / self.emergency if self.emergency else 1.0

    @property
    def flag_recall(self) -> float:
        return self.required_found / self.required if self.required else 1.0

    @property
    def false_alarm_rate(self) -> float:
        return self.false_alarms / self.benign if self.benign else 0.0


def score(rows: list[dict]) -> Metrics:
    from checkin.core.triage import assess

    m = Metrics()
    for row in rows:
        r = assess(row["text"], map_context(row["context"]))
        got = {f.value for f in r.flags}
        sev = r.severity.value
        req = set(row["flags"])
        true = row["severity"]
        m.n += 1
        m.required += len(req)
        m.required_found += len(req & got)
        if true == "emergency":
            m.emergency += 1
            m.emergency_hit += sev == "emergency"
        if RANK[true] <= 1:
            m.benign += 1
            m.false_alarms += RANK[sev] >= 2
        if RANK[sev] < RANK[true] or req - got or (RANK[true] <= 1 and RANK[sev] >= 2):
            m.misses.append(
                f"{row['id']} {row['text']!r} ctx={row['context']} "
                f"want {true} {sorted(req)} got {sev} {sorted(got)}"
            )
    return m


AUTHOR_FILES = {
    "dev": SHARED / "triage-dev.jsonl",
    "older-and-caregivers": SHARED / "triage-corpora" / "older-and-caregivers.jsonl",
    "texting": SHARED / "triage-corpora" / "texting.jsonl",
    "spanish": SHARED / "triage-corpora" / "spanish.jsonl",
}


def author_corpora() -> tuple[dict[str, list[dict]], dict[str, list[dict]]] | None:
    """(scored rows per author, train-only rows per author), or None without ../shared.
    The team wrote both cases_heldout (scored) and cases_extra (training only)."""
    if not all(p.is_file() for p in AUTHOR_FILES.values()):
        return None
    authors = {name: load_corpus(p) for name, p in AUTHOR_FILES.items()}
    authors["team-heldout"] = load_corpus(HELDOUT_CORPUS)
    return authors, {"team-heldout": load_corpus(EXTRA_CORPUS)}
