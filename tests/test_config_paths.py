"""Paths in the config: relative to the config file, a missing database directory is exit 2, and
`postgres://` URLs get a driver."""

from __future__ import annotations

import logging
import socket
import sqlite3
from pathlib import Path

import pytest

from poller import commands
from poller.cli import main
from poller.config import load_config, parse_config
from poller.emulator import Emulator
from poller.errors import ConfigError

PORTAL = '[[portals]]\nname = "acme"\nwebhook_url = "https://acme.example/rest/1/s3cr3t/"\nusers = [1]\n'


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    path.chmod(0o600)
    return path


def test_relative_paths_written_in_the_file_are_taken_from_its_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    here = tmp_path / "srv" / "poller"
    (here / "data").mkdir(parents=True)
    (here / "ca.pem").write_text("-----BEGIN CERTIFICATE-----\n")
    config = write(
        here / "config.toml",
        '[database]\nurl = "sqlite:///data/t.sqlite3?timeout=5"\n'
        '[storage]\nspool_path = "spool/s.jsonl"\n[http]\nca_bundle = "ca.pem"\n' + PORTAL,
    )
    elsewhere = tmp_path / "home"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    loaded = load_config(config)
    assert loaded.database_url == f"sqlite:///{here / 'data' / 't.sqlite3'}?timeout=5"
    assert loaded.spool_path == here / "spool" / "s.jsonl"
    assert loaded.http.ca_bundle == str(here / "ca.pem")


