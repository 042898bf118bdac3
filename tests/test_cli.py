"""The command line as a user runs it, in-process through `main(argv)`.

Real files and the emulator over loopback; a subprocess only where a process is the point
(a signal to the daemon).
"""

from __future__ import annotations

import json
import re
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from poller.cli import main
from poller.emulator import Emulator

COMMANDS = [["db"], ["db", "upgrade"], ["poll"], ["run"], ["status"], ["report"], ["prune"], ["get-status"]]
COMMANDS += [["emulator"], ["demo"], ["check"]]


def write_config(path: Path, emulator: Emulator, users: list[int], interval: int = 60) -> Path:
    database = path.parent / "poller.sqlite3"
    path.write_text(
        f'[database]\nurl = "sqlite:///{database}"\n'
        f"[schedule]\ninterval_seconds = {interval}\n"
        f'[storage]\nspool_path = "{path.parent / "spool.jsonl"}"\n'
        f'[[portals]]\nname = "emu"\nwebhook_url = "{emulator.webhook_url}"\nusers = {users}\n'
    )
    path.chmod(0o600)
    return database


@pytest.fixture
def at_head(tmp_path: Path, head_sqlite_file: Path) -> Path:
    """`write_config`'s database already at head: a copy of the session's file, for tests whose
    point is not the upgrade (`db upgrade` and `--migrate` then find nothing to do)."""
    database = tmp_path / "poller.sqlite3"
    shutil.copyfile(head_sqlite_file, database)
    return database


def rows(database: Path, query: str) -> list[tuple[object, ...]]:
    with sqlite3.connect(database) as connection:
        return connection.execute(query).fetchall()


def finished_runs(database: Path) -> int:
    if not database.exists() or not rows(database, "SELECT 1 FROM sqlite_master WHERE name = 'poll_runs'"):
        return 0
    (count,) = rows(database, "SELECT count(*) FROM poll_runs WHERE finished_at IS NOT NULL")[0]
    return int(count)  # type: ignore[call-overload]


