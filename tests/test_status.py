from __future__ import annotations

import json
from datetime import UTC, date, datetime

import pytest

from poller.fields import RECORD_FIELDS, STATUS_COLUMNS, USER_FIELDS
from poller.status import parse_fields, parse_hms, parse_status

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


# Values a portal (or a proxy in front of it) has sent that fit no column: each becomes None or
# is trimmed, with a warning; the raw JSON keeps what came.
@pytest.mark.parametrize(
    ("field", "value", "attribute"),
    [
        ("TZ_OFFSET", 99999999999999, "tz_offset"),
        ("TZ_OFFSET", 14 * 3600 + 1, "tz_offset"),
        ("TZ_OFFSET", "-99999999999999", "tz_offset"),
        ("TIME_START", "9999-12-31T23:00:00-05:00", "time_start"),
        ("TIME_START", "0001-01-01T00:30:00+05:00", "time_start"),
        ("TIME_START", "1970-01-01T00:00:00+00:00", "time_start"),
        ("TIME_FINISH", "2101-01-01T00:00:00+00:00", "time_finish"),
        ("TIME_FINISH_DEFAULT", "9999-12-31T23:59:59+00:00", "time_finish_default"),
        ("DURATION", "99999999:00:00", "duration_seconds"),
        pytest.param("DURATION", "9" * 5000 + ":00:00", "duration_seconds", id="DURATION-5000-digits"),
        ("TIME_LEAKS", "8785:00:00", "time_leaks_seconds"),
        ("LAT_OPEN", 91, "lat_open"),
        ("LON_OPEN", -180.5, "lon_open"),
        ("LAT_CLOSE", float("nan"), "lat_close"),
        ("LON_CLOSE", float("inf"), "lon_close"),
        pytest.param("LAT_OPEN", 10**400, "lat_open", id="LAT_OPEN-10**400"),
        ("LAT_OPEN", "1e400", "lat_open"),
    ],
)
def test_a_value_outside_its_sane_range_becomes_null_with_a_warning(
    field: str, value: object, attribute: str
) -> None:
    parsed = parse_status({**CLOSED, field: value})
    assert getattr(parsed, attribute) is None
    assert [w for w in parsed.warnings if w.startswith(field)], parsed.warnings
    assert parsed.raw[field] is value


def test_the_edges_of_the_sane_ranges_are_kept() -> None:
    parsed = parse_status(
        {
            **CLOSED,
            "TZ_OFFSET": -14 * 3600,
            "DURATION": "8784:00:00",
            "TIME_START": "2000-01-01T00:00:00+14:00",
            "TIME_FINISH": "2100-12-31T23:59:59-12:00",
            "LAT_OPEN": -90,
            "LON_OPEN": 180,
        }
    )
    assert parsed.warnings == ()
    assert parsed.tz_offset == -14 * 3600
    assert parsed.duration_seconds == 8784 * 3600
    assert parsed.time_start == datetime(1999, 12, 31, 10, tzinfo=UTC)
    assert parsed.time_finish == datetime(2101, 1, 1, 11, 59, 59, tzinfo=UTC)
    assert (parsed.lat_open, parsed.lon_open) == (-90.0, 180.0)


def test_an_impossible_time_start_leaves_the_work_date_unknown() -> None:
    parsed = parse_status({**CLOSED, "TIME_START": "9999-12-31T23:00:00-05:00"})
    assert parsed.work_date is None


def test_an_impossible_tz_offset_dates_the_workday_in_utc() -> None:
    parsed = parse_status({**CLOSED, "TIME_START": "2025-03-27T23:30:00+00:00", "TZ_OFFSET": 99999999999999})
    assert parsed.work_date == date(2025, 3, 27)


@pytest.mark.parametrize(
    ("field", "value", "attribute", "kept"),
    [
        pytest.param("STATUS", "CLOSED" + "X" * 34, "status", "CLOSED" + "X" * 26, id="STATUS-40-chars"),
        pytest.param("IP_OPEN", "1" * 100, "ip_open", "1" * 64, id="IP_OPEN-100-chars"),
        ("IP_OPEN", "10.0.0.1\x00", "ip_open", "10.0.0.1"),
        ("IP_CLOSE", "\x1b[31m10.0.0.2\x7f\r\n", "ip_close", "[31m10.0.0.2"),
        ("IP_CLOSE", "10.0.\ud8000.3", "ip_close", "10.0.0.3"),
        pytest.param(
            "IP_OPEN", "\x00" * 100 + "x" * 100, "ip_open", "x" * 64, id="IP_OPEN-NULs-then-200-chars"
        ),
    ],
)
def test_a_text_is_cleaned_and_cut_to_its_column_with_a_warning(
    field: str, value: str, attribute: str, kept: str
) -> None:
    parsed = parse_status({**CLOSED, field: value})
    assert getattr(parsed, attribute) == kept
    assert [w for w in parsed.warnings if w.startswith(field)], parsed.warnings
    assert parsed.raw[field] == value


def test_a_warning_shows_only_the_start_of_a_long_value() -> None:
    parsed = parse_status({**CLOSED, "DURATION": "9" * 100_000})
    assert parsed.duration_seconds is None
    assert len(parsed.warnings) == 1 and len(parsed.warnings[0]) < 200


def test_every_declared_field_is_parsed_in_order() -> None:
    assert tuple(parse_status(CLOSED).values) == STATUS_COLUMNS
    assert tuple(parse_status("odd").values) == STATUS_COLUMNS


@pytest.mark.parametrize("value", [None, "", "\x00", 42])
def test_a_missing_or_empty_status_is_null_with_one_warning(value: object) -> None:
    parsed = parse_status({**CLOSED, "STATUS": value})
    assert parsed.status is None
    assert len([w for w in parsed.warnings if w.startswith("STATUS")]) == (2 if value == "\x00" else 1)


def test_the_same_rules_parse_a_user_row_and_a_department_list_of_ints() -> None:
    row = {"ID": "42", "NAME": "Anna\x07", "UF_DEPARTMENT": ["3", 7], "ACTIVE": "Y", "TIME_ZONE": 5}
    values, warnings = parse_fields(USER_FIELDS, row)
    assert values == {
        "user_id": 42, "name": "Anna", "last_name": None, "email": None, "position": None,
        "department_ids": [3, 7], "user_type": None, "active": True, "time_zone": None,
    }  # fmt: skip
    assert len(warnings) == 2  # the control character, the number for a time zone


@pytest.mark.parametrize(
    ("value", "parsed", "warned"),
    [([], [], False), (False, [], False), (None, None, False), ([1, "x"], None, True), ("3", None, True)],
)
def test_a_department_list_is_integers_or_null(value: object, parsed: object, warned: bool) -> None:
    values, warnings = parse_fields(USER_FIELDS, {"ID": "1", "UF_DEPARTMENT": value})
    assert (values["department_ids"], bool(warnings)) == (parsed, warned)


@pytest.mark.parametrize(
    ("state", "status"),
    [({"status": "CLOSED"}, "CLOSED"), ("OPENED", "OPENED"), ({}, None), (None, None), ({"status": 5}, None)],
)
def test_a_records_status_is_read_inside_its_state_object(state: object, status: object) -> None:
    values, _ = parse_fields(RECORD_FIELDS, {"id": 1, "state": state})
    assert values["status"] == status