def test_a_relative_config_path_gives_the_same_absolute_paths(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write(tmp_path / "etc" / "config.toml", '[database]\nurl = "sqlite:///t.sqlite3"\n' + PORTAL)
    monkeypatch.chdir(tmp_path)
    assert load_config(Path("etc/config.toml")).database_url == f"sqlite:///{tmp_path / 'etc' / 't.sqlite3'}"


def test_keys_left_out_and_absolute_paths_stay_as_they_are(tmp_path: Path) -> None:
    defaults = load_config(write(tmp_path / "etc" / "config.toml", PORTAL))
    assert defaults.database_url == "sqlite:///timeman.sqlite3"  # the working directory's, as systemd's
    assert defaults.spool_path == Path("timeman-spool.jsonl")
    for url in (
        f"sqlite:///{tmp_path / 'abs.sqlite3'}",
        "sqlite://",
        "sqlite:///:memory:",
        "postgresql+psycopg://u:pw@db.example/worktime",
    ):
        config = write(
            tmp_path / "etc" / "config.toml", f'[database]\nurl = "{url}"\n[storage]\nspool_path = ""\n'
        )
        config.write_text(config.read_text() + PORTAL)
        loaded = load_config(config)
        assert (loaded.database_url, loaded.spool_path) == (url, None)


def test_a_config_without_a_file_keeps_the_working_directory() -> None:
    config = parse_config(
        {"database": {"url": "sqlite:///x.sqlite3"}, "storage": {"spool_path": "s.jsonl"}}
        | {"portals": [{"name": "a", "webhook_url": "https://a.example/rest/1/s/", "users": [1]}]},
        {},
    )
    assert (config.database_url, config.spool_path) == ("sqlite:///x.sqlite3", Path("s.jsonl"))


def test_a_relative_ca_bundle_that_is_missing_is_named_with_its_full_path(tmp_path: Path) -> None:
    config = write(tmp_path / "config.toml", '[http]\nca_bundle = "ca.pem"\n' + PORTAL)
    with pytest.raises(ConfigError) as caught:
        load_config(config)
    assert (
        str(caught.value)
        == f"config key http.ca_bundle: 'ca.pem' ({tmp_path / 'ca.pem'}) is not a readable file"
    )


def test_a_command_run_from_another_directory_uses_the_database_beside_its_config(
    tmp_path: Path, emulator: Emulator, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    here = tmp_path / "srv"
    config = write(
        here / "config.toml",
        '[database]\nurl = "sqlite:///timeman.sqlite3"\n[storage]\nspool_path = "spool.jsonl"\n'
        f'[[portals]]\nname = "emu"\nwebhook_url = "{emulator.webhook_url}"\nusers = [1, 2]\n',
    )
    elsewhere = tmp_path / "home"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    assert main(["db", "upgrade", "-c", str(config)]) == 0
    assert main(["poll", "-c", str(config)]) == 0
    capsys.readouterr()
    assert main(["report", "latest", "--format", "csv", "-c", str(config)]) == 0
    assert len(capsys.readouterr().out.splitlines()) == 1 + 2  # a header and both users
    with sqlite3.connect(here / "timeman.sqlite3") as connection:
        assert connection.execute("SELECT count(*) FROM snapshots").fetchone() == (2,)
    assert list(elsewhere.iterdir()) == []  # no second, empty database; no spool here


COMMANDS = [
    ["db", "upgrade"],
    ["poll"],
    ["poll", "--migrate"],
    ["run"],
    ["status"],
    ["report"],
    ["report", "timesheet", "--month", "2026-01"],
    ["prune", "--older-than", "800d"],
    ["check"],
    ["close", "--month", "2026-01"],
    ["verify", "--month", "2026-01"],
    ["backfill", "--since", "2026-01-01"],
]


@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
def test_a_database_in_a_missing_directory_is_exit_2_for_every_command(
    command: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "no-such-dir"
    config = write(tmp_path / "config.toml", f'[database]\nurl = "sqlite:///{missing}/t.sqlite3"\n' + PORTAL)
    assert main([*command, "-c", str(config)]) == 2
    assert capsys.readouterr().err.splitlines() == [
        f"timeman-poller: error: config key database.url: directory {missing} does not exist; "
        "create it or give another path"
    ]
    assert not missing.exists()


def test_a_relative_database_in_a_missing_directory_names_the_full_directory(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write(
        tmp_path / "etc" / "config.toml", '[database]\nurl = "sqlite:///data/t.sqlite3"\n' + PORTAL
    )
    assert main(["poll", "-c", str(config)]) == 2
    (line,) = capsys.readouterr().err.splitlines()
    assert f"directory {tmp_path / 'etc' / 'data'} does not exist" in line
    assert "db upgrade" not in line


@pytest.mark.parametrize("command", [["report"], ["status"], ["prune", "--older-than", "800d"]], ids=" ".join)
def test_a_database_option_in_a_missing_directory_is_exit_2(
    command: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "no-such-dir"
    assert main([*command, "--database", f"sqlite:///{missing}/t.sqlite3"]) == 2
    assert capsys.readouterr().err.splitlines() == [
        f"timeman-poller: error: --database: directory {missing} does not exist; "
        "create it or give another path"
    ]


@pytest.mark.parametrize("scheme", ["postgres", "postgresql"])
def test_a_postgres_url_without_a_driver_is_read_with_psycopg_and_one_info_line(
    scheme: str, caplog: pytest.LogCaptureFixture
) -> None:
    document = {"database": {"url": f"{scheme}://poller:pw-s3cret@db.example:5433/worktime"}}
    document["portals"] = [{"name": "a", "webhook_url": "https://a.example/rest/1/s/", "users": [1]}]
    with caplog.at_level(logging.INFO, logger="poller.config.paths"):
        config = parse_config(document, {})
        only = commands.database_only(f"{scheme}://reader@db.example/worktime")
    assert config.database_url == "postgresql+psycopg://poller:pw-s3cret@db.example:5433/worktime"
    assert only.database_url == "postgresql+psycopg://reader@db.example/worktime"
    assert [record.getMessage() for record in caplog.records] == [
        f"{where}: {scheme}:// read as postgresql+psycopg:// (PostgreSQL through psycopg 3, installed "
        "with the poller); write that to silence this line"
        for where in ("database.url", "--database")
    ]
    assert "pw-s3cret" not in caplog.text


def test_a_postgres_url_reaches_postgresql_through_psycopg(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Not "No module named psycopg2": the error is the connection's, named without the password."""
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    config = write(
        tmp_path / "config.toml",
        f'[database]\nurl = "postgres://poller:pw-9@127.0.0.1:{port}/worktime"\n' + PORTAL,
    )
    assert main(["status", "-c", str(config)]) == 1
    err = capsys.readouterr().err
    assert f"database postgresql+psycopg://poller:***@127.0.0.1:{port}/worktime: " in err
    assert "psycopg2" not in err and "pw-9" not in err
