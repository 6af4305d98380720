from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from checkin.core.window import in_window, local_instant, next_allowed, window_end

DAYTIME = (time(9), time(20))
NIGHT_OK = (time(0), time(23, 59))
NY = ZoneInfo("America/New_York")


def utc(y: int, m: int, d: int, hh: int = 0, mm: int = 0) -> datetime:
    return datetime(y, m, d, hh, mm, tzinfo=UTC)


# Expected instants are written as UTC from the known offsets, not computed with zoneinfo.
@pytest.mark.parametrize(
    ("zone", "day", "wall", "expected_utc", "expected_local"),
    [
        # spring-forward gaps: the wall time moves forward by the gap length
        ("America/New_York", date(2026, 3, 8), time(2, 30), utc(2026, 3, 8, 7, 30), time(3, 30)),
        ("Europe/London", date(2026, 3, 29), time(1, 30), utc(2026, 3, 29, 1, 30), time(2, 30)),
        ("Australia/Sydney", date(2026, 10, 4), time(2, 30), utc(2026, 10, 3, 16, 30), time(3, 30)),
        # Lord Howe springs forward by 30 minutes only
        ("Australia/Lord_Howe", date(2026, 10, 4), time(2, 15), utc(2026, 10, 3, 15, 45), time(2, 45)),
        # fall-back folds: the first occurrence (the pre-transition, summer offset)
        ("America/New_York", date(2026, 11, 1), time(1, 30), utc(2026, 11, 1, 5, 30), time(1, 30)),
        ("Europe/London", date(2026, 10, 25), time(1, 30), utc(2026, 10, 25, 0, 30), time(1, 30)),
        ("Australia/Sydney", date(2026, 4, 5), time(2, 30), utc(2026, 4, 4, 15, 30), time(2, 30)),
        ("Australia/Lord_Howe", date(2026, 4, 5), time(1, 45), utc(2026, 4, 4, 14, 45), time(1, 45)),
        # ordinary wall times
        ("Asia/Kathmandu", date(2026, 3, 8), time(10), utc(2026, 3, 8, 4, 15), time(10)),
        ("UTC", date(2026, 3, 8), time(10), utc(2026, 3, 8, 10), time(10)),
    ],
    ids=[
        "new-york-gap",
        "london-gap",
        "sydney-gap",
        "lord-howe-30min-gap",
        "new-york-fold",
        "london-fold",
        "sydney-fold",
        "lord-howe-30min-fold",
        "kathmandu-plain",
        "utc-plain",
    ],
)
def test_it_maps_wall_times_by_the_documented_dst_rule(
    zone: str, day: date, wall: time, expected_utc: datetime, expected_local: time
) -> None:
    got = local_instant(day, wall, ZoneInfo(zone))
    assert got == expected_utc
    assert got.tzinfo is UTC
    assert got.astimezone(ZoneInfo(zone)).time() == expected_local


def test_it_takes_the_first_occurrence_in_a_fold() -> None:
    got = local_instant(date(2026, 11, 1), time(1, 30), NY)
    assert got.astimezone(NY).utcoffset() == timedelta(hours=-4)


@pytest.mark.parametrize(
    ("instant", "expected"),
    [
        (utc(2026, 1, 15, 13, 59), False),  # 08:59 EST
        (utc(2026, 1, 15, 14, 0), True),  # 09:00 EST: start is inclusive
        (utc(2026, 1, 16, 0, 59), True),  # 19:59 EST
        (utc(2026, 1, 16, 1, 0), False),  # 20:00 EST: end is exclusive
        (utc(2026, 7, 15, 13, 0), True),  # 09:00 EDT: the window follows the local clock
        (utc(2026, 7, 16, 0, 0), False),  # 20:00 EDT
    ],
    ids=["before-start", "at-start", "before-end", "at-end", "summer-start", "summer-end"],
)
def test_it_tests_window_membership_on_the_local_clock(instant: datetime, expected: bool) -> None:
    assert in_window(instant, DAYTIME, NY) is expected


@pytest.mark.parametrize(
    ("instant", "expected"),
    [
        (utc(2026, 1, 15, 15, 0), utc(2026, 1, 15, 15, 0)),  # 10:00 inside: unchanged
        (utc(2026, 1, 15, 12, 0), utc(2026, 1, 15, 14, 0)),  # 07:00 → 09:00 same day
        (utc(2026, 1, 16, 2, 0), utc(2026, 1, 16, 14, 0)),  # 21:00 → 09:00 next day
        (utc(2026, 1, 16, 1, 0), utc(2026, 1, 16, 14, 0)),  # 20:00 (end) → next day
        (utc(2026, 3, 8, 2, 0), utc(2026, 3, 8, 13, 0)),  # 21:00 EST Mar 7 → 09:00 EDT Mar 8
        (utc(2026, 11, 1, 1, 0), utc(2026, 11, 1, 14, 0)),  # 21:00 EDT Oct 31 → 09:00 EST
    ],
    ids=[
        "inside",
        "before-start",
        "after-end",
        "at-end",
        "overnight-into-spring-forward",
        "overnight-into-fall-back",
    ],
)
def test_it_moves_to_the_next_allowed_instant(instant: datetime, expected: datetime) -> None:
    assert next_allowed(instant, DAYTIME, NY) == expected


