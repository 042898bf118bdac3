"""The write path's short cuts store what SQLAlchemy's own path stores: the directory read once,
the raw answer encoded once, a cycle's snapshots copied straight into their table."""

from __future__ import annotations

import enum
import json
import uuid
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, func, insert, select, text
from sqlalchemy.exc import StatementError
from test_bulk import SNAPSHOT_COLUMNS, snapshot, stored_text
from test_directory import DEPARTMENTS, PORTAL, user, user_row

from poller import storage
from poller.models import snapshots_table, users_table
from poller.status import parse_status
from poller.storage import copy_in
from poller.storage.bulk import insert_rows, insert_tuples
from poller.storage.directory import names_of, zones_of
from poller.storage.listing import listed_users
from poller.storage.raw_json import raw_conversion, storable_raw

NOW = datetime(2026, 11, 20, 8, 0, tzinfo=UTC)


def nested(levels: int) -> Any:
    """An object `levels` deep: {"a": {"a": ... "x"}}."""
    value: Any = "x"
    for _ in range(levels):
        value = {"a": value}
    return value


ODD_RAWS: list[Any] = [
    {"STATUS": "OPENED", "LAT": 53.5, "ID": 7, "ACTIVE": True, "IP": None},
    {"STATUS": "NUL\x00 inside", "ID": 1},
    {"STATUS": "lone \ud800 half"},
    {"STATUS": "a pair 😀 and é"},
    {"STATUS": "a backslash \\u0000 as text"},
    {"LAT": float("nan"), "LON": float("inf")},
    {"IP": None, "LAT": float("nan"), "NOTE": "a null in text"},  # orjson writes NaN as null
    {"IP": "null", "LAT": None},
    {"nested": {"a": [1, None, {"b": "\x00"}]}},
    {1: "an int key", None: "a null key"},
    [1, "a list"],
    "a string",
    {"NOTE": "{braces} and [brackets] as text", "ID": 2},
    {"DEEP": nested(40)},  # deeper than storable_raw keeps: cut to "<nested too deep>"
    {"DEEP": [nested(3)]},
]


def test_the_raw_answer_is_encoded_as_sqlalchemy_stores_its_storable_form(engine: Engine) -> None:
    convert = raw_conversion(engine.dialect)
    process = snapshots_table.c.raw.type._cached_bind_processor(engine.dialect)

    for raw in ODD_RAWS:
        expected = process(storable_raw(raw))
        expected = expected if isinstance(expected, str) else json.dumps(expected.obj)  # psycopg's Json
        assert json.loads(convert(raw)) == json.loads(expected), raw  # one document (orjson's spacing)


def test_a_cycle_with_odd_raw_answers_stores_what_sqlalchemy_stores(engine: Engine) -> None:
    rows = [
        storage.SnapshotRow(PORTAL, user_id, NOW, parse_status({"STATUS": "OPENED"}))
        for user_id in range(1, copy_in.MIN_ROWS + 11)
    ]
    odd = [
        replace(row, parsed=replace(row.parsed, raw=raw))
        for row, raw in zip(rows, ODD_RAWS * 10, strict=False)
    ]
    storage.save_portal_cycle(engine, None, odd, [])
    with engine.begin() as connection:  # the same rows through SQLAlchemy, under other user ids
        connection.execute(
            insert(snapshots_table),
            [{**storage.snapshot_values(row), "user_id": row.user_id + 1000} for row in odd],
        )

    raw_at = [name for name in SNAPSHOT_COLUMNS if name != "user_id"].index("raw")
    for row in odd:
        ours, theirs = stored_text(engine, row.user_id), stored_text(engine, row.user_id + 1000)
        assert ours[:raw_at] + ours[raw_at + 1 :] == theirs[:raw_at] + theirs[raw_at + 1 :]
        assert json.loads(ours[raw_at]) == json.loads(theirs[raw_at])  # one document (orjson's spacing)


def test_a_replayed_cycle_of_many_snapshots_adds_only_the_new_ones(engine: Engine) -> None:
    def cycle(users: range) -> list[storage.SnapshotRow]:
        answer = {"STATUS": "OPENED", "TIME_START": "2026-11-20T09:00:00+03:00", "TZ_OFFSET": 10800}
        return [storage.SnapshotRow(PORTAL, user_id, NOW, parse_status(answer)) for user_id in users]

    first = storage.save_portal_cycle(engine, None, cycle(range(1, 81)), [])
    again = storage.save_portal_cycle(engine, None, cycle(range(1, 91)), [])  # a spool replay, 10 more

    assert (first.snapshots, again.snapshots, again.refused) == (80, 90, ())
    with engine.connect() as connection:
        counted = connection.execute(
            select(func.count(), func.count(func.distinct(snapshots_table.c.user_id)))
        ).one()
        days = connection.execute(text("SELECT count(*) FROM workdays")).scalar_one()
    assert (tuple(counted), days) == ((90, 90), 90)


