"""Fixtures: the emulator on a free loopback port, and real databases (SQLite, PostgreSQL)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, text

from poller import storage
from poller.emulator import Emulator, EmulatorSettings

POSTGRES_ENV = "TIMEMAN_POLLER_TEST_POSTGRES_URL"


@pytest.fixture
def emulator() -> Iterator[Emulator]:
    """An emulated portal with 30 users, real-time clock, standard limits."""
    running = Emulator(EmulatorSettings(users=30, seed=7)).start()
    yield running
    running.stop()


def oauth_portal(emulator: Emulator, users: list[int], **overrides: object) -> dict[str, object]:
    """A [[portals]] table for the emulator's OAuth application."""
    s = emulator.settings
    entry: dict[str, object] = {
        "name": "oauth",
        "domain": emulator.base_url,
        "access_token": s.access_token,
        "refresh_token": s.refresh_token,
        "client_id": s.client_id,
        "client_secret": s.client_secret,
        "oauth_url": emulator.oauth_url,
        "users": users,
    }
    entry.update(overrides)
    return entry


def postgres_url() -> str | None:
    return os.environ.get(POSTGRES_ENV)


def reset_postgres(url: str) -> None:
    """Empty the scratch database so each test starts from nothing."""
    engine = storage.make_engine(url)
    with engine.begin() as connection:
        connection.execute(text("DROP SCHEMA public CASCADE"))
        connection.execute(text("CREATE SCHEMA public"))
    engine.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An empty database URL: a SQLite file in tmp_path, or the scratch PostgreSQL database."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'test.sqlite3'}"
    url = postgres_url()
    if not url and os.environ.get("TIMEMAN_POLLER_REQUIRE_POSTGRES"):
        pytest.fail(f"TIMEMAN_POLLER_REQUIRE_POSTGRES is set but {POSTGRES_ENV} is not")
    if not url:
        pytest.skip(
            f"PostgreSQL tests need {POSTGRES_ENV} (e.g. postgresql+psycopg://postgres@127.0.0.1/test)"
        )
    reset_postgres(url)
    return url


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    """An Engine on an empty database upgraded to head."""
    created = storage.make_engine(database_url)
    storage.upgrade_database(created)
    yield created
    created.dispose()
