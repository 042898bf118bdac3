"""Revision 0009 (latest_status stale when the whole portal failed) on a 0008 database that
holds rows: every column and value stays, rows of a portal whose cycle failed since they were
last seen become 'portal_failed', and the downgrade gives 0006's view back."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from alembic import command
from alembic.config import Config as AlembicConfig
from sqlalchemy import JSON, Engine, column, insert, table, text

from poller import storage
from poller.models import UTCDateTime
from poller.status import parse_status

SEEN = datetime(2026, 11, 2, 9, 30, tzinfo=UTC)
OPENED = {"STATUS": "OPENED", "TIME_START": "2026-11-02T10:00:00+01:00", "TZ_OFFSET": 3600, "ID": 7}


def _insert_rows_as_0008(engine: Engine) -> None:
    """acme users 1-3 and beta user 1, all last seen at SEEN. acme: a failed cycle after it, user 2
    inactive, user 3 with its own error since; beta: a failed cycle at SEEN and a finished one since."""
    values = dict(parse_status(OPENED).values)
    snapshots = table(
        "snapshots", *(column(name) for name in values), column("portal"), column("user_id"),
        column("polled_at", UTCDateTime()), column("last_seen_at", UTCDateTime()), column("seen_count"),
        column("raw", JSON()),
    )  # fmt: skip
    for name in ("time_start", "time_finish", "time_finish_default"):
        snapshots.c[name].type = UTCDateTime()
    users = table("users", column("portal"), column("user_id"), column("name"), column("active"),
                  column("updated_at", UTCDateTime()))  # fmt: skip
    errors = table("poll_errors", column("portal"), column("user_id"), column("occurred_at", UTCDateTime()),
                   column("code"), column("message"), column("error_key"))  # fmt: skip
    runs = table("poll_runs", column("portal"), column("outcome"), column("users_ok"), column("users_failed"),
                 column("started_at", UTCDateTime()), column("finished_at", UTCDateTime()))  # fmt: skip
    later = SEEN + timedelta(minutes=5)
    with engine.begin() as connection:
        connection.execute(
            insert(snapshots),
            [{**values, "portal": portal, "user_id": user_id, "polled_at": SEEN - timedelta(minutes=1),
              "last_seen_at": SEEN, "seen_count": 2, "raw": OPENED}
             for portal, user_id in (("acme", 1), ("acme", 2), ("acme", 3), ("beta", 1))],
        )  # fmt: skip
        connection.execute(
            insert(users),
            [{"portal": "acme", "user_id": user_id, "name": f"U{user_id}", "active": user_id != 2,
              "updated_at": SEEN} for user_id in (1, 2, 3)],
        )  # fmt: skip
        connection.execute(
            insert(errors),
            [{"portal": "acme", "user_id": 3, "occurred_at": later, "code": "ACCESS_DENIED", "message": "no",
              "error_key": "k3"},
             {"portal": "acme", "user_id": None, "occurred_at": later, "code": "NO_AUTH_FOUND",
              "message": "wrong secret", "error_key": "kp"}],
        )  # fmt: skip
        connection.execute(
            insert(runs),
            [{"portal": "acme", "outcome": "failed", "users_ok": 0, "users_failed": 3, "started_at": later,
              "finished_at": later},
             {"portal": "beta", "outcome": "failed", "users_ok": 0, "users_failed": 1, "started_at": SEEN,
              "finished_at": SEEN},
             {"portal": "beta", "outcome": "finished", "users_ok": 1, "users_failed": 0, "started_at": later,
              "finished_at": later}],
        )  # fmt: skip


def _view(engine: Engine) -> list[dict[str, object]]:
    with engine.connect() as connection:
        query = text("SELECT * FROM latest_status ORDER BY portal, user_id")
        return [dict(row) for row in connection.execute(query).mappings()]


def _values(row: dict[str, object]) -> dict[str, object]:
    return {name: value for name, value in row.items() if name not in ("stale", "stale_reason")}


def _reasons(rows: list[dict[str, object]]) -> list[tuple[object, ...]]:
    return [(row["portal"], row["user_id"], bool(row["stale"]), row["stale_reason"]) for row in rows]


def test_revision_0009_keeps_every_column_and_marks_rows_of_a_failed_portal(database_url: str) -> None:
    engine = storage.make_engine(database_url)
    storage.upgrade_database(engine, "0008")
    _insert_rows_as_0008(engine)
    before = _view(engine)
    storage.upgrade_database(engine, "0009")
    after = _view(engine)
    assert [list(row) for row in after] == [list(row) for row in before]  # the same columns, in order
    assert [_values(row) for row in after] == [_values(row) for row in before]
    assert _reasons(before) == [
        ("acme", 1, False, None),
        ("acme", 2, True, "inactive"),
        ("acme", 3, True, "failed"),
        ("beta", 1, False, None),
    ]
    assert _reasons(after) == [
        ("acme", 1, True, "portal_failed"),
        ("acme", 2, True, "inactive"),  # the directory's reason wins
        ("acme", 3, True, "failed"),  # and the user's own error
        ("beta", 1, False, None),  # failed at the moment last seen, not since
    ]
    with engine.begin() as connection:
        config = AlembicConfig()
        config.set_main_option("script_location", str(storage.migrations_path()))
        config.attributes["connection"] = connection
        command.downgrade(config, "0008")
    assert _reasons(_view(engine)) == _reasons(before)
    engine.dispose()
