"""Reading norms, schedules, the portal calendar and absences from the emulated portal over loopback.

The truth is the emulator's own (`poller.emulator.norms`, `absences`); the client reads it over
HTTP and must give it back typed, in ceil(N/50) requests, with a bad value costing only itself.
"""

from __future__ import annotations

import math
from datetime import UTC, date, datetime

import pytest
import requests
from conftest import MakeEmulator, make_config, portal

from poller.bitrix import PortalClient
from poller.bitrix.calendar import HOLIDAY, WEEKEND, WORKDAY, fetch_absences, fetch_calendar_settings
from poller.bitrix.norms import Shift, UserNorms, fetch_schedule, fetch_settings
from poller.emulator import Emulator, absences, norm_methods
from poller.errors import BitrixError


def client_of(emulator: Emulator, *, oauth: bool = False) -> PortalClient:
    config = make_config(portal(emulator, [1], oauth=oauth), http={"max_retries": 0})
    return PortalClient(config.portals[0], requests.Session(), config.http)


def test_settings_come_50_users_a_request_typed_in_seconds(make_emulator: MakeEmulator) -> None:
    emulator = make_emulator(users=130, rate=0)
    client = client_of(emulator)
    users = list(range(1, 124))
    fetched = fetch_settings(client, users)
    assert emulator.stats.requests == client.requests_sent == math.ceil(len(users) / 50) == 3
    assert sorted(fetched.norms) == users and fetched.errors == {}
    assert fetched.norms[5] == UserNorms(
        user_id=5, tracked=True, free=False, max_start=36000, min_finish=55800, min_duration=27000,
        allowed_delta=1800, raw=fetched.norms[5].raw,
    )  # fmt: skip
    assert (fetched.norms[1].max_start, fetched.norms[1].allowed_delta) == (35100, 600)
    assert (fetched.norms[2].tracked, fetched.norms[20].free) == (False, True)


def test_an_unknown_user_fails_alone(make_emulator: MakeEmulator) -> None:
    client = client_of(make_emulator(users=5, rate=0))
    fetched = fetch_settings(client, [4, 9, 5])
    assert sorted(fetched.norms) == [4, 5]
    assert [(user, error.code, error.per_user) for user, error in fetched.errors.items()] == [
        (9, "USER_NOT_FOUND", True)
    ]


def test_a_bad_value_costs_only_that_value_and_names_the_portal_and_user(make_emulator: MakeEmulator) -> None:
    emulator = make_emulator(users=5, rate=0)
    odd_values = {
        "UF_TIMEMAN": "maybe", "UF_TM_MAX_START": "25:61:00", "UF_TM_MIN_FINISH": "17:00:00",
        "UF_TM_MIN_DURATION": 28800,
    }  # fmt: skip
    norm_methods.override(emulator, "timeman.settings", odd_values, user_id=3)
    fetched = fetch_settings(client_of(emulator), [3, 4])
    odd = fetched.norms[3]
    assert (odd.tracked, odd.max_start, odd.min_finish, odd.min_duration, odd.allowed_delta) == (
        None, None, 61200, None, None,
    )  # fmt: skip
    assert odd.warnings == (
        "portal emu user 3: UF_TIMEMAN 'maybe' is not a yes/no value",
        "portal emu user 3: UF_TM_MAX_START '25:61:00' is not HH:MM:SS below 24:00:00",
        "portal emu user 3: UF_TM_MIN_DURATION 28800 is not HH:MM:SS below 24:00:00",
    )
    assert fetched.norms[4].warnings == () and fetched.norms[4].max_start == 78300  # 21:45, the night shift


def test_a_missing_right_in_the_batch_ends_the_fetch_after_one_request(make_emulator: MakeEmulator) -> None:
    emulator = make_emulator(users=120, rate=0)
    emulator.fail_calls("insufficient_scope", "timeman.settings")
    client = client_of(emulator)
    with pytest.raises(BitrixError) as raised:
        fetch_settings(client, list(range(1, 121)))
    assert raised.value.code == "insufficient_scope" and raised.value.portal_wide
    assert str(raised.value).startswith("portal emu: timeman.settings: insufficient_scope:")
    assert client.requests_sent == 1


def test_a_schedule_is_read_typed_and_an_unknown_one_is_none(make_emulator: MakeEmulator) -> None:
    client = client_of(make_emulator(users=3, rate=0))
    schedule = fetch_schedule(client, 1)
    assert schedule is not None
    assert (schedule.name, schedule.schedule_type, schedule.report_period, schedule.for_all_users) == (
        "For all employees", "FIXED", "MONTH", True,
    )  # fmt: skip
    assert schedule.shifts == (Shift(1, "", 32400, 64800, 3600, frozenset({1, 2, 3, 4, 5}), False),)
    rules = schedule.violation_rules
    assert (rules["MAX_EXACT_START"], rules["MIN_EXACT_END"], rules["MIN_DAY_DURATION"]) == (
        35100,
        57600,
        28800,
    )
    assert rules["MAX_OFFSET_START"] is None and schedule.warnings == ()  # -1: the rule is off
    night = fetch_schedule(client, 4)
    assert night is not None and night.shifts[0].start == 72000 and night.shifts[0].end == 18000
    assert night.shifts[0].work_days_text == "12345"
    assert fetch_schedule(client, 2) is None


