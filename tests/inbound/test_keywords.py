"""Carrier keywords: whole-message only, after normalization; free-text opt-outs are candidates."""

from __future__ import annotations

import pytest

from checkin.core.keywords import Keyword, classify, normalize

STOP_FORMS = [
    "STOP",
    "stop",
    " stop ",
    "Stop.",
    "STOP!",
    "STOPALL",
    "STOP ALL",
    "UNSUBSCRIBE",
    "CANCEL",
    "END",
    "QUIT",
    "REVOKE",
    "OPTOUT",
    "opt out",
    "ＳＴＯＰ",
    "ST\u200bOP",
    "\u202estop",
    "stop 🛑",
    "ALTO",
    "¡Alto!",
    "PARAR",
    "DETENER",
    "CANCELAR",
    "Arrêt",
]
START_FORMS = ["START", "start.", "UNSTOP", "INICIO", "COMENZAR", "ＳＴＡＲＴ"]
HELP_FORMS = ["HELP", "help?", "INFO", "AYUDA", "Información", "informacion"]


@pytest.mark.parametrize("text", STOP_FORMS)
def test_it_recognizes_every_stop_form(text: str) -> None:
    assert classify(text).keyword == Keyword.STOP


@pytest.mark.parametrize("text", START_FORMS)
def test_it_recognizes_every_start_form(text: str) -> None:
    assert classify(text).keyword == Keyword.START


@pytest.mark.parametrize("text", HELP_FORMS)
def test_it_recognizes_every_help_form(text: str) -> None:
    assert classify(text).keyword == Keyword.HELP


@pytest.mark.parametrize(
    ("text", "language"), [("AYUDA", "es"), ("ALTO", "es"), ("INICIO", "es"), ("HELP", "en")]
)
def test_it_reports_the_keyword_language(text: str, language: str) -> None:
    assert classify(text).language == language


@pytest.mark.parametrize("text", ["yes", "YES", "Yes.", "sí", "SI"])
def test_it_treats_yes_as_opt_in_only_when_opted_out(text: str) -> None:
    assert classify(text, opted_out=False).keyword is None
    assert classify(text, opted_out=True).keyword == Keyword.START


@pytest.mark.parametrize(
    "text",
    [
        "stop texting me",
        "Please stop sending these messages",
        "don't text me anymore",
        "no more texts please",
        "unsubscribe me",
        "remove me from this list",
        "dejen de mandarme mensajes",
        "no me manden más",
        "ya no quiero recibir mensajes",
    ],
)
def test_it_marks_free_text_opt_outs_as_candidates_not_keywords(text: str) -> None:
    c = classify(text)
    assert c.keyword is None
    assert c.optout_candidate


@pytest.mark.parametrize(
    "text",
    [
        "I can't stop throwing up",
        "the bleeding won't stop",
        "stop",
        "no fever",
        "pain is 4",
        "end of the day it hurts",
        "help me I can't breathe",
        "I need help with my dressing",
        "cancel my appointment on friday",
    ],
)
def test_it_leaves_content_alone(text: str) -> None:
    c = classify(text)
    if text == "stop":
        assert c.keyword == Keyword.STOP
        return
    assert c.keyword is None
    assert not c.optout_candidate


def test_it_normalizes_width_case_accents_format_characters_and_edges() -> None:
    assert normalize("  ＨＥＬＰ\u200b!! ") == "help"
    assert normalize("«Información»") == "informacion"
    assert normalize("stop\x00") == "stop"
    assert normalize("a   b") == "a b"
