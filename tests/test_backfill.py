"""Backfill and reconcile from `timeman.record.list`, against the emulator, on SQLite and PostgreSQL.

The emulator and the poller share a ManualClock, so waits for the bucket are instant and the
emulator's world tells exactly which records a portal holds at any moment.
"""

from __future__ import annotations

import math
import shutil
import signal
import subprocess
import sys
import threading
from datetime import UTC, date, datetime, timedelta
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
import requests
from conftest import MakeEmulator, make_config, portal, wait_until
from sqlalchemy import Engine, select

from poller import commands, storage
from poller.bitrix import PortalClient
from poller.bitrix.records import batch_support, fetch_records, record_window
from poller.cli import main
from poller.clock import ManualClock
from poller.config import Config
from poller.emulator import Emulator, norm_methods
from poller.emulator import absences as emulated_absences
from poller.models import backfill_progress_table, portal_calendars_table, workday_records_table
from poller.poll.backfill import (
    DAEMON_SHARE,
    BackfillReport,
    PortalBackfill,
    backfill,
    reconcile,
)
from poller.poll.directory_refresh import DirectoryRefresher
from poller.render.backfill import backfill_summary, calendar_line, portal_line
from poller.render.progress import ProgressDisplay
from poller.spool.queue import Spool

OCTOBER = (date(2026, 10, 1), date(2026, 10, 31))
NOW = datetime(2026, 11, 16, 9, 30, tzinfo=UTC)  # conftest's MONDAY_MORNING


def setup(
    make_emulator: MakeEmulator, clock: ManualClock, users: int = 30, **settings: Any
) -> tuple[Emulator, Config, PortalClient]:
    """An emulated portal of `users` users (all of them configured), a config and its client."""
    settings.setdefault("rate", 0)
    emulator = make_emulator(clock=clock, users=users, **settings)
    config = make_config(portal(emulator, list(range(1, users + 1))))
    return emulator, config, client_of(config, clock)


def client_of(config: Config, clock: ManualClock) -> PortalClient:
    return PortalClient(config.portals[0], requests.Session(), config.http, clock=clock)


def run(
    config: Config, engine: Engine, client: PortalClient, span: tuple[date, date] = OCTOBER, **options: Any
) -> PortalBackfill:
    report = backfill(config, engine, [client], since=span[0], until=span[1], **options)
    (state,) = report.portals
    return state


def truth(
    emulator: Emulator,
    users: range | list[int],
    span: tuple[date, date],
    fetched_at: datetime,
    at: datetime,
    portal_name: str = "emu",
) -> list[dict[str, Any]]:
    """The workday_records rows the portal's records in the window of `span` make, as of `at`."""
    start, end = record_window(*span)
    rows = []
    for user_id in users:
        for record in emulator.world.records_started(user_id, start, end, at):
            if record.start_time >= end:
                continue
            item = record.item()
            rows.append(
                {
                    "portal": portal_name,
                    "record_id": record.id,
                    "user_id": user_id,
                    "start_time": record.start_time,
                    "end_time": record.end_time,
                    "duration_seconds": record.duration,
                    "break_seconds": record.break_length,
                    "status": record.status,
                    "approved": record.approved,
                    "work_date": datetime.fromisoformat(item["startTime"]).date(),
                    "raw": item,
                    "fetched_at": fetched_at,
                }
            )
    return sorted(rows, key=lambda row: row["record_id"])


def stored(engine: Engine) -> list[dict[str, Any]]:
    table = workday_records_table
    with engine.connect() as connection:
        rows = connection.execute(select(table).order_by(table.c.portal, table.c.record_id)).mappings()
        return [dict(row) for row in rows]


# -- what a backfill stores ---------------------------------------------------------------


