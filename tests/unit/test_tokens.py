"""Signed link tokens: stamped with the service clock, judged against the same clock."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from checkin.tokens import CHECKIN_SALT, InvalidToken, checkin_link, make_token, read_token

SECRET = "unit-test-secret-0123456789"
SIGNED = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def test_it_judges_age_from_the_time_the_token_says_it_was_signed() -> None:
    token = make_token(SECRET, CHECKIN_SALT, {"o": 7}, now=SIGNED)
    assert read_token(
        SECRET, CHECKIN_SALT, token, 3600, now=(SIGNED + timedelta(minutes=59)).timestamp()
    ) == {"o": 7}
    with pytest.raises(InvalidToken) as e:
        read_token(SECRET, CHECKIN_SALT, token, 3600, now=(SIGNED + timedelta(minutes=61)).timestamp())
    assert e.value.expired


def test_it_stamps_check_in_links_with_the_given_time() -> None:
    link = checkin_link("https://c.example.org/", SECRET, 42, now=SIGNED)
    assert link.startswith("https://c.example.org/c/")
    token = link.rsplit("/", 1)[1]
    with pytest.raises(InvalidToken):
        read_token(SECRET, CHECKIN_SALT, token, 60, now=(SIGNED + timedelta(minutes=5)).timestamp())


def test_it_refuses_a_token_signed_with_another_secret() -> None:
    token = make_token("another-secret-0123456789", CHECKIN_SALT, {"o": 7}, now=SIGNED)
    with pytest.raises(InvalidToken) as e:
        read_token(SECRET, CHECKIN_SALT, token, 3600, now=SIGNED.timestamp())
    assert not e.value.expired
