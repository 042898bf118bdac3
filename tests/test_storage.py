"""One user's values never cost the others their rows; only an outage reaches the caller."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, select

from poller import storage
from poller.models import PollError, Snapshot
from poller.status import parse_status

POLLED = datetime(2025, 3, 27, 9, 0, tzinfo=UTC)
HEALTHY = {
    "STATUS": "CLOSED", "TIME_START": "2025-03-27T08:00:01+02:00",
    "TIME_FINISH": "2025-03-27T19:00:01+02:00", "DURATION": "09:37:04", "TIME_LEAKS": "01:22:56",
    "ACTIVE": False, "IP_OPEN": "", "IP_CLOSE": "83.219.151.30", "LAT_OPEN": 53.5, "LON_OPEN": 9.98,
    "LAT_CLOSE": 0, "LON_CLOSE": 0, "TZ_OFFSET": 7200,
}  # fmt: skip
HOSTILE = {
    "STATUS": "OPENED" + "X" * 34, "TIME_START": "9999-12-31T23:00:00-05:00", "TIME_FINISH": None,
    "DURATION": "99999999:00:00", "TIME_LEAKS": "00:10:00", "ACTIVE": True, "IP_OPEN": "1" * 100,
    "IP_CLOSE": "10.0.0.1\x00", "LAT_OPEN": float("nan"), "LON_OPEN": 0, "LAT_CLOSE": 0, "LON_CLOSE": 0,
    "TZ_OFFSET": 99999999999999,
}  # fmt: skip


def healthy_row(user_id: int) -> dict[str, object]:
    return {
        "portal": "acme", "user_id": user_id, "polled_at": POLLED, "status": "CLOSED",
        "time_start": datetime(2025, 3, 27, 6, 0, 1, tzinfo=UTC),
        "time_finish": datetime(2025, 3, 27, 17, 0, 1, tzinfo=UTC), "time_finish_default": None,
        "work_date": date(2025, 3, 27), "duration_seconds": 34624, "time_leaks_seconds": 4976,
        "active": False, "tz_offset": 7200, "ip_open": "", "ip_close": "83.219.151.30",
        "lat_open": 53.5, "lon_open": 9.98, "lat_close": 0.0, "lon_close": 0.0, "record_id": None,
        "raw": HEALTHY, "last_seen_at": POLLED, "seen_count": 1,
    }  # fmt: skip


def stored_rows(engine: Engine) -> list[dict[str, object]]:
    with engine.connect() as connection:
        rows = connection.execute(select(Snapshot.__table__).order_by(Snapshot.user_id)).mappings()
        return [{k: v for k, v in row.items() if k != "id"} for row in rows]


def stored_errors(engine: Engine) -> list[tuple[object, ...]]:
    with engine.connect() as connection:
        query = select(PollError.portal, PollError.user_id, PollError.code).order_by(PollError.user_id)
        return [tuple(row) for row in connection.execute(query)]


def snapshot(user_id: int, raw: dict[str, object]) -> storage.SnapshotRow:
    return storage.SnapshotRow("acme", user_id, POLLED, parse_status(raw))


def test_hostile_values_are_stored_as_nulls_beside_the_healthy_users(engine: Engine) -> None:
    rows = [snapshot(1, HEALTHY), snapshot(2, HOSTILE), snapshot(3, HEALTHY)]
    saved = storage.save_portal_cycle(engine, None, rows, [])
    hostile = {
        "portal": "acme", "user_id": 2, "polled_at": POLLED, "status": "OPENED" + "X" * 26,
        "time_start": None, "time_finish": None, "time_finish_default": None, "work_date": None,
        "duration_seconds": None, "time_leaks_seconds": 600, "active": True, "tz_offset": None,
        "ip_open": "1" * 64, "ip_close": "10.0.0.1", "lat_open": None, "lon_open": 0.0,
        "lat_close": 0.0, "lon_close": 0.0, "record_id": None,
        "raw": {**HOSTILE, "IP_CLOSE": "10.0.0.1\\u0000", "LAT_OPEN": "NaN"},
        "last_seen_at": POLLED, "seen_count": 1,
    }  # fmt: skip
    assert saved == storage.CycleSaved(snapshots=3, errors=0, refused=())
    assert stored_rows(engine) == [healthy_row(1), hostile, healthy_row(3)]
    assert stored_errors(engine) == []


@pytest.mark.parametrize(
    ("field", "value", "stored", "raw"),
    [
        ("TZ_OFFSET", 99999999999999, {"tz_offset": None}, 99999999999999),
        ("TIME_START", "9999-12-31T23:00:00-05:00", {"time_start": None, "work_date": None}, None),
        ("TIME_FINISH", "0001-01-01T00:00:00+05:00", {"time_finish": None}, None),
        ("DURATION", "99999999:00:00", {"duration_seconds": None}, None),
        ("TIME_LEAKS", "2147483648:00:00", {"time_leaks_seconds": None}, None),
        ("STATUS", "S" * 40, {"status": "S" * 32}, None),
        ("IP_OPEN", "1" * 100, {"ip_open": "1" * 64}, None),
        ("IP_OPEN", "10.0.0.1\x00", {"ip_open": "10.0.0.1"}, "10.0.0.1\\u0000"),
        ("IP_CLOSE", "10.0.\ud800.1", {"ip_close": "10.0..1"}, "10.0.\\ud800.1"),
        ("LAT_OPEN", float("nan"), {"lat_open": None}, "NaN"),
        ("LON_CLOSE", float("-inf"), {"lon_close": None}, "-Infinity"),
        ("LAT_CLOSE", 10**30, {"lat_close": None}, 10**30),
    ],
)
def test_each_hostile_value_is_stored_as_what_fits_beside_a_healthy_user(
    engine: Engine, field: str, value: object, stored: dict[str, object], raw: object
) -> None:
    rows = [snapshot(1, HEALTHY), snapshot(2, {**HEALTHY, field: value})]
    saved = storage.save_portal_cycle(engine, None, rows, [])
    assert saved == storage.CycleSaved(snapshots=2, errors=0, refused=())
    hostile = {**healthy_row(2), **stored, "raw": {**HEALTHY, field: value if raw is None else raw}}
    assert stored_rows(engine) == [healthy_row(1), hostile]


def test_a_nul_in_a_raw_key_or_nested_value_is_escaped_in_the_stored_raw(engine: Engine) -> None:
    raw = {**HEALTHY, "ODD\x00KEY": {"list": ["a\x00b", float("inf")]}}
    storage.save_portal_cycle(engine, None, [snapshot(1, raw)], [])
    [row] = stored_rows(engine)
    assert row == {**healthy_row(1), "raw": {**HEALTHY, "ODD\\u0000KEY": {"list": ["a\\u0000b", "Infinity"]}}}


def test_a_row_the_database_refuses_is_a_bad_value_error_and_the_rest_is_stored(engine: Engine) -> None:
    parsed = parse_status(HEALTHY)
    refused = replace(parsed, values={**parsed.values, "duration_seconds": 2**70})  # past any INTEGER
    rows = [snapshot(1, HEALTHY), storage.SnapshotRow("acme", 2, POLLED, refused), snapshot(3, HEALTHY)]
    user_not_found = storage.ErrorRow("acme", 4, POLLED, "", 400, "User not found")
    saved = storage.save_portal_cycle(engine, None, rows, [user_not_found])
    assert stored_rows(engine) == [healthy_row(1), healthy_row(3)]
    assert stored_errors(engine) == [("acme", 2, "BAD_VALUE"), ("acme", 4, "")]
    [bad_value] = saved.refused
    assert (saved.snapshots, saved.errors) == (2, 2)
    assert bad_value == storage.ErrorRow("acme", 2, POLLED, "BAD_VALUE", None, bad_value.message)
    assert bad_value.message.startswith("snapshot refused: ")


def test_in_changes_mode_a_refused_row_leaves_the_others_extended(engine: Engine) -> None:
    later = datetime(2025, 3, 27, 9, 1, tzinfo=UTC)
    storage.save_portal_cycle(engine, None, [snapshot(1, HEALTHY), snapshot(3, HEALTHY)], [], "changes")
    parsed = parse_status(HEALTHY)
    refused = replace(parsed, values={**parsed.values, "tz_offset": 2**70})
    rows = [
        storage.SnapshotRow("acme", 1, later, parsed),
        storage.SnapshotRow("acme", 2, later, refused),
        storage.SnapshotRow("acme", 3, later, parsed),
    ]
    saved = storage.save_portal_cycle(engine, None, rows, [], "changes")
    assert (saved.snapshots, saved.errors, len(saved.refused)) == (2, 1, 1)
    extended = {"last_seen_at": later, "seen_count": 2}
    assert stored_rows(engine) == [{**healthy_row(1), **extended}, {**healthy_row(3), **extended}]
    assert stored_errors(engine) == [("acme", 2, "BAD_VALUE")]


def test_an_error_message_with_a_nul_is_stored_without_it(engine: Engine) -> None:
    row = storage.ErrorRow("acme", 4, POLLED, "ODD\x00", 400, "User\x00 not found\ud800")
    saved = storage.save_portal_cycle(engine, None, [], [row])
    assert saved == storage.CycleSaved(snapshots=0, errors=1, refused=())
    with engine.connect() as connection:
        stored = connection.execute(select(PollError.code, PollError.message)).one()
    assert tuple(stored) == ("ODD", "User not found")


def test_a_database_that_is_down_is_an_outage_for_the_caller(tmp_path: Path) -> None:
    engine = storage.make_engine(f"sqlite:///{tmp_path / 'missing' / 'dir' / 'db.sqlite3'}")
    with pytest.raises(storage.DatabaseUnavailable):
        storage.save_portal_cycle(engine, None, [snapshot(1, HEALTHY)], [])
    engine.dispose()


def test_a_database_without_the_tables_is_not_taken_for_a_bad_value(database_url: str) -> None:
    engine = storage.make_engine(database_url)  # never upgraded
    with pytest.raises(storage.DatabaseUnavailable):
        storage.save_portal_cycle(engine, None, [snapshot(1, HEALTHY)], [])
    engine.dispose()


def test_a_replayed_cycle_adds_no_error_row_and_another_cycle_does(engine: Engine) -> None:
    run_one = storage.save_run_started(engine, POLLED)
    run_two = storage.save_run_started(engine, POLLED)
    errors = [
        storage.ErrorRow("acme", 4, POLLED, "USER_NOT_FOUND", 400, "User not found"),
        storage.ErrorRow("acme", None, POLLED, "QUERY_LIMIT_EXCEEDED", 503, "Too many requests"),
    ]
    for run_id in (run_one, run_one, run_two):  # the spool replays run one's cycle once
        assert storage.save_portal_cycle(engine, run_id, [], errors).errors == 2
    with engine.connect() as connection:
        query = select(PollError.run_id, PollError.user_id, PollError.code, PollError.error_key)
        rows = [tuple(row) for row in connection.execute(query.order_by(PollError.id))]
    moment = "2025-03-27T09:00:00.000000Z"
    assert rows == [
        (run, user, code, f"{run}|{user or '-'}|{moment}|{code}")
        for run in (run_one, run_two)
        for user, code in ((4, "USER_NOT_FOUND"), (None, "QUERY_LIMIT_EXCEEDED"))
    ]


@pytest.mark.parametrize("mode", ["all", "changes"])
def test_a_replayed_spool_adds_no_snapshot_and_counts_no_poll_twice(engine: Engine, mode: str) -> None:
    later = [datetime(2025, 3, 27, 9, minute, tzinfo=UTC) for minute in (0, 5, 10)]
    cycles = [
        [storage.SnapshotRow("acme", user, when, parse_status(HEALTHY)) for user in (1, 2)] for when in later
    ]
    changed = {**HEALTHY, "ACTIVE": True}
    cycles.append([storage.SnapshotRow("acme", 1, later[2] + timedelta(minutes=5), parse_status(changed))])
    for cycle in cycles:
        storage.save_portal_cycle(engine, None, cycle, [], mode)  # type: ignore[arg-type]
    before = stored_rows(engine)
    for cycle in cycles:  # a crash after the commit, before the spool file was rewritten
        storage.save_portal_cycle(engine, None, cycle, [], mode)  # type: ignore[arg-type]
    assert stored_rows(engine) == before
    if mode == "changes":
        assert [(row["user_id"], row["seen_count"], row["last_seen_at"]) for row in before] == [
            (1, 3, later[2]), (1, 1, later[2] + timedelta(minutes=5)), (2, 3, later[2])
        ]  # fmt: skip
    else:
        assert len(before) == 7
