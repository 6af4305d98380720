"""The lexicon files load, and a malformed one fails loudly naming the file and key."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from checkin.core.triage import Flag
from checkin.core.triage.lexicon import LexiconError, compile_lexicon, load, validate


def test_it_loads_both_packaged_lexicons() -> None:
    lex = load()
    assert lex.files == ("checkin/core/triage/lexicon/en.yaml", "checkin/core/triage/lexicon/es.yaml")
    assert set(lex.options) == {f.value for f in Flag}


def _base() -> dict[str, Any]:
    return {"language": "en", "flags": {"fever": {"phrases": ["fever"]}}}


@pytest.mark.parametrize(
    ("patch", "key"),
    [
        ({"colour": 1}, "colour"),
        ({"language": "fr"}, "language"),
        ({"flags": {"fevr": {"phrases": ["x"]}}}, "flags.fevr"),
        ({"flags": {"fever": {"phrases": "fever"}}}, "flags.fever.phrases"),
        ({"flags": {"fever": {"phrases": ["fever", True]}}}, "flags.fever.phrases[1]"),
        ({"flags": {"fever": {"phrasse": ["x"]}}}, "flags.fever.phrasse"),
        ({"flags": {"fever": {"patterns": ["(unclosed"]}}}, "flags.fever.patterns[0]"),
        ({"flags": {"fever": {"combos": [{"all": ["set_without_at"]}]}}}, "flags.fever.combos[0].all[0]"),
        (
            {"flags": {"fever": {"combos": [{"all": [["x"]], "context": ["nowhere"]}]}}},
            "flags.fever.combos[0].context",
        ),
        ({"cues": {"negatoin": ["no"]}}, "cues.negatoin"),
        ({"flags": {"fall": {"reading_governed": ["x"]}}}, "flags.fall.reading_governed"),
    ],
)
def test_it_names_the_file_and_key_of_a_malformed_lexicon(patch, key) -> None:
    doc = _base() | patch
    with pytest.raises(LexiconError) as exc:
        validate("custom.yaml", doc)
    assert exc.value.file == "custom.yaml" and exc.value.key == key
    assert str(exc.value).startswith(f"custom.yaml: {key}:")


def test_it_rejects_a_reference_to_an_unknown_set() -> None:
    doc = _base() | {"flags": {"fever": {"combos": [{"all": ["@nope"]}]}}}
    with pytest.raises(LexiconError, match="unknown set '@nope'"):
        compile_lexicon([validate("custom.yaml", doc)])


def test_it_reads_yaml_booleans_as_an_error_not_a_word() -> None:
    doc = yaml.safe_load("language: en\ncues:\n  negation: [no, not]\n")
    with pytest.raises(LexiconError, match=r"cues.negation\[0\]"):
        validate("custom.yaml", doc)


def test_it_lets_a_clinician_add_a_phrase_without_code() -> None:
    doc = _base() | {
        "flags": {"fever": {"phrases": ["fever", "hot as a furnace"]}},
        "cues": {"negation": ["no"]},
    }
    lex = compile_lexicon([validate("custom.yaml", doc)])
    node = lex.trie
    for w in ("hot", "as", "a", "furnace"):
        node = node[w]
    assert node[""] == frozenset({"f:fever"})
