from __future__ import annotations

import json
from datetime import UTC, date, datetime

import pytest

from poller.status import parse_hms, parse_status

# Verbatim results from ../shared/reference/timeman-status.md.
PAUSED = json.loads(
    '{"STATUS":"PAUSED","TIME_START":"2024-07-30T07:10:51+00:00","TIME_FINISH":"2024-07-30T08:32:00+00:00",'
    '"DURATION":"00:00:00","TIME_LEAKS":"00:09:59","ACTIVE":false,"IP_OPEN":"","IP_CLOSE":"","LAT_OPEN":0,'
    '"LON_OPEN":0,"LAT_CLOSE":0,"LON_CLOSE":0,"TZ_OFFSET":10800}'
)
OPENED = json.loads(
    '{"STATUS":"OPENED","TIME_START":"2024-07-30T07:10:51+00:00","TIME_FINISH":null,"DURATION":"00:00:00",'
    '"TIME_LEAKS":"00:09:59","ACTIVE":false,"IP_OPEN":"","IP_CLOSE":"93.125.42.204","LAT_OPEN":0,"LON_OPEN":0,'
    '"LAT_CLOSE":0,"LON_CLOSE":0,"TZ_OFFSET":10800}'
)
EXPIRED = json.loads(
    '{"STATUS":"EXPIRED","TIME_START":"2025-03-27T08:00:01+02:00","TIME_FINISH":null,"DURATION":"00:00:00",'
    '"TIME_LEAKS":"00:17:53","ACTIVE":false,"IP_OPEN":"","IP_CLOSE":"","LAT_OPEN":53.548841000000003,'
    '"LON_OPEN":9.9872739999999993,"LAT_CLOSE":0,"LON_CLOSE":0,"TZ_OFFSET":7200,'
    '"TIME_FINISH_DEFAULT":"2025-03-27T17:00:00+02:00"}'
)
CLOSED = json.loads(
    '{"STATUS":"CLOSED","TIME_START":"2025-03-27T08:00:01+02:00","TIME_FINISH":"2025-03-27T19:00:01+02:00",'
    '"DURATION":"09:37:04","TIME_LEAKS":"01:22:56","ACTIVE":false,"IP_OPEN":"","IP_CLOSE":"83.219.151.30",'
    '"LAT_OPEN":53.548841000000003,"LON_OPEN":9.9872739999999993,"LAT_CLOSE":53.548841000000003,'
    '"LON_CLOSE":9.9872739999999993,"TZ_OFFSET":7200}'
)


def test_the_paused_answer_keeps_the_pause_moment_as_finish() -> None:
    parsed = parse_status(PAUSED)
    assert parsed.status == "PAUSED"
    assert parsed.time_start == datetime(2024, 7, 30, 7, 10, 51, tzinfo=UTC)
    assert parsed.time_finish == datetime(2024, 7, 30, 8, 32, tzinfo=UTC)
    assert parsed.duration_seconds == 0
    assert parsed.time_leaks_seconds == 9 * 60 + 59
    assert parsed.active is False
    assert parsed.tz_offset == 10800
    assert parsed.work_date == date(2024, 7, 30)
    assert (parsed.ip_open, parsed.ip_close) == ("", "")
    assert (parsed.lat_open, parsed.lon_open, parsed.lat_close, parsed.lon_close) == (0.0, 0.0, 0.0, 0.0)
    assert parsed.warnings == ()
    assert parsed.raw == PAUSED


def test_the_opened_answer_has_no_finish() -> None:
    parsed = parse_status(OPENED)
    assert parsed.status == "OPENED"
    assert parsed.time_finish is None
    assert parsed.ip_close == "93.125.42.204"
    assert parsed.warnings == ()


def test_the_expired_answer_converts_to_utc_and_keeps_the_suggested_end() -> None:
    parsed = parse_status(EXPIRED)
    assert parsed.status == "EXPIRED"
    assert parsed.time_start == datetime(2025, 3, 27, 6, 0, 1, tzinfo=UTC)
    assert parsed.time_finish_default == datetime(2025, 3, 27, 15, 0, tzinfo=UTC)
    assert parsed.time_leaks_seconds == 17 * 60 + 53
    assert parsed.lat_open == pytest.approx(53.548841)
    assert parsed.work_date == date(2025, 3, 27)


def test_the_closed_answer_gives_duration_in_seconds() -> None:
    parsed = parse_status(CLOSED)
    assert parsed.status == "CLOSED"
    assert parsed.time_finish == datetime(2025, 3, 27, 17, 0, 1, tzinfo=UTC)
    assert parsed.duration_seconds == 9 * 3600 + 37 * 60 + 4
    assert parsed.time_leaks_seconds == 3600 + 22 * 60 + 56


def test_a_user_without_records_is_closed_with_nulls() -> None:
    parsed = parse_status({"STATUS": "CLOSED"})
    assert parsed.status == "CLOSED"
    assert parsed.time_start is None and parsed.work_date is None and parsed.duration_seconds is None
    assert parsed.warnings == ()


def test_work_date_is_the_local_date_from_tz_offset_even_when_the_suffix_says_utc() -> None:
    parsed = parse_status({"STATUS": "OPENED", "TIME_START": "2024-07-30T22:30:00+00:00", "TZ_OFFSET": 10800})
    assert parsed.work_date == date(2024, 7, 31)
    west = parse_status({"STATUS": "OPENED", "TIME_START": "2024-07-30T02:00:00+00:00", "TZ_OFFSET": -18000})
    assert west.work_date == date(2024, 7, 29)


def test_hours_are_not_capped_at_24() -> None:
    assert parse_hms("27:05:09") == 27 * 3600 + 5 * 60 + 9
    assert parse_hms("123:00:00") == 123 * 3600


def test_an_unknown_status_is_kept_with_a_warning() -> None:
    parsed = parse_status({"STATUS": "HOLIDAY"})
    assert parsed.status == "HOLIDAY"
    assert any("HOLIDAY" in w for w in parsed.warnings)


@pytest.mark.parametrize(
    ("field", "value", "attribute"),
    [
        ("DURATION", None, "duration_seconds"),
        ("DURATION", "9h", "duration_seconds"),
        ("TIME_LEAKS", 17, "time_leaks_seconds"),
        ("TZ_OFFSET", "abc", "tz_offset"),
        ("TIME_START", "yesterday", "time_start"),
        ("TIME_START", "2024-07-30T07:10:51", "time_start"),
        ("ACTIVE", "maybe", "active"),
        ("LAT_OPEN", "north", "lat_open"),
        ("IP_OPEN", 42, "ip_open"),
    ],
)
def test_a_wrong_type_becomes_null_with_a_warning(field: str, value: object, attribute: str) -> None:
    parsed = parse_status({**CLOSED, field: value})
    assert getattr(parsed, attribute) is None
    if value is not None:
        assert any(field in warning for warning in parsed.warnings)
    assert parsed.raw[field] == value


def test_a_result_that_is_not_an_object_is_kept_raw() -> None:
    parsed = parse_status(["odd"])
    assert parsed.status is None
    assert parsed.raw == {"_unparsed": ["odd"]}
    assert parsed.warnings
