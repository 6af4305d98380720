"""The shipped learned layer is trained on today's corpora, and its leave-one-author-out
figures (recorded by scripts/train_triage.py) stay at or above the floors reached.

The floors are the worst left-out author's figures when they were set; raise them when the
product improves, never lower them.  Skips without ../shared (fails under CI=true)."""

from __future__ import annotations

import os

import pytest

from checkin.core.triage.learned import load_packaged
from checkin.core.triage.training import fingerprint

from .corpus_metrics import author_corpora

# reached 2026-12-01 (worst left-out author): 0.8413, 0.776, 0.1848
WORST_EMERGENCY_RECALL = 0.84
WORST_FLAG_RECALL = 0.77
WORST_FALSE_ALARMS = 0.185


@pytest.fixture(scope="module")
def meta() -> dict:
    loaded = author_corpora()
    if loaded is None:
        if os.environ.get("CI") == "true":
            pytest.fail("../shared (the labelled author corpora) is missing under CI=true")
        pytest.skip("../shared (the labelled author corpora) is absent beside this checkout")
    model = load_packaged()
    assert model is not None
    authors, train_only = loaded
    rows = [r for rs in authors.values() for r in rs] + [r for rs in train_only.values() for r in rs]
    return {"model": model.meta, "sha256": fingerprint(rows)}


def test_the_packaged_model_was_trained_on_todays_corpora(meta: dict) -> None:
    assert meta["model"]["trained_on"]["sha256"] == meta["sha256"], (
        "the corpora changed since the model was trained: run scripts/train_triage.py"
    )


def test_every_author_was_left_out_once(meta: dict) -> None:
    folds = meta["model"]["folds"]["folds"]
    assert set(folds) == {"dev", "older-and-caregivers", "texting", "spanish", "team-heldout"}


def test_the_worst_left_out_author_stays_at_the_floors(meta: dict) -> None:
    worst = meta["model"]["folds"]["worst"]
    assert worst["emergency_recall"] >= WORST_EMERGENCY_RECALL, worst
    assert worst["flag_recall"] >= WORST_FLAG_RECALL, worst
    assert worst["false_alarm_rate"] <= WORST_FALSE_ALARMS, worst
