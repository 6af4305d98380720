from __future__ import annotations

import pytest

from checkin.core.sms_encoding import non_gsm_positions, normalize_sms, segments


@pytest.mark.parametrize(
    ("text", "encoding", "count", "length"),
    [
        ("", "GSM-7", 0, 0),
        ("a" * 160, "GSM-7", 1, 160),
        ("a" * 161, "GSM-7", 2, 161),
        ("a" * 306, "GSM-7", 2, 306),
        ("a" * 307, "GSM-7", 3, 307),
        ("€", "GSM-7", 1, 2),
        ("a" * 159 + "€", "GSM-7", 2, 161),
        ("é ñ ü à Ñ Ü ¿ ¡", "GSM-7", 1, 15),
        ("á" * 70, "UCS-2", 1, 70),
        ("á" * 71, "UCS-2", 2, 71),
        ("á" * 134, "UCS-2", 2, 134),
        ("á" * 135, "UCS-2", 3, 135),
        ("😀", "UCS-2", 1, 2),
    ],
    ids=[
        "empty", "160-gsm", "161-gsm", "306-gsm", "307-gsm", "euro-2-septets",
        "euro-pushes-over", "spanish-gsm-letters", "70-ucs2", "71-ucs2", "134-ucs2", "135-ucs2",
        "emoji-surrogate-pair",
    ],
)  # fmt: skip
def test_it_counts_segments_by_the_real_rules(text: str, encoding: str, count: int, length: int) -> None:
    info = segments(text)
    assert (info.encoding, info.segments, info.length) == (encoding, count, length)


def test_it_switches_to_ucs2_for_one_emoji_and_names_it() -> None:
    info = segments("a" * 100 + "😀")
    assert info.encoding == "UCS-2"
    assert info.non_gsm_chars == ("😀",)
    assert info.length == 102  # the emoji is a surrogate pair


def test_it_does_not_split_an_escape_pair_across_segments() -> None:
    # 152 basic septets + '€' (2) = 154 in the first part: the pair must move to segment 2,
    # and 153 more septets then need a third segment.
    assert segments("a" * 152 + "€" + "a" * 152).segments == 3


def test_it_does_not_split_a_surrogate_pair_across_segments() -> None:
    assert segments("á" * 66 + "😀" + "á" * 66).segments == 3


def test_it_lists_positions_of_non_gsm_characters() -> None:
    assert non_gsm_positions("Hi José, ¿qué tal? ‘ok’") == [(19, "‘"), (22, "’")]


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("  hi \n", "hi"),
        ("a\u00a0b", "a b"),
        ("\u2018x\u2019 \u201cy\u201d", "'x' \"y\""),
        ("a\u2013b\u2014c", "a-b-c"),
        ("wait\u2026", "wait..."),
        ("a\u200bb", "ab"),
        ("line \r\nnext", "line\nnext"),
    ],
    ids=["strip", "nbsp", "curly-quotes", "dashes", "ellipsis", "zero-width", "crlf"],
)
def test_it_normalizes_lookalikes_to_gsm7(raw: str, expected: str) -> None:
    assert normalize_sms(raw) == expected


def test_it_keeps_a_normalized_text_gsm7() -> None:
    assert segments(normalize_sms("It\u2019s\u00a0OK \u2013 really\u2026")).encoding == "GSM-7"
