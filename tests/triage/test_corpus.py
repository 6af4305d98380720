"""Regression floors over every labelled corpus (same arithmetic as the project's scorer).

The team's own sets (cases_extra, cases_heldout) always run.  The dev set and the three shared
author corpora live in ``../shared`` beside the checkout ($CHECKIN_SHARED elsewhere): without
it these tests skip with the reason, except under CI=true, where a missing corpus fails.

The floors are the figures the product reached when they were set (rules + the packaged
learned layer; the learned layer has seen these replies, so they guard against regressions,
they do not measure generalization: ``python -m tests.benchmarks.triage_folds`` does).  Raise
them when the product improves; never lower them.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.shared_data import unavailable

from .corpus_metrics import AUTHOR_FILES, EXTRA_CORPUS, HELDOUT_CORPUS, load_corpus, score

# corpus -> (emergency recall >=, required-flag recall >=, false alarms <=)
FLOORS: dict[str, tuple[float, float, float]] = {
    "team-extra": (1.0, 0.95, 0.05),
    "team-heldout": (1.0, 0.95, 0.05),
    "dev": (1.0, 0.95, 0.05),
    # reached 2026-12-01 (issue 16, second pass): 1.0 / 0.9684 / 0.0853, 1.0 / 0.9834 / 0.039,
    # 1.0 / 0.9896 / 0.039 (the learned layer no longer flags an urgent topic from a topic
    # word alone, which the folds chose: in-sample recall gives a little, false alarms halve)
    "older-and-caregivers": (1.0, 0.96, 0.086),
    "texting": (1.0, 0.98, 0.04),
    "spanish": (1.0, 0.98, 0.04),
}
PATHS: dict[str, Path] = {"team-extra": EXTRA_CORPUS, "team-heldout": HELDOUT_CORPUS, **AUTHOR_FILES}


def _rows(name: str) -> list[dict]:
    path = PATHS[name]
    if not path.is_file():
        # Skips on a plain clone, fails under CI=true (one rule for all: tests/shared_data.py).
        unavailable(f"the {name} triage corpus", f"{path} not found")
    return load_corpus(path)


@pytest.fixture(scope="module", params=sorted(FLOORS))
def corpus(request: pytest.FixtureRequest) -> tuple[str, object]:
    return request.param, score(_rows(request.param))


def test_it_catches_the_emergencies(corpus) -> None:
    name, m = corpus
    assert m.emergency_recall >= FLOORS[name][0], "\n".join(m.misses)


def test_it_finds_the_required_flags(corpus) -> None:
    name, m = corpus
    assert m.flag_recall >= FLOORS[name][1], "\n".join(m.misses)


def test_it_rarely_cries_wolf(corpus) -> None:
    name, m = corpus
    assert m.false_alarm_rate <= FLOORS[name][2], "\n".join(m.misses)


@pytest.mark.parametrize("path", [EXTRA_CORPUS, HELDOUT_CORPUS])
def test_it_reads_corpora_with_the_required_fields(path: Path) -> None:
    rows = load_corpus(path)
    assert len(rows) >= 150
    assert {r["severity"] for r in rows} == {"none", "watch", "urgent", "emergency"}
    assert len({r["id"] for r in rows}) == len(rows)
