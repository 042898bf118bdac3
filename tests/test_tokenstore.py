"""A refreshed OAuth pair is stored before it is used and never shown (issue #9, rows 5 and 6).

The emulator's OAuth server spends a refresh token when it trades it, as Bitrix24 does: a
pair that was used but not kept leaves the poller with a dead refresh token after a restart.
"""

from __future__ import annotations

import logging
import shutil
import sqlite3
import stat
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import requests
from conftest import MakeEmulator, make_config, portal
from sqlalchemy import Engine, event
from sqlalchemy.engine import make_url

from poller import storage
from poller.bitrix import PortalClient
from poller.config import PortalConfig
from poller.emulator import Emulator
from poller.errors import BitrixError
from poller.logs import TEXT_FORMAT, JsonFormatter, installed
from poller.spool.tokenstore import TokenStore, tokens_path

T1 = datetime(2026, 11, 16, 9, 0, tzinfo=UTC)
T2 = T1 + timedelta(hours=1)


def down_url(database_url: str, tmp_path: Path) -> str:
    """The same kind of database, unreachable: a SQLite file that cannot be opened, a closed port."""
    if database_url.startswith("sqlite"):
        return f"sqlite:///{tmp_path / 'missing' / 'db.sqlite3'}"
    return make_url(database_url).set(port=1).render_as_string(hide_password=False)


@pytest.fixture
def emu(make_emulator: MakeEmulator) -> Emulator:
    return make_emulator(users=3)


@pytest.fixture
def oauth(emu: Emulator) -> PortalConfig:
    return make_config(portal(emu, [1], oauth=True)).portals[0]


def client_for(oauth: PortalConfig, store: TokenStore) -> PortalClient:
    def save(access: str, refresh: str) -> None:
        store.save(oauth.name, access, refresh, datetime.now(UTC))

    return PortalClient(oauth, requests.Session(), on_tokens_refreshed=save)


def secrets_of(emu: Emulator, *clients: PortalClient) -> set[str]:
    """The seed pair, the client secret and every pair the clients hold."""
    found = {emu.settings.access_token, emu.settings.refresh_token, emu.settings.client_secret}
    for client in clients:
        found |= {client.access_token or "", client.refresh_token or ""}
    return found - {""}


def formatted(records: list[logging.LogRecord]) -> str:
    """Every record as the text and the JSON handlers would write it, tracebacks included."""
    text, json_lines = logging.Formatter(TEXT_FORMAT), JsonFormatter()
    return "\n".join(f"{text.format(r)}\n{json_lines.format(r)}" for r in records)


def test_a_pair_refreshed_while_the_database_is_down_is_used_after_a_restart(
    database_url: str,
    engine: Engine,
    tmp_path: Path,
    emu: Emulator,
    oauth: PortalConfig,
    caplog: pytest.LogCaptureFixture,
) -> None:
    kept = tokens_path(tmp_path / "spool.jsonl")
    assert kept == tmp_path / "spool.jsonl.tokens.json"
    down = storage.make_engine(down_url(database_url, tmp_path))
    client = client_for(oauth, TokenStore(down, kept))
    emu.expire_tokens()
    with caplog.at_level(logging.INFO):
        assert client.call("timeman.status", {"USER_ID": 1})["result"]
    pair = (client.access_token, client.refresh_token)
    assert pair[1] != oauth.refresh_token and emu.stats.token_refreshes == 1
    assert stat.S_IMODE(kept.stat().st_mode) == 0o600
    # The seed pair from the config is spent: a restart that used it would stop every call.
    seeded = PortalClient(oauth, requests.Session())
    emu.expire_tokens()
    with pytest.raises(BitrixError, match="invalid_grant"):
        seeded.call("timeman.status", {"USER_ID": 1})

    # The restart: the database is back.
    restarted = TokenStore(engine, kept)
    assert restarted.load(oauth.name) == pair
    assert restarted.replay() == 1
    assert storage.get_tokens(engine, oauth.name) == pair and not kept.exists()
    again = client_for(oauth, restarted)
    again.use_tokens(*pair)
    emu.expire_tokens()
    assert again.call("timeman.status", {"USER_ID": 1})["result"]
    assert emu.stats.token_refreshes == 2
    assert storage.get_tokens(engine, oauth.name) == (again.access_token, again.refresh_token)
    warnings = [r.getMessage() for r in caplog.records if r.name == "poller.spool.tokenstore"]
    assert len(warnings) == 1 and f"kept in {kept} until it is back" in warnings[0]
    log = formatted(caplog.records)
    assert not any(secret in log for secret in secrets_of(emu, client, again))
    down.dispose()