def test_a_float_for_an_integer_column_is_stored_as_a_parameter_stores_it(engine: Engine) -> None:
    many = copy_in.MIN_ROWS + 10  # PostgreSQL: through COPY, which refuses the text "2.5"
    with engine.begin() as connection:
        connection.execute(insert(snapshots_table), [snapshot(0, duration_seconds=2.5, tz_offset=3.5)])
        insert_rows(
            connection,
            snapshots_table,
            [snapshot(user_id, duration_seconds=2.5, tz_offset=3.5) for user_id in range(1, many)],
        )
        columns = tuple(SNAPSHOT_COLUMNS)
        rows = [tuple(snapshot(many + n, duration_seconds=2.5, tz_offset=3.5).values()) for n in range(many)]
        insert_tuples(
            connection, snapshots_table, columns, rows, keys=("portal", "user_id", "polled_at"), fresh=True
        )

    for user_id in range(1, 2 * many):
        assert stored_text(engine, user_id) == stored_text(engine, 0)


def test_the_directory_read_once_says_what_names_of_and_zones_of_say(engine: Engine) -> None:
    storage.save_departments(engine, PORTAL, DEPARTMENTS, NOW)
    storage.save_users(engine, PORTAL, [user(1), user(2, TIME_ZONE="Mars/Olympus", UF_DEPARTMENT=[])], NOW)
    storage.save_users(
        engine, PORTAL, [user(3, UF_DEPARTMENT=[99], NAME="", TIME_ZONE=None)], NOW, full=False
    )
    with engine.begin() as connection:  # a row no parser wrote: a list whose first item is text
        connection.execute(insert(users_table), [user_row(4, department_ids=["3"], last_name=None)])
    wanted = {1, 2, 3, 4, 5}

    with engine.connect() as connection:
        listed = listed_users(connection, PORTAL, wanted)
        names, zones = names_of(connection, PORTAL, wanted), zones_of(connection, PORTAL, wanted)

    assert listed.names == names
    assert listed.zones == zones
    assert names[1] == ("Anna Ivanova1", "Accounting") and set(zones) == {1, 4}


def test_a_part_of_users_is_dated_in_their_zones_from_one_read(engine: Engine) -> None:
    storage.save_users(engine, PORTAL, [user(1, TIME_ZONE="Europe/Berlin")], NOW)
    # 22:30 UTC on the 24th is 00:30 on the 25th in Berlin (CEST), the offset sent says the 24th
    answer = {"STATUS": "OPENED", "TIME_START": "2026-10-24T22:30:00+00:00", "TZ_OFFSET": 3600}
    polled = datetime(2026, 10, 25, 0, 0, tzinfo=UTC)

    storage.save_portal_cycle(
        engine, None, [storage.SnapshotRow(PORTAL, 1, polled, parse_status(answer))], []
    )

    with engine.connect() as connection:
        dates = connection.execute(text("SELECT CAST(work_date AS TEXT) FROM workdays")).scalars().all()
    assert dates == ["2026-10-25"]


def test_a_day_dated_otherwise_by_a_later_poll_takes_the_new_date(engine: Engine) -> None:
    # 22:30 UTC on the 24th: the 24th at the offset sent, the 25th in Berlin once the directory says so
    answer = {"STATUS": "OPENED", "TIME_START": "2026-10-24T22:30:00+00:00", "TZ_OFFSET": 3600}
    polled = datetime(2026, 10, 25, 0, 0, tzinfo=UTC)
    rows = [storage.SnapshotRow(PORTAL, user_id, polled, parse_status(answer)) for user_id in (1, 2)]
    storage.save_portal_cycle(engine, None, rows, [])
    storage.save_users(engine, PORTAL, [user(1, TIME_ZONE="Europe/Berlin")], polled)

    later = [replace(row, polled_at=polled + timedelta(minutes=5)) for row in rows]
    storage.save_portal_cycle(engine, None, later, [])

    with engine.connect() as connection:
        query = text("SELECT user_id, CAST(work_date AS TEXT) FROM workdays ORDER BY user_id")
        dates = connection.execute(query).all()
    assert [tuple(row) for row in dates] == [(1, "2026-10-25"), (2, "2026-10-24")]


class _Kind(enum.Enum):
    A = "a"


@pytest.mark.parametrize(
    "raw",
    [
        {"T": datetime(2026, 1, 1, tzinfo=UTC)},
        {"D": date(2026, 1, 1)},
        {"U": uuid.UUID(int=1)},
        {"K": _Kind.A},
    ],
)
def test_a_raw_value_no_json_type_holds_is_refused_as_sqlalchemy_refuses_it(engine: Engine, raw: Any) -> None:
    """orjson would write these as text; SQLAlchemy's serializer refuses them, so the fast way must too."""
    with pytest.raises(TypeError):
        raw_conversion(engine.dialect)(raw)
    opened = parse_status({"STATUS": "OPENED"})
    rows = [storage.SnapshotRow(PORTAL, user_id, NOW, opened) for user_id in (1, 2)]
    rows[1] = replace(rows[1], parsed=replace(rows[1].parsed, raw=raw))
    saved = storage.save_portal_cycle(engine, None, rows, [])
    assert saved.snapshots == 1
    assert [(error.user_id, error.code) for error in saved.refused] == [(2, "BAD_VALUE")]
    with pytest.raises((StatementError, TypeError)), engine.begin() as connection:  # SQLAlchemy's own
        connection.execute(insert(snapshots_table), [{**storage.snapshot_values(rows[1]), "user_id": 3}])
