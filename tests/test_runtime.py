"""The runtime: opened once from the config, closed once, leaving nothing held behind."""

from __future__ import annotations

import dataclasses
import signal
import threading
from datetime import UTC, datetime
from pathlib import Path

import pytest
from conftest import make_config, on_sqlite_only
from sqlalchemy import Engine, text

from poller import storage
from poller.config import Config
from poller.errors import StorageError
from poller.runtime import open_runtime
from poller.spool.files import SpoolLocked
from poller.spool.queue import Spool
from poller.spool.tokenstore import TokenStore, tokens_path
from poller.storage.engine import BUSY_TIMEOUT_SECONDS
from poller.storage.tokens import get_stored_tokens

WEBHOOK: dict[str, object] = {"name": "emu", "webhook_url": "https://acme.example/rest/1/abc/", "users": [1]}
OAUTH: dict[str, object] = {
    "name": "oauth",
    "domain": "https://acme.example",
    "access_token": "config-access",
    "refresh_token": "config-refresh",
    "client_id": "app",
    "client_secret": "secret",
    "users": [1],
}


def config_on(engine: Engine, tmp_path: Path, *portals: dict[str, object], **sections: object) -> Config:
    """A config on the test's database (at head) with its spool in tmp_path; no portal is called."""
    storage_section = {"spool_path": str(tmp_path / "spool.jsonl")}
    return make_config(
        *(portals or (WEBHOOK,)),
        database_url=engine.url.render_as_string(hide_password=False),
        storage=storage_section,
        **sections,
    )


def busy_timeout(engine: Engine) -> int:
    with engine.connect() as connection:
        return int(connection.execute(text("PRAGMA busy_timeout")).scalar_one())


@on_sqlite_only
def test_the_spool_is_held_while_open_and_released_on_close(engine: Engine, tmp_path: Path) -> None:
    config = config_on(engine, tmp_path)
    with open_runtime(config, handle_signals=False) as runtime:
        assert runtime.spool is not None and runtime.spool.path == config.spool_path
        with pytest.raises(SpoolLocked), open_runtime(config, handle_signals=False):
            pass  # a second poller on the same spool stops at once
    with Spool(config.spool_path):  # released: another process may take it
        pass


@on_sqlite_only
def test_an_error_in_the_block_releases_the_spool_and_comes_out(engine: Engine, tmp_path: Path) -> None:
    config = config_on(engine, tmp_path)
    with pytest.raises(RuntimeError, match="a bug"), open_runtime(config, handle_signals=False):
        raise RuntimeError("a bug")
    with Spool(config.spool_path):
        pass


def test_a_database_without_schema_is_refused_before_the_spool_is_taken(tmp_path: Path) -> None:
    database = tmp_path / "none.sqlite3"
    config = make_config(
        WEBHOOK, database_url=f"sqlite:///{database}", storage={"spool_path": str(tmp_path / "spool.jsonl")}
    )
    with pytest.raises(StorageError, match="does not exist"), open_runtime(config, handle_signals=False):
        pass
    assert not database.exists()  # no empty SQLite file left behind
    with Spool(config.spool_path):
        pass


def test_upgrade_creates_the_schema_and_as_found_asks_nothing(tmp_path: Path) -> None:
    config = make_config(
        WEBHOOK, database_url=f"sqlite:///{tmp_path / 'new.sqlite3'}", storage={"spool_path": ""}
    )
    with open_runtime(config, schema="as found", handle_signals=False) as runtime:
        assert runtime.spool is not None and runtime.spool.path is None  # memory only
        with pytest.raises(StorageError):
            storage.check_schema(runtime.engine)
    with open_runtime(config, schema="upgrade", handle_signals=False) as runtime:
        storage.check_schema(runtime.engine)
    with open_runtime(config, handle_signals=False):
        pass  # now at head


@on_sqlite_only
def test_short_lock_waits_last_as_long_as_the_runtime(engine: Engine, tmp_path: Path) -> None:
    config = dataclasses.replace(config_on(engine, tmp_path), lock_wait_seconds=2.5)
    with open_runtime(config, short_lock_waits=True, handle_signals=False) as runtime:
        assert busy_timeout(runtime.engine) == 2500  # [database] lock_wait_seconds
        long_waiting = runtime.engine
    assert busy_timeout(long_waiting) == BUSY_TIMEOUT_SECONDS * 1000
    with open_runtime(config, handle_signals=False) as runtime:
        assert busy_timeout(runtime.engine) == BUSY_TIMEOUT_SECONDS * 1000