def test_a_backfill_of_a_month_never_polled_equals_the_portals_records(
    make_emulator: MakeEmulator, clock: ManualClock, engine: Engine
) -> None:
    emulator, config, client = setup(make_emulator, clock)

    state = run(config, engine, client)

    expected = truth(emulator, range(1, 31), OCTOBER, NOW, NOW)
    assert stored(engine) == expected
    assert state.ok and state.error is None
    assert (state.users, state.done, state.skipped) == (30, 30, 0)
    assert (state.records, state.inserted, state.updated) == (len(expected), len(expected), 0)
    assert state.requests == 1  # 30 users, one REST 3.0 batch
    # Every local day of October, in every user's zone, is in; user 2 has no records at all.
    for user_id in range(1, 31):
        ids = {row["record_id"] for row in expected if row["user_id"] == user_id}
        assert {r.id for r in emulator.world.records(user_id, *OCTOBER, NOW)} <= ids
    assert not [row for row in expected if row["user_id"] == 2]


def test_users_with_more_than_50_records_get_their_next_pages_in_the_next_batch(
    make_emulator: MakeEmulator, clock: ManualClock, engine: Engine
) -> None:
    emulator, config, client = setup(make_emulator, clock, users=60)
    quarter = (date(2026, 7, 1), date(2026, 9, 30))  # about 66 workdays: two pages per user

    state = run(config, engine, client, quarter)

    expected = truth(emulator, range(1, 61), quarter, NOW, NOW)
    assert stored(engine) == expected
    per_user = [sum(1 for row in expected if row["user_id"] == u) for u in range(1, 61)]
    extra_pages = sum(count // 50 for count in per_user)
    assert extra_pages > 50
    assert emulator.stats.calls["timeman.record.list"] == 60 + extra_pages
    assert state.requests <= math.ceil(60 / 50) + extra_pages
    assert state.requests == math.ceil((60 + extra_pages) / 50) + 1  # the last 10 users' second pages


def test_one_month_of_120_users_costs_one_request_per_50_users(
    make_emulator: MakeEmulator, clock: ManualClock, engine: Engine
) -> None:
    emulator, config, client = setup(make_emulator, clock, users=120)

    state = run(config, engine, client)

    assert state.requests == 3  # record batches; then the calendar and ceil(120/50) absence requests
    # the directory first (ceil(120/50) user.get pages + department.get), the calendar, the absences
    assert emulator.stats.requests == 4 + 3 + 1 + 3
    line = calendar_line(state)
    assert line is not None and line.startswith("calendar 2026 (portal), ")
    assert line.endswith(" absence days (4 requests)")
    assert emulator.stats.calls["timeman.record.list"] == 120
    assert stored(engine) == truth(emulator, range(1, 121), OCTOBER, NOW, NOW)


def test_a_backfilled_month_has_its_absences_and_its_calendar_year_as_a_live_one_would(
    make_emulator: MakeEmulator, clock: ManualClock, engine: Engine
) -> None:
    _, config, client = setup(make_emulator, clock, users=8)
    span = (date(2025, 12, 1), date(2026, 1, 31))  # across a new year: both years' calendars

    state = run(config, engine, client, span)

    expected = set()
    for user_id in range(1, 9):
        for absence in emulated_absences.absences_between(user_id, *span):
            expected |= {
                (user_id, absence.first + timedelta(days=n))
                for n in range((absence.last - absence.first).days + 1)
                if span[0] <= absence.first + timedelta(days=n) <= span[1]
            }
    stored = {(row.user_id, row.day) for row in storage.get_absences(engine, "emu", *span)}
    assert stored == expected and stored
    assert storage.get_calendar_days(engine, "emu", date(2025, 12, 1)).source == "portal"
    january = storage.get_calendar_days(engine, "emu", date(2026, 1, 1))
    assert [day.day for day, kind in january.days.items() if kind == "holiday"] == [1, 2, 7]
    assert state.ok and calendar_line(state) == (
        f"calendar 2025 (portal), 2026 (portal), {len(expected)} absence days (2 requests)"
    )


def test_a_backfill_without_the_calendar_scope_keeps_its_records_and_says_what_it_skipped(
    make_emulator: MakeEmulator, clock: ManualClock, engine: Engine
) -> None:
    emulator, config, client = setup(make_emulator, clock, users=8, calendar_scope=False)

    state = run(config, engine, client)

    assert state.ok and state.records > 0
    assert calendar_line(state) == (
        "calendar none, 0 absence days; no `calendar` scope: the portal's calendar and absences "
        "skipped (1 request)"
    )
    assert emulator.stats.calls["calendar.accessibility.get"] == 0


def test_a_backfill_adds_no_calendar_version_to_a_year_already_stored(
    make_emulator: MakeEmulator, clock: ManualClock, engine: Engine
) -> None:
    _, config, client = setup(make_emulator, clock, users=8)
    seen = datetime(2025, 3, 1, tzinfo=UTC)  # what the portal said then: not today's settings
    storage.save_calendar(
        engine, "emu", 2025, holidays=[date(2025, 1, 1)], moved_workdays=[], week_holidays=[5, 6],
        source="portal", seen_at=seen,
    )  # fmt: skip

    state = run(config, engine, client, (date(2025, 12, 1), date(2026, 1, 31)))

    line = calendar_line(state)
    assert line is not None and line.startswith("calendar 2026 (portal), ")  # 2025 was stored already
    c = portal_calendars_table.c
    with engine.connect() as connection:
        rows = connection.execute(select(c.year, c.holidays, c.valid_from, c.valid_to).order_by(c.year)).all()
    assert [(year, valid_to) for year, _, _, valid_to in rows] == [(2025, None), (2026, None)]
    assert rows[0][1:3] == ("2025-01-01", seen)  # the stored year as it was


def test_a_failed_calendar_read_in_a_backfill_keeps_stored_years_and_still_reads_absences(
    make_emulator: MakeEmulator, clock: ManualClock, engine: Engine
) -> None:
    emulator = make_emulator(clock=clock, users=8, rate=0)
    users = list(range(1, 9))
    config = make_config(portal(emulator, users, holidays_country="DE", extra_holidays=["2026-10-05"]))
    client = client_of(config, clock)
    norm_methods.override(emulator, "calendar.settings.get", "not an object")

    state = run(config, engine, client)

    expected = {
        (user_id, absence.first + timedelta(days=n))
        for user_id in users
        for absence in emulated_absences.absences_between(user_id, *OCTOBER)
        for n in range((absence.last - absence.first).days + 1)
        if OCTOBER[0] <= absence.first + timedelta(days=n) <= OCTOBER[1]
    }
    assert {(row.user_id, row.day) for row in storage.get_absences(engine, "emu", *OCTOBER)} == expected
    assert expected
    line = calendar_line(state)
    assert line is not None and line.startswith(f"calendar 2026 (config), {len(expected)} absence days; ")
    assert "calendar not read: " in line and "is not an object" in line
    october = storage.get_calendar_days(engine, "emu", date(2026, 10, 1))
    assert october.source == "config"  # the config's extra holiday alone: no `holidays` package
    assert [day.day for day, kind in october.days.items() if kind == "holiday"] == [5]


# -- resume and re-runs ---------------------------------------------------------------------


def test_an_interrupted_backfill_resumed_stores_the_same_rows_and_skips_finished_users(
    make_emulator: MakeEmulator, clock: ManualClock, engine: Engine
) -> None:
    emulator, config, client = setup(make_emulator, clock)

    def interrupt_after_seven(state: PortalBackfill) -> None:
        if state.done >= 7:
            raise KeyboardInterrupt

    report = backfill(
        config, engine, [client], since=OCTOBER[0], until=OCTOBER[1], progress=interrupt_after_seven
    )

    assert report.interrupted and not report.ok
    assert report.portals[0].done == 7
    with engine.connect() as connection:
        finished = set(connection.execute(select(backfill_progress_table.c.user_id)).scalars())
    assert finished == set(range(1, 8))
    answered_before = dict(emulator.stats.records_answered)

    resumed = run(config, engine, client)

    assert (resumed.skipped, resumed.done, resumed.ok) == (7, 23, True)
    for user_id in range(1, 8):  # finished users are not read again
        assert emulator.stats.records_answered[user_id] == answered_before[user_id] == 1
    assert stored(engine) == truth(emulator, range(1, 31), OCTOBER, NOW, NOW)


def test_a_stop_request_ends_the_backfill_after_the_current_request(
    make_emulator: MakeEmulator, clock: ManualClock, engine: Engine
) -> None:
    emulator, config, client = setup(make_emulator, clock, users=120)
    stop = threading.Event()

    def stop_after_the_first_user(state: PortalBackfill) -> None:
        if state.done:
            stop.set()

    report = backfill(
        config,
        engine,
        [client],
        since=OCTOBER[0],
        until=OCTOBER[1],
        progress=stop_after_the_first_user,
        stop=stop,
    )

    (state,) = report.portals
    assert report.interrupted and state.stopped
    assert (state.done, state.left, state.requests) == (50, 70, 1)  # the first batch is saved whole
    assert "stopped with 70 users left" in portal_line(state)
    with engine.connect() as connection:
        finished = set(connection.execute(select(backfill_progress_table.c.user_id)).scalars())
    assert finished == set(range(1, 51))

    resumed = run(config, engine, client)
    assert (resumed.skipped, resumed.done, resumed.requests) == (50, 70, 2)
    assert stored(engine) == truth(emulator, range(1, 121), OCTOBER, NOW, NOW)


def test_a_rerun_adds_nothing(make_emulator: MakeEmulator, clock: ManualClock, engine: Engine) -> None:
    _, config, client = setup(make_emulator, clock)
    run(config, engine, client)
    rows = stored(engine)

    again = run(config, engine, client)
    assert (again.skipped, again.done, again.requests, again.records) == (30, 0, 0, 0)

    overlapping = run(config, engine, client, (date(2026, 10, 2), date(2026, 10, 30)))
    assert overlapping.done == 30 and overlapping.records > 0
    assert (overlapping.inserted, overlapping.updated) == (0, 0)
    assert overlapping.unchanged == overlapping.records
    assert stored(engine) == rows


def test_users_all_takes_the_ids_from_user_get_without_a_directory(
    make_emulator: MakeEmulator, clock: ManualClock, engine: Engine
) -> None:
    emulator = make_emulator(clock=clock, users=12, rate=0)
    config = make_config(portal(emulator, "all"))
    client = client_of(config, clock)

    state = run(config, engine, client)

    assert state.users == 12 and state.ok
    assert stored(engine) == truth(emulator, range(1, 13), OCTOBER, NOW, NOW)


def test_given_users_are_read_instead_of_the_configured_ones(
    make_emulator: MakeEmulator, clock: ManualClock, engine: Engine
) -> None:
    emulator, config, client = setup(make_emulator, clock)

    state = run(config, engine, client, users=[5, 1, 7, 5])

    assert (state.users, state.done) == (3, 3)
    assert stored(engine) == truth(emulator, [1, 5, 7], OCTOBER, NOW, NOW)


def test_an_oauth_portal_sends_the_batch_with_its_token_and_refreshes_it(
    make_emulator: MakeEmulator, clock: ManualClock, engine: Engine
) -> None:
    emulator = make_emulator(clock=clock, users=30, rate=0)
    config = make_config(portal(emulator, list(range(1, 31)), oauth=True))
    client = client_of(config, clock)
    DirectoryRefresher(engine, 24).refresh_if_due(client)  # so the batch is what meets the expiry
    emulator.expire_tokens()

    state = run(config, engine, client)

    assert state.ok and state.requests == 2  # refused as expired, then sent again with a new token
    assert emulator.stats.token_refreshes == 1 and batch_support(client) is True
    assert stored(engine) == truth(emulator, range(1, 31), OCTOBER, NOW, NOW, "oauth")


# -- portals that cannot do it all ------------------------------------------------------------


def test_a_portal_refusing_the_batch_gets_single_calls_remembered_per_client(
    make_emulator: MakeEmulator, clock: ManualClock, engine: Engine
) -> None:
    emulator, config, client = setup(make_emulator, clock, rest_v3_batch=False)

    state = run(config, engine, client)

    assert state.ok and state.requests == 1 + 30  # the refused batch, then one call per user
    assert batch_support(client) is False
    assert stored(engine) == truth(emulator, range(1, 31), OCTOBER, NOW, NOW)
    before = client.requests_sent
    fetched = fetch_records(client, [1, 3], *OCTOBER)
    assert client.requests_sent - before == 2 and fetched.done == [1, 3]


@pytest.mark.parametrize(
    ("settings", "line"),
    [
        (
            {"rest_v3": False},
            "portal emu: timeman.record.list is not available (REST 3.0 missing: ERROR_METHOD_NOT_FOUND); "
            "backfill needs a Bitrix24 build with REST 3.0",
        ),
        (
            {"records_access": False},
            "portal emu: timeman.record.list refused (BITRIX_REST_V3_EXCEPTION_ACCESSDENIEDEXCEPTION): the "
            "webhook's or app's user lacks the right to read work time records (read all records, or by "
            "subordination)",
        ),
        (
            {"records_access": False, "rest_v3_batch": False},
            "portal emu: timeman.record.list refused (BITRIX_REST_V3_EXCEPTION_ACCESSDENIEDEXCEPTION, HTTP "
            "403): the webhook's or app's user lacks the right to read work time records (read all records, "
            "or by subordination)",
        ),
    ],
)
def test_a_portal_that_cannot_serve_the_records_gets_one_clear_line(
    make_emulator: MakeEmulator,
    clock: ManualClock,
    engine: Engine,
    caplog: pytest.LogCaptureFixture,
    settings: dict[str, Any],
    line: str,
) -> None:
    _, config, client = setup(make_emulator, clock, users=120, **settings)

    state = run(config, engine, client)

    assert state.error == line
    assert state.requests <= 2 and state.done == 0 and not state.ok
    assert state.failed == {}  # the one line stands for every user
    assert stored(engine) == []
    assert portal_line(state).endswith(f"; {line}")
    assert [r.getMessage() for r in caplog.records if r.levelname == "ERROR"] == [line]


# -- limits ---------------------------------------------------------------------------------


def test_single_calls_within_a_strict_bucket_never_hit_query_limit_exceeded(
    make_emulator: MakeEmulator, clock: ManualClock, engine: Engine
) -> None:
    emulator, config, client = setup(make_emulator, clock, users=150, rate=2, burst=50, rest_v3_batch=False)
    started = clock.monotonic()

    state = run(config, engine, client)

    assert state.ok and state.requests == 151
    assert emulator.stats.query_limit_exceeded == 0 and client.rate_limited == 0
    waited = clock.monotonic() - started
    assert waited >= (151 - 50) / 2  # the bucket was used to its ceiling, not beyond
    assert 151 / (50 + 2 * waited) >= 0.9


def test_reconcile_rereads_the_last_days_and_updates_changed_records(
    make_emulator: MakeEmulator, clock: ManualClock, engine: Engine
) -> None:
    emulator, config, client = setup(make_emulator, clock)
    span = (date(2026, 11, 14), date(2026, 11, 16))
    first = reconcile(config, engine, client, 2, clock.now())
    assert first.ok and (first.date_from, first.date_to) == span
    morning = {row["record_id"]: row for row in truth(emulator, range(1, 31), span, NOW, NOW)}
    assert stored(engine) == list(morning.values())
    assert any(row["end_time"] is None for row in morning.values())  # opened this morning

    clock.advance(12 * 3600)  # evening: this morning's days have closed
    evening = clock.now()
    second = reconcile(config, engine, client, 2, evening)

    expected = []
    for row in truth(emulator, range(1, 31), span, evening, evening):
        before = morning.get(row["record_id"])
        same = before is not None and {**before, "fetched_at": evening} == row
        expected.append({**row, "fetched_at": NOW} if same else row)
    assert stored(engine) == expected
    changed = [row for row in expected if row["fetched_at"] == evening]
    assert second.updated == sum(1 for row in changed if row["record_id"] in morning) > 0
    assert second.inserted == sum(1 for row in changed if row["record_id"] not in morning)
    with engine.connect() as connection:  # reconcile does not mark users finished
        assert connection.execute(select(backfill_progress_table)).all() == []


def test_reconcile_leaves_a_share_of_the_bucket_to_the_live_poll(
    make_emulator: MakeEmulator, clock: ManualClock, engine: Engine
) -> None:
    emulator, config, client = setup(make_emulator, clock, users=60, rate=2, burst=50, rest_v3_batch=False)
    started = clock.monotonic()

    state = reconcile(config, engine, client, 2, clock.now())

    assert state.ok and state.requests == 61
    assert clock.monotonic() - started >= (61 - 1) / (2 * DAEMON_SHARE)
    assert emulator.stats.query_limit_exceeded == 0


def test_reconcile_of_zero_days_does_nothing(
    make_emulator: MakeEmulator, clock: ManualClock, engine: Engine
) -> None:
    emulator, config, client = setup(make_emulator, clock)
    state = reconcile(config, engine, client, 0, clock.now())
    assert state.requests == 0 and emulator.stats.requests == 0


# -- progress -------------------------------------------------------------------------------


class _Terminal(StringIO):
    def isatty(self) -> bool:
        return True


def test_the_progress_bar_shows_users_and_records_on_a_terminal() -> None:
    screen = _Terminal()
    state = PortalBackfill("acme", *OCTOBER, users=100)
    with ProgressDisplay(screen) as display:
        display(state)
        state.done, state.records, state.requests = 40, 880, 1
        display(state)
    shown = screen.getvalue()
    assert "backfill acme" in shown and "40/100" in shown and "880 records" in shown


def test_progress_off_a_terminal_is_a_log_line_now_and_then(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level("INFO", logger="poller.render.progress")
    state = PortalBackfill("acme", *OCTOBER, users=100)
    with ProgressDisplay(StringIO(), interval=3600) as display:
        display(state)
        state.done = 40
        display(state)  # within the interval: nothing
    assert [r.getMessage() for r in caplog.records] == [
        "backfill acme: 0 of 100 users, 0 records, 0 requests"
    ]


def test_the_report_summarises_each_portal_in_one_line() -> None:
    state = PortalBackfill("acme", *OCTOBER, users=1000, done=1000, records=21_345, inserted=21_000)
    state.updated, state.requests, state.seconds = 345, 25, 48.21
    assert backfill_summary(BackfillReport(*OCTOBER, [state])) == (
        "backfill acme: 1000 users, 21,345 records (21,000 new, 345 updated), 25 requests, 48.2 s"
    )


# -- the command ----------------------------------------------------------------------------


def write_config(
    tmp_path: Path, head: Path, emulator: Emulator, users: object = "all", **keys: object
) -> Path:
    """A config file for the emulator's webhook and a SQLite file at the newest schema (a copy
    of `head`, conftest's `head_sqlite_file`: `db upgrade` has tests of its own)."""
    database = tmp_path / "backfill.sqlite3"
    path = tmp_path / "config.toml"
    extra = "".join(f"{key} = {value!r}\n" for key, value in keys.items())
    path.write_text(
        f'[database]\nurl = "sqlite:///{database}"\n'
        f'[[portals]]\nname = "emu"\nwebhook_url = "{emulator.webhook_url}"\nusers = {users!r}\n'.replace(
            "'", '"'
        )
        + extra
    )
    path.chmod(0o600)
    if not database.exists():
        shutil.copyfile(head, database)
    return path


def test_the_backfill_command_prints_the_summary_and_exits_0(
    make_emulator: MakeEmulator, tmp_path: Path, head_sqlite_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    emulator = make_emulator(users=10, rate=0)
    config = write_config(tmp_path, head_sqlite_file, emulator)
    capsys.readouterr()

    code = main(
        ["-c", str(config), "backfill", "--since", "2026-10-01", "--until", "2026-10-31", "--users", "1,5,7"]
    )

    out = capsys.readouterr().out
    assert code == 0
    assert out.startswith("backfill emu: 3 users, ") and ", 1 request, " in out


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (
            ["--since", "2026-10-31", "--until", "2026-10-01"],
            "--since 2026-10-31 is after --until 2026-10-01",
        ),
        (["--since", "2026-10-01", "--users", "1,x"], "--users"),
        (["--since", "2026-10-01", "--portal", "nope"], "--portal nope: no such portal"),
        (["--until", "2026-10-01"], "--since"),
    ],
)
def test_bad_backfill_arguments_exit_2_with_one_line(
    make_emulator: MakeEmulator,
    tmp_path: Path,
    head_sqlite_file: Path,
    capsys: pytest.CaptureFixture[str],
    arguments: list[str],
    message: str,
) -> None:
    config = write_config(tmp_path, head_sqlite_file, make_emulator(users=3, rate=0))
    capsys.readouterr()
    assert main(["-c", str(config), "backfill", *arguments]) == 2
    assert message in capsys.readouterr().err


def test_a_running_daemon_holding_the_spool_does_not_stop_a_backfill(
    make_emulator: MakeEmulator, tmp_path: Path, head_sqlite_file: Path
) -> None:
    spool = tmp_path / "spool.jsonl"
    shutil.copyfile(head_sqlite_file, tmp_path / "x.sqlite3")  # at head, as after `db upgrade`
    config = make_config(
        portal(make_emulator(users=3, rate=0), [1, 2]),
        database_url=f"sqlite:///{tmp_path / 'x.sqlite3'}",
        storage={"spool_path": str(spool)},
    )
    with Spool(spool):  # as the daemon holds it
        report = commands.backfill(config, *OCTOBER)
    assert report.ok


def test_the_backfill_command_exits_1_with_one_line_when_the_portal_lacks_rest_v3(
    make_emulator: MakeEmulator, tmp_path: Path, head_sqlite_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write_config(tmp_path, head_sqlite_file, make_emulator(users=3, rate=0, rest_v3=False))
    capsys.readouterr()
    assert main(["-c", str(config), "backfill", "--since", "2026-10-01"]) == 1
    captured = capsys.readouterr()
    assert "REST 3.0 missing: ERROR_METHOD_NOT_FOUND" in captured.out
    assert "Traceback" not in captured.err


def test_ctrl_c_stops_the_backfill_after_the_current_request_and_says_how_to_resume(
    make_emulator: MakeEmulator, tmp_path: Path, head_sqlite_file: Path
) -> None:
    # A real process for the real signal; the emulator holds the fourth user's request until
    # the backfill has seen the signal.
    emulator = make_emulator(users=60, rate=0, rest_v3_batch=False)
    # The emulator has no limit: a bucket of 100/s spares the resumed run 8 s of pacing.
    config = write_config(tmp_path, head_sqlite_file, emulator, list(range(1, 61)), requests_per_second=100)
    command = [sys.executable, "-m", "poller", "-c", str(config), "backfill", "--since", "2026-10-01"]
    command += ["--until", "2026-10-31"]
    emulator.hold("api/timeman.record.list", after=3)
    log = tmp_path / "backfill.log"
    with log.open("w") as errors:
        process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=errors, text=True)
    try:
        assert emulator.wait_held(1, timeout=60), log.read_text()
        process.send_signal(signal.SIGINT)
        wait_until(lambda: "SIGINT received" in log.read_text(), timeout=30, what="the signal seen")
        emulator.release()
        out, _ = process.communicate(timeout=60)
    finally:
        emulator.release()
        if process.poll() is None:
            process.kill()
    err = log.read_text()
    assert process.returncode == 130, err
    assert out.startswith("backfill emu: 60 users, ") and "stopped with 56 users left" in out
    resume = "to resume: timeman-poller backfill --since 2026-10-01 --until 2026-10-31\n"
    assert out.endswith(resume)
    assert "Traceback" not in err
    assert len(emulator.stats.records_answered) == 4  # the request held at the signal, none after

    # The same command resumes where it stopped and reads no finished user again.
    finished = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)
    assert finished.returncode == 0, finished.stderr
    assert "users already done before" in finished.stdout
    assert len(emulator.stats.records_answered) == 60
    assert set(emulator.stats.records_answered.values()) == {1}  # the call in flight at Ctrl-C was saved


def test_fetch_records_without_a_callback_keeps_the_items(
    make_emulator: MakeEmulator, clock: ManualClock
) -> None:
    emulator, _, client = setup(make_emulator, clock, users=4)
    fetched = fetch_records(client, [1, 2, 3, 4, 4], *OCTOBER)
    assert fetched.done == [1, 2, 3, 4] and not fetched.failed and fetched.portal_error is None
    assert fetched.items[2] == []
    start, end = record_window(*OCTOBER)
    expected = [r.item() for r in emulator.world.records_started(3, start, end) if r.start_time < end]
    assert fetched.items[3] == expected
    assert timedelta(0) < end - start - timedelta(days=31) <= timedelta(days=2, hours=2)
