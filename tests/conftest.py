"""Fixtures: emulated portals on loopback, one config builder, a clock to move, real databases.

- `make_emulator(**settings)` starts emulators (stopped after the test, on a thread of their
  own); pass `clock=clock` to share the test's `ManualClock` with the poller.
- `portal(emulator, users, ...)` is a [[portals]] table for an emulator (webhook or OAuth);
  `make_config(*portals, ...)` parses a whole config around them.
- `database_url` / `engine`: SQLite in tmp_path and the scratch PostgreSQL database;
  `@on_sqlite_only` over a test whose point is not storage keeps it to SQLite.
- Where they live (tmp_path in memory, PostgreSQL without synchronous commits, a database per
  pytest-xdist worker): tests/fast_storage.py. Plain helpers (a free port, row counts):
  tests/helpers.py.
"""

from __future__ import annotations

import gc
import os
import shutil
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from fast_storage import POSTGRES_ENV, drop_worker_postgres, prepare_postgres, use_memory_temp_root
from postgres_head import PostgresHead
from sqlalchemy import Engine, text
from tiers import mark

from poller import storage
from poller.clock import SYSTEM_CLOCK, Clock, ManualClock
from poller.config import Config, parse_config
from poller.emulator import Emulator, EmulatorSettings

MONDAY_MORNING = datetime(2026, 11, 16, 9, 30, tzinfo=UTC)
REPORT_START = datetime(2026, 11, 18, tzinfo=UTC)  # a Wednesday
REPORT_USERS = list(range(1, 9))

MakeEmulator = Callable[..., Emulator]


# -- clock and emulators ---------------------------------------------------------------


@pytest.fixture
def clock() -> ManualClock:
    """A clock that moves only when told (or when something sleeps on it): Monday 09:30 UTC."""
    return ManualClock(MONDAY_MORNING)


@pytest.fixture
def make_emulator() -> Iterator[MakeEmulator]:
    """Start an emulated portal: `make_emulator(clock=None, **EmulatorSettings fields)`.

    30 users and seed 7 unless given; the clock defaults to the system clock. Every emulator
    started is stopped when the test ends.
    """
    started: list[Emulator] = []

    def make(*, clock: Clock | None = None, **settings: Any) -> Emulator:
        settings.setdefault("users", 30)
        settings.setdefault("seed", 7)
        emulator = Emulator(EmulatorSettings(**settings), clock=clock or SYSTEM_CLOCK).start()
        started.append(emulator)
        return emulator

    yield make
    stop_later(started)


def stop_later(emulators: list[Emulator]) -> None:
    """Stop `emulators` on a thread of their own: a stop waits for the server loop's next poll
    (up to 50 ms), and the next test need not wait with it. Joined at the session's end."""

    def stop_each() -> None:
        for emulator in emulators:
            emulator.stop()

    if emulators:
        stopping = threading.Thread(target=stop_each, name="emulator stop")
        stopping.start()
        STOPPING.append(stopping)


STOPPING: list[threading.Thread] = []


def pytest_sessionfinish() -> None:
    for stopping in STOPPING:
        stopping.join()


@pytest.fixture
def emulator(make_emulator: MakeEmulator) -> Emulator:
    """An emulated portal with 30 users, the system clock, standard limits."""
    return make_emulator()


# -- configs ---------------------------------------------------------------------------


def portal(
    target: Emulator | str, users: object, *, oauth: bool = False, **overrides: object
) -> dict[str, object]:
    """A [[portals]] table: an emulator's webhook (name "emu") or OAuth app (name "oauth"), or a
    webhook URL given as a string. `overrides` replace or add keys; a None value removes one."""
    entry: dict[str, object]
    if isinstance(target, str):
        entry = {"name": "emu", "webhook_url": target}
    elif oauth:
        s = target.settings
        entry = {
            "name": "oauth",
            "domain": target.base_url,
            "access_token": s.access_token,
            "refresh_token": s.refresh_token,
            "client_id": s.client_id,
            "client_secret": s.client_secret,
            "oauth_url": target.oauth_url,
        }
    else:
        entry = {"name": "emu", "webhook_url": target.webhook_url}
    entry["users"] = users
    entry.update(overrides)
    return {key: value for key, value in entry.items() if value is not None}


