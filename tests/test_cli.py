"""The command line as a user runs it: subprocesses, real files, the emulator over loopback."""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from poller.emulator import Emulator

COMMANDS = ["db", "poll", "run", "status", "report", "prune", "get-status", "emulator", "demo"]


def cli(*args: str, cwd: Path | None = None, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "poller", *args], capture_output=True, text=True, cwd=cwd, timeout=timeout
    )


def write_config(path: Path, emulator: Emulator, users: list[int], interval: int = 60) -> Path:
    database = path.parent / "poller.sqlite3"
    path.write_text(
        f'[database]\nurl = "sqlite:///{database}"\n'
        f"[schedule]\ninterval_seconds = {interval}\n"
        f'[[portals]]\nname = "emu"\nwebhook_url = "{emulator.webhook_url}"\nusers = {users}\n'
    )
    return database


def rows(database: Path, query: str) -> list[tuple[object, ...]]:
    with sqlite3.connect(database) as connection:
        return connection.execute(query).fetchall()


def finished_runs(database: Path) -> int:
    if not database.exists() or not rows(database, "SELECT 1 FROM sqlite_master WHERE name = 'poll_runs'"):
        return 0
    (count,) = rows(database, "SELECT count(*) FROM poll_runs WHERE finished_at IS NOT NULL")[0]
    return int(count)  # type: ignore[call-overload]


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_explains_itself(command: str) -> None:
    result = cli(command, "--help")
    assert result.returncode == 0
    assert "usage: timeman-poller" in result.stdout


def test_a_config_error_is_one_line_and_exit_code_2(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text('[[portals]]\nname = "x"\nwebhook_url = "https://x/rest/1/abc/"\nusers = []\n')
    result = cli("poll", "-c", str(config))
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "timeman-poller: error: config key portals['x'].users: "
        'empty; list at least one user id or use "all"'
    ]


def test_a_missing_config_file_is_exit_code_2(tmp_path: Path) -> None:
    result = cli("poll", cwd=tmp_path)
    assert result.returncode == 2
    assert "config.toml not found" in result.stderr
    assert "Traceback" not in result.stderr


def test_poll_refuses_a_database_that_was_not_upgraded(tmp_path: Path, emulator: Emulator) -> None:
    write_config(tmp_path / "config.toml", emulator, [1])
    result = cli("poll", "-c", str(tmp_path / "config.toml"))
    assert result.returncode == 1
    assert "run `timeman-poller db upgrade`" in result.stderr
    assert "Traceback" not in result.stderr


def test_db_upgrade_then_poll_stores_every_user_and_exits_0(tmp_path: Path, emulator: Emulator) -> None:
    config = tmp_path / "config.toml"
    database = write_config(config, emulator, list(range(1, 11)))
    upgrade = cli("db", "upgrade", "-c", str(config))
    assert upgrade.returncode == 0, upgrade.stderr
    result = cli("poll", "-c", str(config))
    assert result.returncode == 0, result.stderr
    assert rows(database, "SELECT user_id FROM snapshots ORDER BY user_id") == [(u,) for u in range(1, 11)]
    assert rows(database, "SELECT users_ok, users_failed FROM poll_runs") == [(10, 0)]
    assert emulator.settings.webhook_secret not in result.stderr + result.stdout


def test_poll_exits_1_when_a_user_is_unknown_and_keeps_the_others(tmp_path: Path, emulator: Emulator) -> None:
    config = tmp_path / "config.toml"
    database = write_config(config, emulator, [1, 2, 404])
    result = cli("poll", "--migrate", "-c", str(config))
    assert result.returncode == 1
    assert rows(database, "SELECT user_id FROM snapshots ORDER BY user_id") == [(1,), (2,)]
    assert rows(database, "SELECT user_id, code FROM poll_errors") == [(404, "USER_NOT_FOUND")]
    assert "user 404: User not found" in result.stderr


def test_get_status_prints_the_json_answer(emulator: Emulator) -> None:
    result = cli("get-status", "--url", emulator.webhook_url, "--userid", "3")
    assert result.returncode == 0, result.stderr
    assert '"STATUS": "EXPIRED"' in result.stdout
    assert '"TIME_FINISH_DEFAULT"' in result.stdout


def test_get_status_with_a_token_uses_the_portal_address(emulator: Emulator) -> None:
    result = cli("get-status", "--url", emulator.base_url, "--token", emulator.settings.access_token)
    assert result.returncode == 0, result.stderr
    assert '"STATUS"' in result.stdout


def test_get_status_errors_are_one_line_without_the_secret(emulator: Emulator) -> None:
    url = emulator.webhook_url.replace(emulator.settings.webhook_secret, "notthesecret77")
    result = cli("get-status", "--url", url)
    assert result.returncode == 1
    assert result.stderr.strip().endswith("HTTP 401 NO_AUTH_FOUND: Wrong authorization data")
    assert "notthesecret77" not in result.stderr
    bad = cli("get-status", "--url", "https://x.bitrix24.com/nothing")
    assert bad.returncode == 2
    assert "--url: not an incoming-webhook URL" in bad.stderr


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
        while time.monotonic() < deadline:
            if finished_runs(database) >= 2:
                break
            time.sleep(0.2)
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


def test_the_demo_polls_and_prints_the_latest_statuses(tmp_path: Path) -> None:
    result = cli("demo", "--duration", "2", "--interval", "1", "--database", "demo.sqlite3", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "cycle 1 (simulated" in result.stdout
    assert "EXPIRED" in result.stdout
    assert "SELECT user_id, polled_at" in result.stdout
    assert sorted(p.name for p in tmp_path.iterdir()) == ["demo.sqlite3"]
    assert rows(tmp_path / "demo.sqlite3", "SELECT count(DISTINCT user_id) FROM snapshots") == [(25,)]
