from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from wallboard.pbx.errors import PbxError
from wallboard.pbx.times import PbxTime, check_report_range

HCM = PbxTime("Asia/Ho_Chi_Minh")


def ms(*args: int) -> int:
    return int(datetime(*args, tzinfo=UTC).timestamp() * 1000)


def test_parse_is_utc_plus_7() -> None:
    assert HCM.parse("2021-07-01 09:30:00") == ms(2021, 7, 1, 2, 30, 0)
    assert HCM.parse(" 2021-07-01 00:00:00 ") == ms(2021, 6, 30, 17, 0, 0)


@pytest.mark.parametrize(
    "text",
    ["", None, "garbage", "0000-00-00 00:00:00", "2021-07-01", "2021-13-01 00:00:00", 42, []],
)
def test_parse_garbage_is_none(text: object) -> None:
    assert HCM.parse(text) is None


def test_format_epoch_ms_and_aware_datetime() -> None:
    assert HCM.format(ms(2021, 6, 30, 17, 0, 0)) == "2021-07-01 00:00:00"
    assert HCM.format(ms(2021, 6, 30, 17, 0, 0) + 999) == "2021-07-01 00:00:00"
    plus_two = datetime(2021, 7, 1, 4, 30, tzinfo=timezone(timedelta(hours=2)))
    assert HCM.format(plus_two) == "2021-07-01 09:30:00"


def test_format_refuses_naive_datetime() -> None:
    with pytest.raises(ValueError):
        HCM.format(datetime(2021, 7, 1, 9, 30))


@settings(max_examples=200, deadline=None)
@given(st.integers(min_value=0, max_value=4_000_000_000))
def test_format_then_parse_round_trips_whole_seconds(seconds: int) -> None:
    assert HCM.parse(HCM.format(seconds * 1000)) == seconds * 1000


def test_day_start_is_local_midnight() -> None:
    # 23:59:59 local on the 10th is 16:59:59 UTC; one second later is the 11th.
    assert HCM.day_start_ms(ms(2024, 3, 10, 16, 59, 59)) == ms(2024, 3, 9, 17, 0, 0)
    assert HCM.day_start_ms(ms(2024, 3, 10, 17, 0, 0)) == ms(2024, 3, 10, 17, 0, 0)
    assert HCM.day_start_ms(ms(2024, 3, 10, 5, 0, 0)) == ms(2024, 3, 9, 17, 0, 0)


def test_day_window_right_after_midnight_still_has_end_after_start() -> None:
    midnight = ms(2024, 3, 10, 17, 0, 0)
    for now in (midnight, midnight + 1, midnight + 999):
        assert HCM.day_window(now) == ("2024-03-11 00:00:00", "2024-03-11 00:00:01")
    assert HCM.day_window(midnight + 1000) == ("2024-03-11 00:00:00", "2024-03-11 00:00:01")
    assert HCM.day_window(midnight + 2500) == ("2024-03-11 00:00:00", "2024-03-11 00:00:02")


def test_day_window_late_in_the_day() -> None:
    assert HCM.day_window(ms(2024, 3, 11, 16, 59, 59) + 999) == (
        "2024-03-11 00:00:00",
        "2024-03-11 23:59:59",
    )


@settings(max_examples=300, deadline=None)
@given(
    st.sampled_from(["Asia/Ho_Chi_Minh", "UTC", "America/New_York", "Europe/London"]),
    st.integers(min_value=0, max_value=4_000_000_000_000),
)
def test_day_window_always_satisfies_the_report_rules(tz_name: str, now_ms: int) -> None:
    start, end = PbxTime(tz_name).day_window(now_ms)
    check_report_range(start, end)


def test_report_range_accepts_up_to_24_hours() -> None:
    check_report_range("2021-06-01 00:00:00", "2021-06-01 23:59:59")
    check_report_range("2021-06-01 00:00:00", "2021-06-02 00:00:00")


@pytest.mark.parametrize(
    ("start", "end", "words"),
    [
        ("2021-06-01 23:59:59", "2021-06-01 00:00:00", "before"),  # the reference's swapped example
        ("2021-06-01 10:00:00", "2021-06-01 10:00:00", "before"),
        ("2021-06-01 00:00:00", "2021-06-02 00:00:01", "24 hours"),
        ("2021-6-1 0:0:0", "2021-06-01 10:00:00", "YYYY-MM-DD"),
        ("2021-06-01T00:00:00", "2021-06-01 10:00:00", "YYYY-MM-DD"),
        ("", "2021-06-01 10:00:00", "YYYY-MM-DD"),
    ],
)
def test_report_range_refused(start: str, end: str, words: str) -> None:
    with pytest.raises(PbxError) as caught:
        check_report_range(start, end)
    assert caught.value.code == "BAD_DATE_RANGE"
    assert words in caught.value.message
