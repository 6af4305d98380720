"""Targets over the labelled corpora (same arithmetic as ../shared/tools/triage_eval.py):
emergency recall 100 %, required-flag recall >= 95 %, false alarms <= 5 %."""

from __future__ import annotations

from pathlib import Path

import pytest

from .corpus_metrics import (
    EXTRA_CORPUS,
    HELDOUT_CORPUS,
    dev_corpus_path,
    load_corpus,
    score,
)

EMERGENCY_RECALL = 1.0
FLAG_RECALL = 0.95
FALSE_ALARMS = 0.05


def _corpus(name: str) -> Path:
    path = {"dev": dev_corpus_path(), "extra": EXTRA_CORPUS, "heldout": HELDOUT_CORPUS}[name]
    # Never skip: a missing corpus must fail (in CI, shared/ is laid beside the checkout).
    assert path.is_file(), (
        f"triage corpus {path} is missing; set CHECKIN_TRIAGE_CORPUS to a labelled JSONL file"
    )
    return path


@pytest.fixture(scope="module", params=["dev", "extra", "heldout"])
def metrics(request: pytest.FixtureRequest):
    return score(load_corpus(_corpus(request.param)))


def test_it_catches_every_emergency(metrics) -> None:
    assert metrics.emergency_recall >= EMERGENCY_RECALL, "\n".join(metrics.misses)


def test_it_finds_the_required_flags(metrics) -> None:
    assert metrics.flag_recall >= FLAG_RECALL, "\n".join(metrics.misses)


def test_it_rarely_cries_wolf(metrics) -> None:
    assert metrics.false_alarm_rate <= FALSE_ALARMS, "\n".join(metrics.misses)


@pytest.mark.parametrize("path", [EXTRA_CORPUS, HELDOUT_CORPUS])
def test_it_reads_corpora_with_the_required_fields(path: Path) -> None:
    rows = load_corpus(path)
    assert len(rows) >= 150
    assert {r["severity"] for r in rows} == {"none", "watch", "urgent", "emergency"}
    assert len({r["id"] for r in rows}) == len(rows)