def make_config(*portals: dict[str, object], database_url: str | None = None, **sections: object) -> Config:
    """A parsed config of `portals` and other top-level sections (`http={"max_retries": 1}`)."""
    document: dict[str, object] = {"portals": list(portals), **sections}
    if database_url is not None:
        document["database"] = {"url": database_url}
    return parse_config(document, {})


def wait_until(condition: Callable[[], object], timeout: float = 10.0, what: str = "condition") -> None:
    """Poll `condition` until it is true; fail after `timeout` real seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"{what} not met within {timeout:g} s")
        time.sleep(0.01)


# -- databases -------------------------------------------------------------------------


def postgres_url() -> str | None:
    return os.environ.get(POSTGRES_ENV)


def reset_postgres(url: str) -> None:
    """Empty the scratch database so each test starts from nothing."""
    engine = storage.make_engine(url)
    with engine.begin() as connection:
        connection.execute(text("DROP SCHEMA public CASCADE"))
        connection.execute(text("CREATE SCHEMA public"))
    engine.dispose()


def replica_sessions(engine: Engine) -> int:
    """How many replica lock sessions (application_name timeman-poller:...) the database holds."""
    query = text(
        "SELECT count(*) FROM pg_stat_activity"
        " WHERE datname = current_database() AND application_name LIKE 'timeman-poller:%'"
    )
    with engine.connect() as connection:
        return int(connection.execute(query).scalar_one())


def end_replica_session(engine: Engine, name: str) -> None:
    """End replica `name`'s lock session on this database, as a restart or an administrator
    would; sessions of the same name on other databases (another worker's) are left alone."""
    query = text(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
        " WHERE datname = current_database() AND application_name = :name"
    )
    with engine.connect() as connection:
        connection.execute(query, {"name": f"timeman-poller:{name}"})


@pytest.fixture(scope="session")
def head_sqlite_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite file upgraded to head once per session; `engine` tests start from a copy."""
    path = tmp_path_factory.mktemp("head") / "head.sqlite3"
    built = storage.make_engine(f"sqlite:///{path}")
    storage.upgrade_database(built)
    built.dispose()
    return path


@pytest.fixture(scope="session")
def postgres_head() -> PostgresHead | None:
    """Brings the scratch PostgreSQL database to an empty head schema for `engine` tests
    (truncating the tables when the schema is intact); None without PostgreSQL."""
    url = postgres_url()
    return PostgresHead(url) if url else None


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A database URL: a SQLite file in tmp_path, or the scratch PostgreSQL database. Empty,
    unless the test also takes `engine`: then at head with no rows (see `engine`)."""
    at_head = "engine" in request.fixturenames
    if request.param == "sqlite":
        path = tmp_path / "test.sqlite3"
        if at_head:
            shutil.copyfile(request.getfixturevalue("head_sqlite_file"), path)
        return f"sqlite:///{path}"
    url = postgres_url()
    if not url and os.environ.get("TIMEMAN_POLLER_REQUIRE_POSTGRES"):
        pytest.fail(f"TIMEMAN_POLLER_REQUIRE_POSTGRES is set but {POSTGRES_ENV} is not")
    if not url:
        pytest.skip(
            f"PostgreSQL tests need {POSTGRES_ENV} (e.g. postgresql+psycopg://postgres@127.0.0.1/test)"
        )
    if at_head:
        request.getfixturevalue("postgres_head").prepare()
    else:
        reset_postgres(url)
    return url


# For a test whose point is not storage (the portal's limits, its errors, a token's place):
# `@on_sqlite_only` keeps its `database_url`/`engine` on SQLite, so it runs once, not once
# per database. The storage it touches keeps its own tests on both databases.
on_sqlite_only = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    """An Engine on a database upgraded to head and holding no rows: on SQLite a copy of a file
    upgraded once per session, on PostgreSQL the scratch database with its tables emptied."""
    created = storage.make_engine(database_url)
    yield created
    created.dispose()


@pytest.fixture(scope="session")
def report_database_template(tmp_path_factory: pytest.TempPathFactory, head_sqlite_file: Path) -> Path:
    """A SQLite file the poller filled: 72 polls, every 30 minutes from Wednesday 00:00 UTC,
    of 8 users. Built once per session, on a copy of the head database; use `report_database`
    for a copy of your own."""
    from poller.poll.cycle import make_clients, poll_portal

    database = tmp_path_factory.mktemp("report") / "report.sqlite3"
    shutil.copyfile(head_sqlite_file, database)
    manual = ManualClock(REPORT_START)
    emulator = Emulator(EmulatorSettings(users=8, rate=0, operating_limit=0), clock=manual).start()
    engine = storage.make_engine(f"sqlite:///{database}")
    try:
        config = make_config(portal(emulator, REPORT_USERS))
        (client,) = make_clients(config, engine, clock=manual)
        for _ in range(72):
            poll_portal(client, engine, manual.now)
            manual.advance(1800)
    finally:
        engine.dispose()
        emulator.stop()
    return database


@pytest.fixture
def report_database(report_database_template: Path, tmp_path: Path) -> tuple[Path, Path]:
    """A copy of the 72-poll database in tmp_path, and a config file pointing at it."""
    database = tmp_path / "report.sqlite3"
    shutil.copyfile(report_database_template, database)
    config_file = tmp_path / "config.toml"
    config_file.write_text(
        f'[database]\nurl = "sqlite:///{database}"\n'
        f'[[portals]]\nname = "emu"\nwebhook_url = "http://127.0.0.1:9/rest/1/gone/"\n'
        f"users = {REPORT_USERS}\n"
    )
    return database, config_file


# -- where the databases live, tiers and the summary --------------------------------

SCRATCH_URL = pytest.StashKey[str | None]()


def pytest_configure(config: pytest.Config) -> None:
    """tmp_path in memory, PostgreSQL without synchronous commits, and under pytest-xdist a
    database per worker: see tests/fast_storage.py."""
    use_memory_temp_root(config)
    config.stash[SCRATCH_URL] = os.environ.get(POSTGRES_ENV)
    prepare_postgres(os.environ.get("PYTEST_XDIST_WORKER"))


def pytest_unconfigure(config: pytest.Config) -> None:
    drop_worker_postgres(config.stash.get(SCRATCH_URL, None), os.environ.get("PYTEST_XDIST_WORKER"))


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Markers for the tiers (`postgres`, `process`, `slow`): see tests/tiers.py."""
    mark(items)


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """One line for the skips instead of one per test: how many, and the reasons."""
    skipped = terminalreporter.stats.get("skipped", [])
    if not skipped:
        return
    reasons: dict[str, int] = {}
    for report in skipped:
        reason = str(report.longrepr[2]) if isinstance(report.longrepr, tuple) else str(report.longrepr)
        reason = reason.removeprefix("Skipped: ")
        reasons[reason] = reasons.get(reason, 0) + 1
    for reason, count in sorted(reasons.items(), key=lambda item: -item[1]):
        terminalreporter.write_line(f"{count} skipped: {reason}")


# -- signal handlers -------------------------------------------------------------------


@pytest.fixture(autouse=True)
def default_signal_handlers() -> Iterator[None]:
    """Put back Python's SIGINT and SIGTERM handlers after each test: a command run in-process
    installs the poller's for good (poller.daemon.shutdown), and Ctrl-C must still stop pytest."""
    yield
    from poller.daemon import shutdown

    shutdown.uninstall()


# -- garbage collection ----------------------------------------------------------------


@pytest.hookimpl(wrapper=True)
def pytest_collection() -> Iterator[object]:
    """Collect the tests with the garbage collector off, then freeze what collection built.

    Importing the test modules and the poller builds ~160,000 objects that live for the whole
    session and hold no garbage cycles: each full collection while they are built, and each one
    later in the session, would walk them all again (~1 s over a quick run). What the tests
    create is collected as usual, though less often: the tests allocate rows, answers and
    statements by the hundred thousand, and CPython's default of a young collection every 700
    allocations spent ~0.6 s of a quick run promoting them.
    """
    gc.disable()
    try:
        return (yield)
    finally:
        gc.collect()
        gc.freeze()
        gc.set_threshold(YOUNG_COLLECTION_EVERY, *gc.get_threshold()[1:])
        gc.enable()


YOUNG_COLLECTION_EVERY = 10_000  # allocations (CPython's default: 700)