def test_the_newer_pair_wins_at_start_whichever_place_holds_it(engine: Engine, tmp_path: Path) -> None:
    kept = tmp_path / "tokens.json"
    down = storage.make_engine(down_url(str(engine.url), tmp_path))
    TokenStore(down, kept).save("acme", "file-access", "file-refresh", T2)
    storage.save_tokens(engine, "acme", "db-access", "db-refresh", T1)
    assert TokenStore(engine, kept).load("acme") == ("file-access", "file-refresh")
    storage.save_tokens(engine, "acme", "db-access-3", "db-refresh-3", T2 + timedelta(minutes=1))
    restarted = TokenStore(engine, kept)
    assert restarted.load("acme") == ("db-access-3", "db-refresh-3")
    assert restarted.replay() == 0  # the stale pair in the file is dropped, not written
    assert storage.get_tokens(engine, "acme") == ("db-access-3", "db-refresh-3")
    assert not kept.exists()
    assert TokenStore(down, kept).load("acme") is None
    down.dispose()


def test_a_pair_saved_while_the_database_is_up_goes_there_and_leaves_the_file(
    engine: Engine, tmp_path: Path
) -> None:
    kept = tmp_path / "tokens.json"
    down = storage.make_engine(down_url(str(engine.url), tmp_path))
    TokenStore(down, kept).save("acme", "a1", "r1", T1)
    TokenStore(down, kept).save("globex", "a2", "r2", T1)
    store = TokenStore(engine, kept)
    store.save("acme", "a3", "r3", T2)
    assert storage.get_tokens(engine, "acme") == ("a3", "r3")
    assert TokenStore(down, kept).load("acme") is None and TokenStore(down, kept).load("globex") == (
        "a2",
        "r2",
    )
    assert store.replay() == 1
    assert storage.get_tokens(engine, "globex") == ("a2", "r2") and not kept.exists()
    down.dispose()


@pytest.fixture
def locked_sqlite(tmp_path: Path, head_sqlite_file: Path) -> Iterator[tuple[Engine, Callable[[], None]]]:
    """An upgraded SQLite database another connection holds write-locked, and how to unlock it."""
    database = tmp_path / "locked.sqlite3"
    shutil.copyfile(head_sqlite_file, database)  # conftest's, upgraded once per session
    engine = storage.make_engine(f"sqlite:///{database}")

    def wait_briefly(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.execute("PRAGMA busy_timeout = 1")  # after make_engine's 30 s: the lock never goes

    event.listen(engine, "connect", wait_briefly)
    engine.dispose()
    locker = sqlite3.connect(database, isolation_level=None)
    locker.execute("BEGIN EXCLUSIVE")
    yield engine, locker.rollback
    locker.close()
    engine.dispose()


@pytest.mark.parametrize("log_format", ["text", "json"])
def test_a_pair_refreshed_while_sqlite_is_write_locked_is_kept_and_never_logged(
    locked_sqlite: tuple[Engine, Callable[[], None]],
    tmp_path: Path,
    emu: Emulator,
    oauth: PortalConfig,
    log_format: Any,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    engine, unlock = locked_sqlite
    kept = tmp_path / "tokens.json"
    client = client_for(oauth, TokenStore(engine, kept))
    # Neither the database nor the file: a file path under a regular file.
    (tmp_path / "a-file").write_text("")
    nowhere = client_for(oauth, TokenStore(engine, tmp_path / "a-file" / "tokens.json"))
    with installed("DEBUG", log_format):
        emu.expire_tokens()
        assert client.call("timeman.status", {"USER_ID": 1})["result"]
        nowhere.use_tokens(client.access_token, client.refresh_token)
        emu.expire_tokens()
        assert nowhere.call("timeman.status", {"USER_ID": 1})["result"]
    stderr = capsys.readouterr().err
    messages = [r.getMessage() for r in caplog.records]
    assert any("database is locked" in m and f"kept in {kept}" in m for m in messages)
    assert any(
        "could not be handed over: TokenStoreError: portal oauth: the refreshed OAuth tokens could not be "
        "stored: database: database is locked; "
        in m
        and "Not a directory" in m
        for m in messages
    )
    secrets = secrets_of(emu, client, nowhere)
    assert "database is locked" in stderr
    for log in (stderr, formatted(caplog.records)):
        assert not any(secret in log for secret in secrets)
    unlock()
    assert TokenStore(engine, kept).replay() == 1
    assert storage.get_tokens(engine, oauth.name) == (client.access_token, client.refresh_token)
