"""portal_tasks (revision 0008): when each portal's directory refresh and reconcile last ran."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine, column, insert, select, table

from poller import storage
from poller.models import PortalTask, UTCDateTime
from poller.storage.tasks import TaskState, get_task, save_task_done, save_task_failed

REFRESHED = datetime(2026, 11, 30, 6, 0, tzinfo=UTC)


def test_revision_0008_dates_each_stored_directory_from_its_newest_user(database_url: str) -> None:
    engine = storage.make_engine(database_url)
    storage.upgrade_database(engine, "0007")
    users = table("users", column("portal"), column("user_id"), column("updated_at", UTCDateTime()))
    with engine.begin() as connection:
        connection.execute(
            insert(users),
            [
                {"portal": "acme", "user_id": 1, "updated_at": REFRESHED - timedelta(days=3)},
                {"portal": "acme", "user_id": 2, "updated_at": REFRESHED},  # the newest refresh
                {"portal": "zeta", "user_id": 1, "updated_at": REFRESHED - timedelta(hours=1)},
            ],
        )
    storage.upgrade_database(engine, "0008")
    with engine.connect() as connection:
        rows = connection.execute(select(PortalTask.__table__).order_by("portal", "task")).all()
    assert [tuple(row) for row in rows] == [
        ("acme", "directory", REFRESHED, REFRESHED, None),
        ("zeta", "directory", REFRESHED - timedelta(hours=1), REFRESHED - timedelta(hours=1), None),
    ]
    assert get_task(engine, "nobody", "directory") == TaskState()
    engine.dispose()


def test_a_task_remembers_its_last_try_its_last_success_and_its_last_failure(engine: Engine) -> None:
    failed, done = REFRESHED + timedelta(minutes=2), REFRESHED + timedelta(minutes=3)
    save_task_failed(engine, "acme", "reconcile", REFRESHED, "portal acme: unreachable")
    assert get_task(engine, "acme", "reconcile") == TaskState(REFRESHED, None, "portal acme: unreachable")
    save_task_done(engine, "acme", "reconcile", done)
    save_task_failed(engine, "acme", "reconcile", failed, "portal acme: no REST 3.0 " + "x" * 2000)
    state = get_task(engine, "acme", "reconcile")
    assert (state.last_tried_at, state.last_done_at) == (failed, done)
    assert state.last_error is not None and len(state.last_error) == 1000
    save_task_done(engine, "acme", "reconcile", done)
    assert get_task(engine, "acme", "reconcile") == TaskState(done, done, None)
    assert get_task(engine, "acme", "directory") == TaskState()