@on_sqlite_only
def test_every_client_stops_on_the_runtime_stop(engine: Engine, tmp_path: Path) -> None:
    second: dict[str, object] = {**WEBHOOK, "name": "other"}
    config = config_on(engine, tmp_path, WEBHOOK, second)
    with open_runtime(config, handle_signals=False) as runtime:
        assert [c.portal.name for c in runtime.clients] == ["emu", "other"]
        runtime.stop.set()
        assert all(c.stop is not None and c.stop.is_set() for c in runtime.clients)
        sessions = [c.transport.session for c in runtime.clients]
        assert sessions[0] is not sessions[1]  # one connection pool per portal thread


@on_sqlite_only
def test_metrics_only_when_asked_for_and_a_port_is_set(engine: Engine, tmp_path: Path) -> None:
    with open_runtime(config_on(engine, tmp_path), metrics=True, handle_signals=False) as runtime:
        assert runtime.metrics is None  # no [metrics] port
    config = config_on(engine, tmp_path, metrics={"port": 9})
    with open_runtime(config, handle_signals=False) as runtime:
        assert runtime.metrics is None
    with open_runtime(config, metrics=True, handle_signals=False) as runtime:
        assert runtime.metrics is not None
        assert runtime.spool is not None and runtime.spool.metrics is runtime.metrics


def keep_in_file(config: Config, tmp_path: Path) -> None:
    """A refreshed pair kept in the file beside the spool, as when the database was down."""
    down = storage.make_engine(f"sqlite:///{tmp_path / 'no-such-dir' / 'db.sqlite3'}")
    TokenStore(down, tokens_path(config.spool_path)).save(
        "oauth", "kept-access", "kept-refresh", datetime(2026, 12, 1, tzinfo=UTC)
    )
    down.dispose()
    assert tokens_path(config.spool_path) is not None


@on_sqlite_only
def test_a_pair_kept_in_the_file_is_written_to_the_database_and_used(engine: Engine, tmp_path: Path) -> None:
    config = config_on(engine, tmp_path, OAUTH)
    keep_in_file(config, tmp_path)
    with open_runtime(config, spool=False, handle_signals=False) as runtime:
        (client,) = runtime.clients
        assert (client.access_token, client.refresh_token) == ("kept-access", "kept-refresh")
    stored = get_stored_tokens(engine, "oauth")
    assert stored is not None and stored.access_token == "kept-access"


@on_sqlite_only
def test_as_found_leaves_the_kept_pair_to_the_daemon_but_starts_from_it(
    engine: Engine, tmp_path: Path
) -> None:
    config = config_on(engine, tmp_path, OAUTH)
    keep_in_file(config, tmp_path)
    with open_runtime(config, schema="as found", spool=False, handle_signals=False) as runtime:
        (client,) = runtime.clients
        assert client.access_token == "kept-access"
    assert get_stored_tokens(engine, "oauth") is None


@on_sqlite_only
def test_signals_reach_the_runtime_stop_while_open(engine: Engine, tmp_path: Path) -> None:
    """SIGTERM goes to the runtime's Shutdown; closing marks the work ended and cancels nothing
    that was not started (the handlers stay: a late signal is a graceful stop, see shutdown.py)."""
    config = config_on(engine, tmp_path)
    before = signal.getsignal(signal.SIGTERM)
    with open_runtime(config) as runtime:
        assert signal.getsignal(signal.SIGTERM) is not before
        assert not runtime.shutdown.work_ended
        assert not runtime.stop.is_set()
    assert runtime.shutdown.work_ended


@on_sqlite_only
def test_without_signals_nothing_is_installed(engine: Engine, tmp_path: Path) -> None:
    before = signal.getsignal(signal.SIGTERM)
    with open_runtime(config_on(engine, tmp_path), handle_signals=False) as runtime:
        assert signal.getsignal(signal.SIGTERM) is before
        assert isinstance(runtime.stop, threading.Event)
