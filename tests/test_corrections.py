"""Nothing is overwritten: a record a manager edits in the portal, and a closed day whose figures
change, leave workday_revisions rows (what it was, what it became, when), counted in workdays.

The emulator serves the edits (World.edit_record) and the daemon's reconcile fetches them, on
SQLite and PostgreSQL.
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from typing import Any

import requests
from conftest import MakeEmulator, make_config, portal
from sqlalchemy import Engine, select

from poller import storage
from poller.bitrix import PortalClient
from poller.cli import main
from poller.clock import ManualClock
from poller.config import Config
from poller.emulator import Emulator
from poller.emulator.world import record_id
from poller.history.canonical import plain_value
from poller.models import workday_records_table, workday_revisions_table, workdays_table
from poller.poll.backfill import reconcile
from poller.poll.cycle import poll_portal
from poller.status import parse_status

USER = 1
FRIDAY = date(2026, 11, 13)  # a workday of user 1 before the clock's Monday
REVISION_COLUMNS = [c.name for c in workday_revisions_table.columns if c.name != "id"]


def setup(make_emulator: MakeEmulator, clock: ManualClock) -> tuple[Emulator, Config, PortalClient]:
    emulator = make_emulator(clock=clock, users=3, rate=0)
    config = make_config(portal(emulator, [1, 2, 3]))
    return emulator, config, PortalClient(config.portals[0], requests.Session(), config.http, clock=clock)


def revisions(engine: Engine) -> list[dict[str, Any]]:
    table = workday_revisions_table
    with engine.connect() as connection:
        rows = connection.execute(select(table).order_by(table.c.id)).mappings()
        return [{name: row[name] for name in REVISION_COLUMNS} for row in rows]


def record_row(engine: Engine, rid: int) -> dict[str, Any]:
    table = workday_records_table.c
    with engine.connect() as connection:
        return dict(
            connection.execute(select(workday_records_table).where(table.record_id == rid)).mappings().one()
        )


def day_row(engine: Engine, user_id: int, work_date: date) -> dict[str, Any]:
    table = workdays_table.c
    query = select(workdays_table).where(table.user_id == user_id, table.work_date == work_date)
    with engine.connect() as connection:
        return dict(connection.execute(query).mappings().one())


def revision(base: dict[str, Any], name: str, old: Any, new: Any) -> dict[str, Any]:
    return {**base, "field": name, "old_value": plain_value(old), "new_value": plain_value(new)}


def test_an_edited_record_keeps_what_it_was_and_its_day_counts_the_correction(
    make_emulator: MakeEmulator, clock: ManualClock, engine: Engine
) -> None:
    emulator, config, client = setup(make_emulator, clock)
    first = clock.now()
    assert reconcile(config, engine, client, 7, first).ok
    rid = record_id(USER, FRIDAY)
    before = record_row(engine, rid)
    day_before = day_row(engine, USER, FRIDAY)
    assert revisions(engine) == [] and day_before["corrections"] == 0

    end = before["end_time"] - timedelta(minutes=30)
    emulator.world.edit_record(rid, end_time=end, break_length=before["break_seconds"] + 600, approved=False)
    clock.advance(3600)
    second = clock.now()
    assert reconcile(config, engine, client, 7, second).ok

    after = record_row(engine, rid)
    worked = int((end - before["start_time"]).total_seconds()) - before["break_seconds"] - 600
    assert (after["end_time"], after["duration_seconds"], after["approved"], after["fetched_at"]) == (
        end, worked, False, second,
    )  # fmt: skip
    common = {"portal": "emu", "user_id": USER, "work_date": FRIDAY, "time_start": before["start_time"],
              "record_id": rid, "changed_at": second, "after_close": False}  # fmt: skip
    by_record = {**common, "source": "record", "old_seen_at": first}
    by_day = {**common, "source": "workday", "old_seen_at": None}  # no poll saw the day
    assert revisions(engine) == [
        revision(by_record, "end_time", before["end_time"], end),
        revision(by_record, "duration_seconds", before["duration_seconds"], worked),
        revision(by_record, "break_seconds", before["break_seconds"], before["break_seconds"] + 600),
        revision(by_record, "approved", True, False),
        revision(by_day, "time_finish", before["end_time"], end),
        revision(by_day, "worked_seconds", before["duration_seconds"], worked),
        revision(by_day, "leaks_seconds", before["break_seconds"], before["break_seconds"] + 600),
        revision(by_day, "pending_approval", False, True),
    ]
    assert day_row(engine, USER, FRIDAY) == {
        **day_before, "time_finish": end, "worked_seconds": worked,
        "leaks_seconds": before["break_seconds"] + 600, "pending_approval": True, "corrections": 1,
    }  # fmt: skip

    clock.advance(3600)  # the same answer again adds nothing
    assert reconcile(config, engine, client, 7, clock.now()).ok
    assert len(revisions(engine)) == 8 and day_row(engine, USER, FRIDAY)["corrections"] == 1


def test_a_moved_start_is_kept_and_the_day_keeps_its_count(
    make_emulator: MakeEmulator, clock: ManualClock, engine: Engine
) -> None:
    emulator, config, client = setup(make_emulator, clock)
    assert reconcile(config, engine, client, 7, clock.now()).ok
    rid = record_id(USER, FRIDAY)
    before = record_row(engine, rid)
    emulator.world.edit_record(rid, break_length=before["break_seconds"] + 60)
    clock.advance(3600)
    assert reconcile(config, engine, client, 7, clock.now()).ok
    start = before["start_time"] - timedelta(minutes=45)
    emulator.world.edit_record(rid, start_time=start)
    clock.advance(3600)
    moved_at = clock.now()
    assert reconcile(config, engine, client, 7, moved_at).ok

    day = day_row(engine, USER, FRIDAY)
    assert (day["time_start"], day["corrections"]) == (start, 2)
    fields = [
        (r["source"], r["field"], r["time_start"]) for r in revisions(engine) if r["changed_at"] == moved_at
    ]
    old = before["start_time"]
    assert fields == [
        ("record", "start_time", old),
        ("record", "duration_seconds", old),
        ("workday", "time_start", old),
        ("workday", "worked_seconds", old),
    ]


def test_a_closed_polled_day_that_changes_later_is_kept(make_emulator: MakeEmulator, engine: Engine) -> None:
    clock = ManualClock(datetime(2026, 11, 13, 23, 0, tzinfo=UTC))  # Saturday 01:00 at user 1's UTC+2
    emulator, config, client = setup(make_emulator, clock)
    poll_portal(client, engine, clock.now)
    polled = day_row(engine, USER, FRIDAY)
    assert (polled["source"], polled["status"], polled["worked_is_estimate"]) == ("polls", "CLOSED", False)
    breaks = polled["leaks_seconds"] + 900
    emulator.world.edit_record(record_id(USER, FRIDAY), break_length=breaks)
    clock.advance(600)
    assert reconcile(config, engine, client, 7, clock.now()).ok
    common = {"portal": "emu", "user_id": USER, "work_date": FRIDAY, "time_start": polled["time_start"],
              "record_id": record_id(USER, FRIDAY), "source": "workday",
              "old_seen_at": polled["last_seen_at"], "changed_at": clock.now(),
              "after_close": False}  # fmt: skip
    assert revisions(engine) == [
        revision(common, "worked_seconds", polled["worked_seconds"], polled["worked_seconds"] - 900),
        revision(common, "leaks_seconds", polled["leaks_seconds"], breaks),
    ]
    assert day_row(engine, USER, FRIDAY)["corrections"] == 1


def test_a_day_closed_and_opened_again_on_its_own_date_is_no_correction(engine: Engine) -> None:
    start = datetime(2026, 11, 16, 7, 0, tzinfo=UTC)
    answer = {"TIME_START": "2026-11-16T09:00:00+02:00", "TIME_LEAKS": "00:00:00", "ACTIVE": True,
              "TZ_OFFSET": 7200}  # fmt: skip
    closed = {
        **answer,
        "STATUS": "CLOSED",
        "TIME_FINISH": "2026-11-16T12:00:00+02:00",
        "DURATION": "03:00:00",
    }
    for when, result in (
        (start + timedelta(hours=3), closed),
        (start + timedelta(hours=4), {**answer, "STATUS": "OPENED"}),
    ):
        row = storage.SnapshotRow("acme", 1, when, parse_status(result))
        storage.save_portal_cycle(engine, None, [row], [])
    assert revisions(engine) == []
    assert day_row(engine, 1, date(2026, 11, 16))["status"] == "OPENED"


def test_report_corrections_lists_a_month_as_a_table_csv_and_json(
    make_emulator: MakeEmulator, clock: ManualClock, engine: Engine, capsys: Any
) -> None:
    emulator, config, client = setup(make_emulator, clock)
    assert reconcile(config, engine, client, 7, clock.now()).ok
    rid = record_id(USER, FRIDAY)
    emulator.world.edit_record(rid, status="EXPIRED")
    clock.advance(3600)
    assert reconcile(config, engine, client, 7, clock.now()).ok
    url = str(engine.url.render_as_string(hide_password=False))
    assert main(["report", "corrections", "--month", "2026-11", "--database", url, "--format", "json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert [(row["source"], row["field"], row["old_value"], row["new_value"]) for row in listed] == [
        ("record", "status", "CLOSED", "EXPIRED"),
        ("workday", "status", "CLOSED", "EXPIRED"),
    ]
    assert main(["report", "corrections", "--month", "2026-10", "--database", url, "--format", "csv"]) == 0
    assert capsys.readouterr().out.count("\n") == 1  # the header only
    assert main(["report", "corrections", "--month", "2026-11", "--user", "2", "--database", url]) == 0
    assert "0 corrections" in capsys.readouterr().out
    assert main(["report", "corrections", "--month", "2026-11", "--database", url]) == 0
    table = capsys.readouterr().out
    assert "CLOSED" in table and "EXPIRED" in table and "2 corrections" in table