def test_the_calendar_gives_holidays_moved_workdays_and_days_off_per_year(
    make_emulator: MakeEmulator,
) -> None:
    calendar = fetch_calendar_settings(client_of(make_emulator(users=3, rate=0)))
    assert calendar.holidays_in(2026) == tuple(
        date(2026, m, d)
        for d, m in ((1, 1), (2, 1), (7, 1), (23, 2), (8, 3), (1, 5), (9, 5), (12, 6), (4, 11))
    )
    assert calendar.moved_workdays_in(2027) == (date(2027, 12, 31),)
    assert calendar.week_holidays == frozenset({5, 6}) and calendar.week_holiday_codes == ("SA", "SU")
    assert (calendar.work_time_start, calendar.work_time_end, calendar.warnings) == (32400, 68400, ())
    kinds = [calendar.day_kind(date(2026, 11, d)) for d in (4, 5, 7)]
    assert kinds == [HOLIDAY, WORKDAY, WEEKEND]


def test_a_bad_holiday_is_skipped_and_named_the_rest_kept(make_emulator: MakeEmulator) -> None:
    emulator = make_emulator(users=3, rate=0)
    norm_methods.override(
        emulator,
        "calendar.settings.get",
        {"year_holidays": "1.01,31.02,x,8.03", "week_holidays": ["SU", "XX"]},
    )
    calendar = fetch_calendar_settings(client_of(emulator))
    assert calendar.holidays == frozenset({(1, 1), (8, 3)}) and calendar.week_holidays == frozenset({6})
    assert calendar.warnings == (
        "portal emu calendar: year_holidays '31.02' is not a day.month date: skipped",
        "portal emu calendar: year_holidays 'x' is not a day.month date: skipped",
        "portal emu calendar: week_holidays 'XX' is not one of MO, TU, WE, TH, FR, SA, SU: skipped",
    )


def test_absences_are_the_absent_events_only_50_users_a_request(make_emulator: MakeEmulator) -> None:
    emulator = make_emulator(users=120, rate=0)
    client = client_of(emulator)
    users = list(range(1, 121))
    first, last = date(2026, 10, 1), date(2026, 10, 31)
    fetched = fetch_absences(client, users, first, last)
    assert client.requests_sent == math.ceil(len(users) / 50) == 3 and fetched.warnings == []
    got = [(a.user_id, a.event_id, a.name, a.first_day, a.last_day, a.whole_day) for a in fetched.absences]
    truth = [
        (user, str(a.event_id), a.name, a.first, a.last, True)
        for user in users
        for a in absences.absences_between(user, first, last)
    ]
    assert got == truth and len(truth) > 5  # the weekly meetings (busy) are not absences
    sick = next(a for a in fetched.absences if a.user_id == 6)
    assert (sick.starts_at, sick.ends_at) == (
        datetime(2026, 10, 5, 23, tzinfo=UTC),
        datetime(2026, 10, 6, 23, tzinfo=UTC),
    )  # the whole local day 6 October in UTC+1


def test_without_the_calendar_scope_calendar_reads_fail_with_the_portals_error(
    make_emulator: MakeEmulator,
) -> None:
    emulator = make_emulator(users=3, rate=0, calendar_scope=False)
    for client in (client_of(emulator), client_of(emulator, oauth=True)):
        with pytest.raises(BitrixError) as raised:
            fetch_calendar_settings(client)
        assert (raised.value.code, raised.value.http_status, raised.value.portal_wide) == (
            "insufficient_scope", 403, True,
        )  # fmt: skip
        with pytest.raises(BitrixError, match="insufficient_scope"):
            fetch_absences(client, [1, 2], date(2026, 11, 1), date(2026, 11, 30))
    assert fetch_settings(client_of(emulator), [1]).norms[1].tracked is True  # timeman is still there


def test_an_unreadable_absence_is_skipped_and_named_the_others_kept(make_emulator: MakeEmulator) -> None:
    emulator = make_emulator(users=3, rate=0)
    good = {"ID": "7", "NAME": "Doctor", "DATE_FROM_TS_UTC": "1794906000", "DATE_TO_TS_UTC": "1794913200",
            "~USER_OFFSET_FROM": 3600, "DT_SKIP_TIME": "N", "ACCESSIBILITY": "absent"}  # fmt: skip
    events = [
        {**good, "ID": "5", "DATE_FROM_TS_UTC": "soon"},
        {**good, "ID": "6", "ACCESSIBILITY": "busy", "DATE_FROM_TS_UTC": None},  # not an absence: not read
        good,
    ]
    norm_methods.override(emulator, "calendar.accessibility.get", events, user_id=2)
    fetched = fetch_absences(client_of(emulator), [2], date(2026, 11, 1), date(2026, 11, 30))
    got = [
        (a.event_id, a.whole_day, a.starts_at, a.ends_at, a.first_day, a.last_day) for a in fetched.absences
    ]
    assert got == [
        ("7", False, datetime(2026, 11, 17, 9, tzinfo=UTC), datetime(2026, 11, 17, 11, tzinfo=UTC),
         date(2026, 11, 17), date(2026, 11, 17)),
    ]  # fmt: skip
    assert fetched.warnings == [
        "portal emu user 2 event '5': DATE_FROM_TS_UTC 'soon' is not a whole number in 0..1099511627776",
        "portal emu user 2 event '5': span ('soon', '1794913200') is unusable: skipped",
    ]
    assert fetched.unread_users == {2}  # its stored days must not be taken as withdrawn


def test_a_users_answer_that_is_not_a_list_marks_only_that_user_unread(
    make_emulator: MakeEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    emulator = make_emulator(users=3, rate=0)
    client = client_of(emulator)
    answer = {"1": [], "2": "oops", "3": {}}  # 3: PHP's empty array as an object
    monkeypatch.setattr(client, "call", lambda method, params: {"result": answer})
    fetched = fetch_absences(client, [1, 2, 3], date(2026, 11, 1), date(2026, 11, 30))
    assert fetched.absences == [] and fetched.unread_users == {2}
    assert fetched.warnings == ["portal emu user 2: events 'oops' are not a list: skipped"]
