"""The emulator's norms, schedules, calendar and absences: documented shapes, and a world that keeps them.

Plain HTTP with `requests`, as in test_emulator.py: these tests check the portal, not the
poller's client. The world test reads norms, calendar and absences over HTTP and the
workdays from the world's truth, and checks each day against them independently of the
emulator's own habit plan.
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, date, datetime, timedelta
from typing import Any

import requests
from conftest import MakeEmulator

from poller.clock import ManualClock
from poller.emulator import Emulator

START = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


def call(emulator: Emulator, method: str, body: Any = None) -> requests.Response:
    s = emulator.settings
    url = f"{emulator.base_url}/rest/{s.webhook_user}/{s.webhook_secret}/{method}"
    return requests.post(url, json=body if body is not None else {}, timeout=10)


def seconds(hms: str) -> int:
    hours, minutes, secs = (int(part) for part in hms.split(":"))
    return hours * 3600 + minutes * 60 + secs


def absent_days(events: list[dict[str, Any]]) -> set[date]:
    """The local dates the whole-day `absent` events cover (DATE_TO is the last day)."""
    days = set()
    for event in events:
        if event["ACCESSIBILITY"] == "absent":
            day, last = (datetime.strptime(event[key], "%d.%m.%Y").date() for key in ("DATE_FROM", "DATE_TO"))
            while day <= last:
                days.add(day)
                day += timedelta(days=1)
    return days


def test_timeman_settings_answers_each_users_norms_and_admin_only_to_the_caller(
    make_emulator: MakeEmulator,
) -> None:
    emulator = make_emulator(users=12)
    own = call(emulator, "timeman.settings").json()["result"]
    other = call(emulator, "timeman.settings", {"USER_ID": 5}).json()["result"]
    assert own == {
        "UF_TIMEMAN": True, "UF_TM_FREE": False, "UF_TM_MAX_START": "09:45:00",
        "UF_TM_MIN_FINISH": "16:00:00", "UF_TM_MIN_DURATION": "08:00:00", "UF_TM_ALLOWED_DELTA": "00:10:00",
        "ADMIN": True,
    }  # fmt: skip
    assert other == {
        "UF_TIMEMAN": True, "UF_TM_FREE": False, "UF_TM_MAX_START": "10:00:00",
        "UF_TM_MIN_FINISH": "15:30:00", "UF_TM_MIN_DURATION": "07:30:00", "UF_TM_ALLOWED_DELTA": "00:30:00",
    }  # fmt: skip
    unknown = call(emulator, "timeman.settings", {"USER_ID": 99})
    assert (unknown.status_code, unknown.json()) == (
        400,
        {"error": "", "error_description": "User not found"},
    )


def test_a_batch_of_settings_keeps_an_unknown_user_to_itself(make_emulator: MakeEmulator) -> None:
    emulator = make_emulator(users=3)
    commands = {"u2": "timeman.settings?USER_ID=2", "u9": "timeman.settings?USER_ID=9"}
    result = call(emulator, "batch", {"halt": 0, "cmd": commands}).json()["result"]
    assert result["result"]["u2"]["UF_TIMEMAN"] is False  # the user without records tracks nothing
    assert result["result_error"] == {"u9": {"error": "", "error_description": "User not found"}}


def test_a_schedule_has_the_documented_shape_and_an_unknown_id_answers_an_empty_array(
    emulator: Emulator,
) -> None:
    schedule = call(emulator, "timeman.schedule.get", {"id": 1}).json()["result"]
    assert (schedule["ID"], schedule["SCHEDULE_TYPE"], schedule["IS_FOR_ALL_USERS"]) == (1, "FIXED", True)
    assert schedule["SHIFTS"] == [
        {"ID": 1, "NAME": "", "BREAK_DURATION": 3600, "WORK_TIME_START": 32400, "WORK_TIME_END": 64800,
         "WORK_DAYS": "12345", "SCHEDULE_ID": 1, "DELETED": False},
    ]  # fmt: skip
    rules = schedule["SCHEDULE_VIOLATION_RULES"]
    assert (rules["MAX_EXACT_START"], rules["MIN_EXACT_END"], rules["MIN_DAY_DURATION"]) == (
        35100,
        57600,
        28800,
    )
    assert call(emulator, "timeman.schedule.get", {"id": 2}).json()["result"] == []
    assert call(emulator, "timeman.schedule.get").json()["result"] == []


def test_calendar_settings_have_the_documented_keys(emulator: Emulator) -> None:
    result = call(emulator, "calendar.settings.get").json()["result"]
    assert result["year_holidays"] == "1.01,2.01,7.01,23.02,8.03,1.05,9.05,12.06,4.11"
    assert (result["year_workdays"], result["week_holidays"], result["week_start"]) == (
        "31.12",
        ["SA", "SU"],
        "MO",
    )
    assert (result["work_time_start"], result["work_time_end"]) == ("9", "19")


def test_accessibility_names_each_missing_parameter_as_the_portal_does(emulator: Emulator) -> None:
    full = {"users": [1], "from": "2026-11-01", "to": "2026-11-30"}
    for missing in ("users", "from", "to"):
        answer = call(emulator, "calendar.accessibility.get", {k: v for k, v in full.items() if k != missing})
        assert answer.status_code == 400
        assert answer.json() == {
            "error": "",
            "error_description": f'The required parameter "{missing}" for the method '
            '"calendar.accessibility.get" is not set',
        }
    assert call(emulator, "calendar.accessibility.get", full).status_code == 200


def test_accessibility_lists_absences_and_meetings_and_nothing_for_an_unknown_user(
    make_emulator: MakeEmulator,
) -> None:
    emulator = make_emulator(users=30)
    body = {"users": [6, 99], "from": "2026-10-01", "to": "2026-10-31"}
    result = call(emulator, "calendar.accessibility.get", body).json()["result"]
    assert result["99"] == []
    absent = [e for e in result["6"] if e["ACCESSIBILITY"] == "absent"]
    assert absent == [
        {"ID": "602602", "NAME": "Sick leave", "DATE_FROM": "06.10.2026", "DATE_TO": "06.10.2026",
         "DATE_FROM_TS_UTC": str(int(datetime(2026, 10, 5, 23, tzinfo=UTC).timestamp())),
         "DATE_TO_TS_UTC": str(int(datetime(2026, 10, 5, 23, tzinfo=UTC).timestamp())),
         "~USER_OFFSET_FROM": 3600, "~USER_OFFSET_TO": 3600, "DT_SKIP_TIME": "Y", "TZ_FROM": "Africa/Lagos",
         "TZ_TO": "Africa/Lagos", "ACCESSIBILITY": "absent", "IMPORTANCE": "normal", "EVENT_TYPE": ""},
    ]  # fmt: skip
    meetings = [e["DATE_FROM"] for e in result["6"] if e["ACCESSIBILITY"] == "busy"]
    assert meetings == ["13.10.2026 11:00:00", "20.10.2026 11:00:00", "27.10.2026 11:00:00"]  # 6.10: sick


def test_without_the_calendar_scope_calendar_methods_answer_insufficient_scope_alone_and_in_a_batch(
    make_emulator: MakeEmulator,
) -> None:
    emulator = make_emulator(users=3, calendar_scope=False)
    refused = {"error": "insufficient_scope", "error_description": (
        "The request requires higher privileges than provided by the webhook token")}  # fmt: skip
    alone = call(emulator, "calendar.settings.get")
    assert (alone.status_code, alone.json()) == (403, refused)
    commands = {
        "c": "calendar.accessibility.get?users[0]=1&from=2026-11-01&to=2026-11-02",
        "t": "timeman.settings?USER_ID=1",
    }
    result = call(emulator, "batch", {"halt": 0, "cmd": commands}).json()["result"]
    assert result["result_error"] == {"c": refused} and set(result["result"]) == {"t"}
    s = emulator.settings
    pair = requests.get(
        emulator.oauth_url,
        params={"grant_type": "refresh_token", "client_id": s.client_id, "client_secret": s.client_secret,
                "refresh_token": s.refresh_token},
        timeout=10,
    ).json()  # fmt: skip
    assert pair["scope"] == "timeman,user,department"


def test_the_worlds_workdays_keep_its_calendar_absences_and_norms(
    make_emulator: MakeEmulator, clock: ManualClock
) -> None:
    """40 users, September to November 2026: nobody works absent or on a weekend, few on the
    holiday (4 November), and a day breaks a norm only by a late start or an early end."""
    clock.set(START)
    emulator = make_emulator(users=40, clock=clock, start=START)
    first, last = date(2026, 9, 1), date(2026, 11, 30)
    users = [u for u in range(1, 41) if u not in (2, 3, 4, 11)]  # none, EXPIRED, night shift, expiring
    body = {"users": users, "from": first.isoformat(), "to": last.isoformat()}
    events = call(emulator, "calendar.accessibility.get", body).json()["result"]
    seen: Counter[str] = Counter()
    for user in users:
        norms = call(emulator, "timeman.settings", {"USER_ID": user}).json()["result"]
        max_start, min_finish, delta = (
            seconds(norms[key]) for key in ("UF_TM_MAX_START", "UF_TM_MIN_FINISH", "UF_TM_ALLOWED_DELTA")
        )
        absent = absent_days(events[str(user)])
        records = {r.work_date: r for r in emulator.world.records(user, first, last)}
        for day in (first + timedelta(days=n) for n in range((last - first).days + 1)):
            record = records.get(day)
            if day.weekday() >= 5 or day in absent:
                assert record is None, (user, day)
                seen["absent" if day in absent and day.weekday() < 5 else "weekend"] += 1
                continue
            if day == date(2026, 11, 4):
                seen["holiday worked" if record else "holiday off"] += 1
                continue
            assert record is not None and record.end_time is not None, (user, day)
            local = timedelta(seconds=emulator.world.tz_offset(user))
            midnight = datetime.combine(day, datetime.min.time(), UTC)
            start = (record.start_time + local - midnight).total_seconds()
            end = (record.end_time + local - midnight).total_seconds()
            late, early = start > max_start + delta, end < min_finish - delta
            assert not (late and early), (user, day)
            seen["late" if late else "early" if early else "ordinary"] += 1
    assert seen["absent"] > 20 and seen["late"] > 100 and seen["early"] > 60 and seen["ordinary"] > 1500
    assert 0 < seen["holiday worked"] < seen["holiday off"]
