"""The JSON the `checkin triage` command prints."""

from __future__ import annotations

import json

import pytest

from checkin.app.cli.triage import assessment_json, main


def test_it_prints_the_assessment_as_one_json_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["cant pee", "--context", "bladder_check"]) == 0
    out = capsys.readouterr().out
    assert out.count("\n") == 1
    d = json.loads(out)
    assert d["flags"] == ["bowel_bladder"] and d["severity"] == "emergency"
    assert d["context"] == "bladder_check"


def test_it_keeps_non_ascii_text_readable() -> None:
    d = assessment_json("me caí", None)
    assert "caí" in d and json.loads(d)["language"] == "es"


def test_it_defaults_to_the_general_context() -> None:
    assert json.loads(assessment_json("yes"))["severity"] == "none"


def test_it_says_which_layer_and_which_words_fired() -> None:
    d = json.loads(assessment_json("I can't pee and my incision is leaking", "general"))
    by_topic = {e["topic"]: e for e in d["evidence"]}
    assert by_topic["bowel_bladder"]["layer"] == "rules"
    assert "pee" in by_topic["bowel_bladder"]["words"]
    assert {"needs_review", "review_reason"} <= d.keys()