@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
def test_every_command_explains_itself(command: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert main([*command, "--help"]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"usage: timeman-poller {' '.join(command)}")
    assert "--log-level" in out and "--config" in out


def test_the_help_of_a_command_is_its_docstring(capsys: pytest.CaptureFixture[str]) -> None:
    from poller import commands

    assert main(["poll", "--help"]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert " ".join((commands.poll.__doc__ or "").split()) in out


@pytest.mark.usefixtures("at_head")
def test_global_options_go_before_or_after_the_command(
    tmp_path: Path, emulator: Emulator, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "config.toml"
    write_config(config, emulator, [1, 2])
    assert main(["-c", str(config), "db", "upgrade"]) == 0
    assert main(["db", "upgrade", "-c", str(config)]) == 0
    capsys.readouterr()
    assert main(["--log-format", "json", "--log-level", "ERROR", "poll", "-c", str(config)]) == 0
    assert capsys.readouterr().err == ""  # the cycle line is INFO, below ERROR
    assert main(["poll", "-c", str(config), "--log-format", "json"]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().err.splitlines()]
    assert (lines[-1]["level"], lines[-1]["logger"]) == ("INFO", "poller.cli")
    assert lines[-1]["message"].startswith("cycle: 2 users stored, 0 failed")


def test_a_config_error_is_one_line_and_exit_code_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "config.toml"
    config.write_text('[[portals]]\nname = "x"\nwebhook_url = "https://x/rest/1/abc/"\nusers = []\n')
    assert main(["poll", "-c", str(config)]) == 2
    assert capsys.readouterr().err.splitlines() == [
        "timeman-poller: error: config key portals['x'].users: "
        'empty; list at least one user id or use "all"'
    ]


def test_with_json_logs_a_fatal_error_is_a_json_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "config.toml"
    config.write_text('[[portals]]\nname = "x"\nwebhook_url = "https://x/rest/1/abc/"\nusers = []\n')
    assert main(["--log-format", "json", "poll", "-c", str(config)]) == 2
    (line,) = capsys.readouterr().err.splitlines()
    entry = json.loads(line)
    assert entry["level"] == "ERROR"
    assert entry["message"].startswith("config key portals['x'].users: empty")
    assert main(["poll", "--log-format=json", "--no-such-option"]) == 2
    (usage,) = capsys.readouterr().err.splitlines()
    assert json.loads(usage)["message"] == "timeman-poller: unrecognized arguments: --no-such-option"


def test_a_missing_config_file_is_exit_code_2(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("TIMEMAN_POLLER_CONFIG", raising=False)
    assert main(["poll"]) == 2
    assert capsys.readouterr().err.splitlines() == [
        "timeman-poller: error: config file config.toml not found (give -c PATH or set TIMEMAN_POLLER_CONFIG)"
    ]


@pytest.mark.parametrize("command", [["poll"], ["status"], ["report"], ["prune", "--older-than", "1d"]])
def test_a_command_before_db_upgrade_refuses_and_leaves_no_database_file(
    command: list[str], tmp_path: Path, emulator: Emulator, capsys: pytest.CaptureFixture[str]
) -> None:
    database = write_config(tmp_path / "config.toml", emulator, [1])
    assert main([*command, "-c", str(tmp_path / "config.toml")]) == 1
    assert capsys.readouterr().err.splitlines() == [
        f"timeman-poller: error: SQLite file {database}: does not exist: "
        "run `timeman-poller db upgrade` first"
    ]
    assert not database.exists()


def test_db_upgrade_says_created_then_up_to_date(
    tmp_path: Path, emulator: Emulator, capsys: pytest.CaptureFixture[str]
) -> None:
    database = write_config(tmp_path / "config.toml", emulator, [1])
    assert main(["db", "upgrade", "-c", str(tmp_path / "config.toml")]) == 0
    assert re.fullmatch(rf"SQLite file {database}: schema created at revision \w+\n", capsys.readouterr().out)
    assert main(["db", "upgrade", "-c", str(tmp_path / "config.toml")]) == 0
    assert "schema already up to date" in capsys.readouterr().out


def test_a_database_in_a_missing_directory_is_a_config_error(
    tmp_path: Path, emulator: Emulator, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "config.toml"
    write_config(config, emulator, [1])
    missing = tmp_path / "no-such-dir" / "db.sqlite3"
    config.write_text(config.read_text().replace(str(tmp_path / "poller.sqlite3"), str(missing)))
    assert main(["db", "upgrade", "-c", str(config)]) == 2  # more in test_config_paths.py
    assert capsys.readouterr().err.splitlines() == [
        f"timeman-poller: error: config key database.url: directory {missing.parent} does not exist; "
        "create it or give another path"
    ]


def test_a_postgresql_error_hides_the_password(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    config = tmp_path / "config.toml"
    config.write_text(
        f'[database]\nurl = "postgresql+psycopg://poller:pw-s3cret-9@127.0.0.1:{port}/worktime"\n'
        '[[portals]]\nname = "x"\nwebhook_url = "https://x.example/rest/1/abc/"\nusers = [1]\n'
    )
    config.chmod(0o600)
    assert main(["status", "-c", str(config)]) == 1
    (line,) = capsys.readouterr().err.splitlines()
    assert line.startswith(
        f"timeman-poller: error: database postgresql+psycopg://poller:***@127.0.0.1:{port}/worktime: "
    )
    assert "pw-s3cret-9" not in line


def test_db_upgrade_then_poll_stores_every_user_and_exits_0(
    tmp_path: Path, emulator: Emulator, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "config.toml"
    database = write_config(config, emulator, list(range(1, 11)))
    assert main(["db", "upgrade", "-c", str(config)]) == 0
    assert main(["poll", "-c", str(config)]) == 0
    captured = capsys.readouterr()
    assert rows(database, "SELECT user_id FROM snapshots ORDER BY user_id") == [(u,) for u in range(1, 11)]
    assert rows(database, "SELECT users_ok, users_failed FROM poll_runs") == [(10, 0)]
    assert emulator.settings.webhook_secret not in captured.err + captured.out


@pytest.mark.usefixtures("at_head")
def test_poll_exits_1_when_a_user_is_unknown_and_keeps_the_others(
    tmp_path: Path, emulator: Emulator, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "config.toml"
    database = write_config(config, emulator, [1, 2, 404])
    assert main(["poll", "--migrate", "-c", str(config)]) == 1
    assert rows(database, "SELECT user_id FROM snapshots ORDER BY user_id") == [(1,), (2,)]
    assert rows(database, "SELECT user_id, code FROM poll_errors") == [(404, "USER_NOT_FOUND")]
    assert "user 404: User not found" in capsys.readouterr().err


@pytest.mark.usefixtures("at_head")
def test_debug_logs_show_each_request_with_the_secret_hidden(
    tmp_path: Path, emulator: Emulator, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "config.toml"
    write_config(config, emulator, [1, 2])
    assert main(["--log-level", "DEBUG", "poll", "--migrate", "-c", str(config)]) == 0
    err = capsys.readouterr().err
    assert re.search(r"DEBUG urllib3\.connectionpool: .*\"POST /rest/1/\*\*\*/", err), err
    assert emulator.settings.webhook_secret not in err


def test_get_status_prints_the_json_answer(emulator: Emulator, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["get-status", "--url", emulator.webhook_url, "--userid", "3"]) == 0
    answer = json.loads(capsys.readouterr().out)
    assert answer["result"]["STATUS"] == "EXPIRED"
    assert "TIME_FINISH_DEFAULT" in answer["result"]


def test_get_status_with_a_token_uses_the_portal_address(
    emulator: Emulator, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["get-status", "--url", emulator.base_url, "--token", emulator.settings.access_token]) == 0
    assert "STATUS" in json.loads(capsys.readouterr().out)["result"]


def test_get_status_errors_are_one_line_without_the_secret(
    emulator: Emulator, capsys: pytest.CaptureFixture[str]
) -> None:
    url = emulator.webhook_url.replace(emulator.settings.webhook_secret, "notthesecret77")
    assert main(["get-status", "--url", url]) == 1
    err = capsys.readouterr().err
    line = err.splitlines()[-1]
    assert line.startswith("timeman-poller: error: ")
    assert line.endswith("HTTP 401 NO_AUTH_FOUND: Wrong authorization data")
    assert "notthesecret77" not in err
    assert main(["get-status", "--url", "notaurl"]) == 2
    assert capsys.readouterr().err.splitlines() == [
        "timeman-poller: error: --url: not an incoming-webhook URL; expected https://PORTAL/rest/USER_ID/SECRET/"
    ]


def test_the_emulator_on_a_busy_port_fails_before_its_banner(capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        assert main(["emulator", "--port", str(port)]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.splitlines() == [
        f"timeman-poller: error: --port {port}: cannot listen on 127.0.0.1: Address already in use"
    ]


def test_the_demo_polls_and_prints_real_seconds(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    database = tmp_path / "demo.sqlite3"
    started = time.monotonic()
    assert main(["demo", "--duration", "1", "--interval", "1", "--database", str(database)]) == 0
    elapsed = time.monotonic() - started
    out = capsys.readouterr().out
    cycles = re.findall(
        r"cycle \d+ \(simulated [^)]+\): 25 users stored, 0 failed, 1 request, ([\d.]+) s", out
    )
    assert cycles, out
    # Simulated seconds run 600 times faster than real ones: a cycle reported in them would
    # seem longer than the whole demo took.
    assert all(float(seconds) <= elapsed for seconds in cycles)
    assert "EXPIRED" in out
    assert "SELECT user_id, polled_at" in out
    assert sorted(p.name for p in tmp_path.iterdir()) == ["demo.sqlite3"]
    assert rows(database, "SELECT count(DISTINCT user_id) FROM snapshots") == [(25,)]


def test_run_polls_on_schedule_and_exits_0_on_sigterm(tmp_path: Path, emulator: Emulator) -> None:
    config = tmp_path / "config.toml"
    database = write_config(config, emulator, list(range(1, 6)), interval=1)
    daemon = subprocess.Popen(
        [sys.executable, "-m", "poller", "run", "-c", str(config)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and finished_runs(database) < 2:
            time.sleep(0.1)  # polling for a condition with a deadline
        daemon.send_signal(signal.SIGTERM)
        _, stderr = daemon.communicate(timeout=30)
    finally:
        daemon.kill()
    assert daemon.returncode == 0, stderr
    runs = rows(database, "SELECT users_ok, finished_at IS NOT NULL FROM poll_runs")
    assert len(runs) >= 2
    assert all(run == (5, 1) for run in runs)
    assert rows(database, "SELECT count(*) FROM snapshots")[0][0] == 5 * len(runs)
    assert "SIGTERM received" in stderr
    assert emulator.settings.webhook_secret not in stderr


def test_a_bug_is_logged_with_its_traceback_redacted_and_exit_code_1(
    tmp_path: Path, emulator: Emulator, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from dataclasses import replace

    from poller import cli
    from poller.config import Config

    def broken(config: Config) -> None:
        raise RuntimeError(f"boom at {emulator.webhook_url}")

    status = next(command for command in cli.COMMANDS if command.name == "status")
    monkeypatch.setattr(cli, "COMMANDS", (replace(status, function=broken),))
    write_config(tmp_path / "config.toml", emulator, [1])
    assert main(["status", "-c", str(tmp_path / "config.toml"), "--log-format", "json"]) == 1
    (line,) = capsys.readouterr().err.splitlines()
    entry = json.loads(line)
    assert entry["level"] == "CRITICAL"
    assert "RuntimeError: boom at http://127.0.0.1" in entry["exception"]
    assert emulator.settings.webhook_secret not in line


@pytest.mark.usefixtures("at_head")
def test_main_leaves_logging_as_it_found_it(tmp_path: Path, emulator: Emulator) -> None:
    import logging

    root = logging.getLogger()
    before = (list(root.handlers), root.level, logging.getLogger("urllib3").level)
    write_config(tmp_path / "config.toml", emulator, [1])
    assert main(["--log-level", "DEBUG", "poll", "--migrate", "-c", str(tmp_path / "config.toml")]) == 0
    assert (list(root.handlers), root.level, logging.getLogger("urllib3").level) == before
    assert logging.getLogger("urllib3.connectionpool").filters == []


def test_commands_that_read_the_database_need_no_portal_secret(
    tmp_path: Path, at_head: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("ACME_SECRET", raising=False)
    config = tmp_path / "config.toml"
    config.write_text(
        f'[database]\nurl = "sqlite:///{at_head}"\n[[portals]]\nname = "acme"\n'
        'webhook_url = "https://acme.example/rest/1/${ACME_SECRET}/"\nusers = [1]\n'
    )
    for command in (["db", "upgrade"], ["report"], ["prune", "--older-than", "800d"]):
        assert main([*command, "-c", str(config)]) == 0, command
    capsys.readouterr()
    assert main(["status", "-c", str(config), "--format", "json"]) == 1  # no cycle yet: not ok, no error
    captured = capsys.readouterr()
    assert json.loads(captured.out)["runs"] == []
    assert captured.err == ""
    assert main(["poll", "-c", str(config)]) == 2  # it calls the portal: the secret is needed
    assert capsys.readouterr().err.splitlines() == [
        "timeman-poller: error: config key portals[0].webhook_url: "
        "environment variable ACME_SECRET is not set"
    ]


@pytest.mark.usefixtures("at_head")
def test_status_reads_a_database_url_without_a_config_file(
    tmp_path: Path, emulator: Emulator, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "config.toml"
    database = write_config(config, emulator, [1, 2])
    assert main(["poll", "--migrate", "-c", str(config)]) == 0
    config.unlink()
    monkeypatch.chdir(tmp_path)
    capsys.readouterr()
    assert main(["status", "--database", f"sqlite:///{database}", "--format", "json"]) == 0
    answer = json.loads(capsys.readouterr().out)
    assert answer["ok"] is True and answer["spool_waiting"] is None
    assert [(run["users_ok"], run["users_failed"]) for run in answer["runs"]] == [(2, 0)]


@pytest.mark.usefixtures("at_head")
def test_debug_logs_show_each_request_its_users_status_and_time_without_secrets(
    tmp_path: Path, emulator: Emulator, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "config.toml"
    write_config(config, emulator, [1, 2, 3])
    assert main(["--log-level", "DEBUG", "poll", "--migrate", "-c", str(config)]) == 0
    err = capsys.readouterr().err
    requests = re.findall(r"DEBUG poller\.bitrix\.client: (.*)", err)
    assert any(
        re.fullmatch(r"portal emu: batch to 127\.0\.0\.1 \(3 users\): HTTP 200 in \d+\.\d{3} s", r)
        for r in requests
    ), err
    writes = re.findall(r"DEBUG poller\.storage\.cycles: (.*)", err)
    assert any(
        re.fullmatch(
            r"portal emu: stored 3 snapshots, 0 errors, \d+ workdays \(all mode\) in \d+\.\d{3} s", w
        )
        for w in writes
    ), err
    assert emulator.settings.webhook_secret not in err
    assert "plain http://" not in err  # a loopback address needs no TLS
    url = emulator.webhook_url.replace(emulator.settings.webhook_secret, "wrong-secret-42")
    assert main(["--log-level", "DEBUG", "get-status", "--url", url, "--userid", "2"]) == 1
    err = capsys.readouterr().err
    assert re.search(
        r"portal cli: timeman\.status to 127\.0\.0\.1 \(1 user\): HTTP 401 NO_AUTH_FOUND in ", err
    ), err
    assert "wrong-secret-42" not in err


@pytest.mark.parametrize(
    ("host", "loopback"),
    [("127.0.0.1", True), ("127.8.0.2", True), ("localhost", True), ("::1", True), ("[::1]", True),
     ("10.0.0.1", False), ("acme.example", False), ("localhost.acme.example", False)],
)  # fmt: skip
def test_plain_http_is_warned_about_except_on_loopback(host: str, loopback: bool) -> None:
    from poller.bitrix.client import is_loopback

    assert is_loopback(host) is loopback