def test_it_opens_a_window_whose_start_is_skipped_at_the_end_of_the_gap() -> None:
    # 02:30 does not exist on 2026-03-08; the clock reads 03:00 EDT (07:00Z) right after 01:59 EST
    got = next_allowed(utc(2026, 3, 8, 5), (time(2, 30), time(23)), NY)
    assert got == utc(2026, 3, 8, 7)


def test_it_opens_a_window_whose_start_repeats_at_the_second_occurrence() -> None:
    # 01:30 happens at 05:30Z (EDT) and again at 06:30Z (EST); opening at the first would let
    # the repeated 01:00-01:30 hour, before the start on the patient's clock, inside.
    window = (time(1, 30), time(23))
    assert next_allowed(utc(2026, 11, 1, 4), window, NY) == utc(2026, 11, 1, 6, 30)
    assert not in_window(utc(2026, 11, 1, 6, 10), window, NY)  # 01:10 EST


def test_it_closes_a_window_whose_end_repeats_at_the_first_occurrence() -> None:
    window = (time(0), time(1, 30))
    assert window_end(utc(2026, 11, 1, 4, 10), window, NY) == utc(2026, 11, 1, 5, 30)
    # The repeated hour (01:00-01:30 EST) does not reopen a window that has closed.
    assert not in_window(utc(2026, 11, 1, 6, 10), window, NY)
    assert next_allowed(utc(2026, 11, 1, 6, 10), window, NY) == utc(2026, 11, 2, 5)


def test_it_closes_a_window_whose_end_is_skipped_at_the_end_of_the_gap() -> None:
    assert window_end(utc(2026, 3, 8, 5), (time(0), time(2, 30)), NY) == utc(2026, 3, 8, 7)


def test_it_skips_a_day_whose_window_the_gap_swallows() -> None:
    window = (time(2, 10), time(2, 40))
    got = next_allowed(utc(2026, 3, 8, 5), window, NY)  # 00:00 EST on the gap day
    assert got == utc(2026, 3, 9, 6, 10)  # 02:10 EDT the next day


def test_it_allows_night_hours_when_the_window_does() -> None:
    assert in_window(utc(2026, 1, 15, 8), NIGHT_OK, NY)  # 03:00 EST
    assert not in_window(utc(2026, 1, 16, 4, 59), NIGHT_OK, NY)  # 23:59 EST: end exclusive


@pytest.mark.parametrize(
    ("instant", "expected"),
    [
        (utc(2026, 1, 15, 15), utc(2026, 1, 16, 1)),  # 10:00 EST → 20:00 EST
        (utc(2026, 1, 15, 12), utc(2026, 1, 16, 1)),  # 07:00, before the window: today's end
        (utc(2026, 1, 16, 2), utc(2026, 1, 16, 1)),  # 21:00, after it: today's end (the past)
        (utc(2026, 3, 8, 14), utc(2026, 3, 9, 0)),  # 10:00 EDT on the gap day → 20:00 EDT
        (utc(2026, 11, 1, 15), utc(2026, 11, 2, 1)),  # 10:00 EST on the fold day → 20:00 EST
    ],
    ids=["inside", "before", "after", "spring-forward-day", "fall-back-day"],
)
def test_it_finds_the_end_of_that_local_days_window(instant: datetime, expected: datetime) -> None:
    assert window_end(instant, DAYTIME, NY) == expected


def test_it_returns_utc_aware_datetimes() -> None:
    berlin = datetime(2026, 1, 15, 7, tzinfo=ZoneInfo("Europe/Berlin"))
    for got in (next_allowed(berlin, DAYTIME, NY), window_end(berlin, DAYTIME, NY)):
        assert got.tzinfo is UTC


def test_it_rejects_a_window_that_does_not_run_forward() -> None:
    with pytest.raises(ValueError, match="before its end"):
        next_allowed(utc(2026, 1, 15, 12), (time(20), time(9)), NY)


def test_it_rejects_a_naive_instant() -> None:
    with pytest.raises(ValueError, match="aware"):
        in_window(datetime(2026, 1, 15, 12), DAYTIME, NY)
