"""A day's local date comes from the user's zone (the directory's TIME_ZONE) where it is known,
else from the offset its start was written in, on DST nights too.

Berlin: 2026-03-29 02:00 CET -> 03:00 CEST (spring forward), 2026-10-25 03:00 CEST -> 02:00 CET
(the clocks go back). TZ_OFFSET is the user's offset when the portal answers, not when the day
began (issue #14, row 6b).
"""

from __future__ import annotations

import dataclasses
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from conftest import make_config, portal
from sqlalchemy import Engine, select

from poller import storage
from poller.bitrix import fetch_users
from poller.clients import make_clients
from poller.clock import ManualClock
from poller.emulator import Emulator
from poller.models import Snapshot, workdays_table
from poller.poll.cycle import poll_once
from poller.status import parse_status, start_offset
from poller.storage.local_dates import dated_in_zones

# (TIME_START as the portal wrote it, TZ_OFFSET when answered after the change, the local date)
AUTUMN = ("2026-10-25T00:30:00+02:00", 3600, date(2026, 10, 25))  # began in CEST, answered in CET
SPRING = ("2026-03-28T23:30:00+01:00", 7200, date(2026, 3, 28))  # began in CET, answered in CEST
OLDER_BUILD = ("2026-10-24T22:30:00+00:00", 10800, date(2026, 10, 25))  # UTC start, Moscow user


def answer(start: str, tz_offset: int) -> dict[str, Any]:
    return {"STATUS": "OPENED", "TIME_START": start, "TIME_FINISH": None, "DURATION": "00:00:00",
            "TIME_LEAKS": "00:00:00", "ACTIVE": True, "TZ_OFFSET": tz_offset}  # fmt: skip


@pytest.mark.parametrize(("start", "tz_offset", "local"), [AUTUMN, SPRING, OLDER_BUILD])
def test_the_local_date_is_the_starts_own(start: str, tz_offset: int, local: date) -> None:
    parsed = parse_status(answer(start, tz_offset))
    assert parsed.work_date == local
    assert parsed.tz_offset == tz_offset  # the answer's TZ_OFFSET is kept as it came


def test_a_start_without_a_readable_offset_falls_back_to_tz_offset() -> None:
    assert start_offset("2026-10-25T00:30:00+02:00", 3600) == 7200
    assert start_offset("2026-10-24T22:30:00+00:00", 10800) == 10800  # older builds: UTC
    assert start_offset("2026-10-24T22:30:00+00:00", 0) == 0
    assert start_offset("2026-10-24T22:30:00+00:00", None) == 0
    assert start_offset(None, 3600) == 3600
    assert start_offset("yesterday", 3600) == 3600


def test_dst_nights_are_filed_under_the_day_they_began_through_the_emulator(
    emulator: Emulator, engine: Engine
) -> None:
    clock = ManualClock(datetime(2026, 10, 25, 7, 0, tzinfo=UTC))  # 08:00 CET, after the change
    for user_id, (start, tz_offset, _) in zip((1, 2, 3), (AUTUMN, SPRING, OLDER_BUILD), strict=True):
        emulator.override_result(user_id, answer(start, tz_offset))
    config = make_config(portal(emulator, [1, 2, 3], requests_per_second=1000))
    report = poll_once(make_clients(config, engine, clock=clock), engine, clock=clock.now)
    assert report.ok
    with engine.connect() as connection:
        polled = dict(connection.execute(select(Snapshot.user_id, Snapshot.work_date)).all())
        days = {
            row.user_id: (row.work_date, row.tz_offset)
            for row in connection.execute(select(workdays_table.c.user_id, workdays_table.c.work_date,
                                                 workdays_table.c.tz_offset))
        }  # fmt: skip
    assert polled == {1: AUTUMN[2], 2: SPRING[2], 3: OLDER_BUILD[2]}
    assert days == {1: (AUTUMN[2], 3600), 2: (SPRING[2], 7200), 3: (OLDER_BUILD[2], 10800)}


def test_a_record_of_a_dst_night_takes_its_starts_offset_not_the_newest_polls(engine: Engine) -> None:
    """Without a directory zone, a record nobody polled used the newest poll's TZ_OFFSET."""
    now = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
    today = answer("2026-11-02T09:00:00+01:00", 3600)  # the newest poll: CET
    storage.save_portal_cycle(engine, None, [storage.SnapshotRow("acme", 4, now, parse_status(today))], [])
    night = {"id": 901, "userId": 4, "startTime": AUTUMN[0], "endTime": "2026-10-25T08:30:00+01:00",
             "duration": 32400, "breakLength": 0, "state": {"status": "CLOSED"},
             "isApproved": True}  # fmt: skip
    spring = {**night, "id": 902, "startTime": SPRING[0], "endTime": "2026-03-29T08:00:00+02:00"}
    storage.save_records(engine, "acme", [night, spring], now)
    with engine.connect() as connection:
        rows = connection.execute(
            select(workdays_table.c.record_id, workdays_table.c.work_date, workdays_table.c.source)
            .where(workdays_table.c.record_id.is_not(None))
            .order_by(workdays_table.c.record_id)
        ).all()
    assert [tuple(row) for row in rows] == [(901, AUTUMN[2], "record"), (902, SPRING[2], "record")]


