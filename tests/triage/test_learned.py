"""The learned layer: artefact validation, scoring, and the rules' scopes on its candidates.

Behaviour is tested with small hand-written models (so each test states exactly what the
model believes); the packaged artefact is tested for what it must carry."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import pytest

from checkin.core.triage import assess
from checkin.core.triage.assess import assess_with
from checkin.core.triage.learned import FORMAT, LearnedModel, ModelError, from_dict, load_packaged

W = "\x01"  # word-gram prefix (features.WORD_PREFIX)


def model(
    weights: dict[str, list[float | int]],
    *,
    bias: float = -3.0,
    flag_at: float = 0.5,
    label: str = "self_harm",
) -> LearnedModel:
    """A one-label model: the named word grams push it up."""
    doc: dict[str, Any] = {
        "format": FORMAT,
        "labels": [label],
        "bias": [bias],
        "flag_at": [flag_at],
        "review_at": [0.2],
        "weights": weights,
    }
    return from_dict(doc)


# a wording the rules do not know, so only the learned layer can read it
FINISHING = model({W + "finishing": [0, 60.0], W + "finishing it": [0, 60.0]})


def test_a_confident_candidate_the_rules_missed_becomes_a_flag_with_its_words() -> None:
    a = assess_with("I keep thinking about finishing it", None, FINISHING)
    assert {f.value for f in a.flags} == {"self_harm"} and a.severity.value == "emergency"
    (ev,) = [e for e in a.evidence if e.topic == "self_harm"]
    assert ev.layer == "learned" and ev.words == "finishing"


def test_without_the_learned_layer_the_same_reply_is_not_flagged() -> None:
    assert assess_with("I keep thinking about finishing it", None, None).flags == frozenset()


@pytest.mark.parametrize(
    "text",
    [
        "no thoughts of finishing it",  # negated right before the words
        "my friend keeps talking about finishing it",  # someone else
    ],
)
def test_the_rules_scopes_apply_to_learned_candidates(text: str) -> None:
    a = assess_with(text, None, FINISHING)
    assert a.flags == frozenset(), a.to_dict()


def test_a_one_word_reply_goes_to_a_person_not_to_a_flag() -> None:
    a = assess_with("finishing", None, FINISHING)
    assert a.flags == frozenset()
    assert a.needs_review and "self_harm" in a.review_reason
    assert {f.value for f in assess_with("finishing today", None, FINISHING).flags} == {"self_harm"}


def test_a_candidate_in_the_uncertainty_band_goes_to_a_person_not_to_a_flag() -> None:
    unsure = model({W + "zorblax": [0, 0.1]}, bias=0.0, flag_at=0.9)  # p just above 0.5
    a = assess_with("the zorblax again", None, unsure)
    assert a.flags == frozenset()
    assert a.needs_review and "self_harm" in a.review_reason


def test_the_learned_layer_never_overrides_a_topic_the_rules_decided() -> None:
    always = model({W + "fever": [0, 90.0]}, label="fever")
    a = assess_with("no fever today", None, always)
    assert a.flags == frozenset(), a.to_dict()


@pytest.mark.parametrize(
    ("doc", "key"),
    [
        ({"format": "other"}, "format"),
        ({"format": FORMAT, "labels": []}, "labels"),
        ({"format": FORMAT, "labels": ["fever"], "bias": [1, 2]}, "bias"),
        (
            {
                "format": FORMAT,
                "labels": ["fever"],
                "bias": [0],
                "flag_at": [0.5],
                "review_at": [0.2],
                "weights": {"ab": [3, 1.0]},
            },
            "weights",
        ),
    ],
)
def test_a_malformed_artefact_is_rejected_naming_the_key(doc: dict[str, Any], key: str) -> None:
    with pytest.raises(ModelError, match=key):
        from_dict(doc)


def test_the_packaged_model_says_what_it_learned_from_and_how_it_generalizes() -> None:
    m = load_packaged()
    assert m is not None, "checkin/core/triage/model/learned.json is missing"
    meta = m.meta
    assert len(meta["trained_on"]["sha256"]) == 64 and meta["trained_on"]["replies"] > 1000
    assert meta["version"] >= 1
    assert set(meta["folds"]["folds"]) >= {"dev", "older-and-caregivers", "texting", "spanish"}
    assert meta["folds"]["worst"]["emergency_recall"] is not None


def test_the_product_scores_without_scikit_learn() -> None:
    code = (
        "import sys; import checkin.triage as t; t.assess('pee wont come out', 'general');"
        "bad = [m for m in sys.modules if m.split('.')[0] in ('sklearn', 'scipy', 'numpy')];"
        "assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_assess_uses_the_packaged_model() -> None:
    m = load_packaged()
    text = "I keep thinking about finishing it all"
    assert assess(text, None) == assess_with(text, None, m)


def test_training_is_reproducible() -> None:
    pytest.importorskip("sklearn", reason="training needs the dev extra (scikit-learn)")
    from checkin.core.triage.training import fit

    rows = [
        {"text": t, "flags": f, "acceptable": []}
        for t, f in [
            ("cant pee at all", ["bowel_bladder"]),
            ("peeing fine", []),
            ("I fell in the shower", ["fall"]),
            ("no falls", []),
        ]
        * 3
    ]
    a = fit(rows, lexicon=0)
    b = fit(rows, lexicon=0)
    assert a == b
    assert a["meta"]["trained_on"]["replies"] == 12