# Starts written in UTC (older builds, and the reference's own example) on both DST nights.
BERLIN_AUTUMN = ("2026-10-24T22:30:00+00:00", 3600, date(2026, 10, 25))  # 00:30 CEST on the 25th
LONDON_SPRING = ("2026-03-28T23:30:00+00:00", 3600, date(2026, 3, 28))  # 23:30 GMT on the 28th
NO_ZONE_USER = 10  # the emulator's directory names no zone for users whose offset is 0


def test_starts_written_in_utc_take_the_date_of_the_directorys_zone_through_the_emulator(
    emulator: Emulator, engine: Engine
) -> None:
    clock = ManualClock(datetime(2026, 10, 25, 7, 0, tzinfo=UTC))
    emulator.set_time_zone(1, "Europe/Berlin")
    emulator.set_time_zone(2, "Europe/London")
    config = make_config(portal(emulator, [1, 2, NO_ZONE_USER], requests_per_second=1000))
    (client,) = make_clients(config, engine, clock=clock)
    storage.save_users(engine, "emu", fetch_users(client), clock.now())
    for user_id, (start, tz_offset, _) in (
        (1, BERLIN_AUTUMN),
        (2, LONDON_SPRING),
        (NO_ZONE_USER, BERLIN_AUTUMN),
    ):
        emulator.override_result(user_id, answer(start, tz_offset))
    assert poll_once(make_clients(config, engine, clock=clock), engine, clock=clock.now).ok
    with engine.connect() as connection:
        polled = dict(connection.execute(select(Snapshot.user_id, Snapshot.work_date)).all())
        offsets = dict(connection.execute(select(Snapshot.user_id, Snapshot.tz_offset)).all())
        days = dict(connection.execute(select(workdays_table.c.user_id, workdays_table.c.work_date)).all())
    expected = {
        1: BERLIN_AUTUMN[2],
        2: LONDON_SPRING[2],
        NO_ZONE_USER: date(2026, 10, 24),
    }  # no zone: TZ_OFFSET
    assert polled == expected
    assert days == expected
    assert offsets == {1: 3600, 2: 3600, NO_ZONE_USER: 3600}  # TZ_OFFSET is kept as it came


def test_a_record_written_in_utc_takes_the_date_of_the_directorys_zone(engine: Engine) -> None:
    now = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
    users = [{"ID": str(user_id), "NAME": "N", "TIME_ZONE": zone, "ACTIVE": True}
             for user_id, zone in ((4, "Europe/Berlin"), (5, "Europe/London"))]  # fmt: skip
    storage.save_users(engine, "acme", users, now)
    night = {"id": 911, "userId": 4, "startTime": BERLIN_AUTUMN[0], "endTime": "2026-10-25T07:30:00+00:00",
             "duration": 32400, "breakLength": 0, "state": {"status": "CLOSED"},
             "isApproved": True}  # fmt: skip
    spring = {
        **night,
        "id": 912,
        "userId": 5,
        "startTime": LONDON_SPRING[0],
        "endTime": "2026-03-29T07:00:00+00:00",
    }
    storage.save_records(engine, "acme", [night, spring], now)
    with engine.connect() as connection:
        rows = connection.execute(
            select(
                workdays_table.c.record_id, workdays_table.c.work_date, workdays_table.c.tz_offset
            ).order_by(workdays_table.c.record_id)
        ).all()
    assert [tuple(row) for row in rows] == [(911, BERLIN_AUTUMN[2], 7200), (912, LONDON_SPRING[2], 0)]


def test_a_local_date_is_the_zones_own_and_a_repeated_hour_is_dated_each_time() -> None:
    """dated_in_zones dates each start in its user's zone, whatever came before: the same start
    again in another zone, an equal start written at another offset, and a start in a zone's
    repeated hour (equal to its twin there, so a cache keyed by it would confuse the two)."""
    start = datetime(2026, 10, 24, 22, 30, tzinfo=UTC)  # 00:30 CEST on the 25th
    berlin, new_york = ZoneInfo("Europe/Berlin"), ZoneInfo("America/New_York")
    minus_six = ZoneInfo("Etc/GMT+6")  # UTC-6 all year: 05:30 UTC is the day before, 06:30 UTC not

    def dated(when: datetime, zone: ZoneInfo) -> date:
        parsed = parse_status(answer("2026-10-24T22:30:00+00:00", 0))
        values = {**parsed.values, "time_start": when, "work_date": date(2000, 1, 1)}
        row = storage.SnapshotRow("acme", 1, when, dataclasses.replace(parsed, values=values))
        [out] = dated_in_zones([row], {1: zone})
        return out.parsed.values["work_date"]

    for _ in range(2):  # twice: nothing carried over from the first round decides the second
        assert dated(start, berlin) == date(2026, 10, 25)
        assert dated(start, new_york) == date(2026, 10, 24)
        assert dated(start.astimezone(timezone(timedelta(hours=-7))), berlin) == date(2026, 10, 25)
    # 01:30 in New York on 2026-11-01 happens twice (05:30 and 06:30 UTC); the two compare equal
    first, second = (datetime(2026, 11, 1, 1, 30, tzinfo=new_york, fold=fold) for fold in (0, 1))
    assert first == second
    assert dated(first.astimezone(UTC), minus_six) == date(2026, 10, 31)
    assert dated(first, minus_six) == date(2026, 10, 31)
    assert dated(second, minus_six) == date(2026, 11, 1)
    assert dated(second.astimezone(UTC), minus_six) == date(2026, 11, 1)
